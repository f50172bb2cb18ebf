"""The embedded demo collection: well-formed BEIR files, a clean split, byte-reproducible, and a real
vocabulary gap measured with BM25."""

from __future__ import annotations

import csv
import importlib.util
import json
import random
import sys
from pathlib import Path
from types import ModuleType

import bm25s
import ir_measures
import pytest
import Stemmer
from ir_measures import R, nDCG

from deepretrieval.data.demo import demo_dir
from deepretrieval.retrievers.corpus import load_corpus

GENERATOR = Path(__file__).resolve().parents[1] / "scripts" / "build_demo_collection.py"


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_demo_collection", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


def read_jsonl(name: str) -> list[dict]:
    return [json.loads(line) for line in (demo_dir() / name).read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def corpus() -> list[dict]:
    return read_jsonl("corpus.jsonl")


@pytest.fixture(scope="module")
def queries() -> dict[str, str]:
    return {r["_id"]: r["text"] for r in read_jsonl("queries.jsonl")}


def read_qrels(split: str) -> dict[str, dict[str, int]]:
    with (demo_dir() / "qrels" / f"{split}.tsv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))
    assert rows[0] == ["query-id", "corpus-id", "score"]
    qrels: dict[str, dict[str, int]] = {}
    for query_id, doc_id, score in rows[1:]:
        qrels.setdefault(query_id, {})[doc_id] = int(score)
    return qrels


def test_counts_and_record_shapes(corpus, queries):
    assert 400 <= len(corpus) <= 600
    assert 300 <= len(queries) <= 400
    assert all(set(d) == {"_id", "title", "text"} and d["title"] and d["text"] for d in corpus)
    assert len({d["_id"] for d in corpus}) == len(corpus)
    assert all(text.strip() for text in queries.values())
    size = sum(p.stat().st_size for p in demo_dir().rglob("*") if p.is_file())
    assert size < 1_000_000


def test_the_corpus_loader_reads_it(corpus):
    loaded = load_corpus(demo_dir())
    assert loaded.ids == [d["_id"] for d in corpus]
    assert loaded.texts[0] == f"{corpus[0]['title']} {corpus[0]['text']}"


def test_split_is_clean_and_every_query_is_judged(corpus, queries):
    train, test = read_qrels("train"), read_qrels("test")
    assert not set(train) & set(test)
    assert set(train) | set(test) == set(queries)
    assert 0.25 <= len(test) / len(queries) <= 0.35
    assert len(set(queries.values())) == len(queries), "a query text appears twice"
    doc_ids = {d["_id"] for d in corpus}
    for judged in (train | test).values():
        assert judged and set(judged) <= doc_ids
        assert set(judged.values()) <= {1, 2} and list(judged.values()).count(2) == 1


def test_generator_reproduces_the_shipped_files(generator, tmp_path):
    assert generator.main(["--out", str(tmp_path)]) == 0
    shipped = sorted(
        p.relative_to(demo_dir()) for p in demo_dir().rglob("*") if p.suffix in {".jsonl", ".tsv", ".md"}
    )
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert written == shipped
    for name in written:
        assert (tmp_path / name).read_bytes() == (demo_dir() / name).read_bytes(), f"{name} differs"
    assert generator.main(["--out", str(demo_dir()), "--check"]) == 0


def test_generator_rejects_a_concept_whose_documents_leak_lay_words(generator):
    leaky = generator.C(
        "health",
        "leaky",
        ("heart attack",),
        ("myocardial infarction", "coronary thrombosis"),
        "pain in the heart region",
        "occlusion",
        "intervention",
        "statins",
        ("Derby", "An attack through the heart of midfield."),
    )
    docs = generator._concept_documents(random.Random(0), leaky)
    with pytest.raises(ValueError, match="lay words"):
        generator._check_concept(leaky, docs)


def bm25_scores(
    corpus: list[dict], texts: dict[str, str], qrels: dict[str, dict[str, int]]
) -> dict[str, float]:
    """NDCG@10 and R@10 of BM25 (bm25s, k1=0.9, b=0.4, English stemmer and stop words) for ``texts``."""
    stemmer = Stemmer.Stemmer("english")
    retriever = bm25s.BM25(k1=0.9, b=0.4)
    retriever.index(
        bm25s.tokenize(
            [f"{d['title']} {d['text']}" for d in corpus],
            stopwords="en",
            stemmer=stemmer,
            show_progress=False,
        ),
        show_progress=False,
    )
    ids = list(texts)
    tokens = bm25s.tokenize(
        [texts[i] for i in ids], stopwords="en", stemmer=stemmer, return_ids=False, show_progress=False
    )
    docs, scores = retriever.retrieve(tokens, k=10, show_progress=False, n_threads=1)
    run = [
        ir_measures.ScoredDoc(q, corpus[int(j)]["_id"], float(s))
        for q, row, srow in zip(ids, docs, scores, strict=True)
        for j, s in zip(row, srow, strict=True)
    ]
    judged = [ir_measures.Qrel(q, d, g) for q in ids for d, g in qrels[q].items()]
    result = ir_measures.calc_aggregate([nDCG @ 10, R @ 10], judged, run)
    return {"ndcg@10": result[nDCG @ 10], "recall@10": result[R @ 10]}


def test_formal_synonyms_close_the_vocabulary_gap(generator, corpus, queries):
    test = read_qrels("test")
    concept_of = {q.id: generator.CONCEPT_BY_KEY[q.concept] for q in generator.build().queries}
    original = {q: queries[q] for q in test}
    oracle = {q: " ".join([queries[q], *concept_of[q].formal]) for q in test}
    top2 = {q: " ".join([queries[q], *concept_of[q].formal[:2]]) for q in test}

    base = bm25_scores(corpus, original, test)
    expanded = bm25_scores(corpus, oracle, test)
    cheap = bm25_scores(corpus, top2, test)

    assert 0.25 <= base["ndcg@10"] <= 0.55, base  # moderate: the lay words find some relevant documents
    assert expanded["ndcg@10"] >= base["ndcg@10"] + 0.25, (base, expanded)
    assert expanded["recall@10"] >= base["recall@10"] + 0.25, (base, expanded)
    assert cheap["ndcg@10"] >= base["ndcg@10"] + 0.25, (base, cheap)
