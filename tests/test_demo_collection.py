"""The embedded demo collection: well-formed BEIR files, a clean split, byte-reproducible from the concept
inventory (which is validated with one-line errors), and a real vocabulary gap measured with BM25."""

from __future__ import annotations

import csv
import dataclasses
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from deepretrieval.data.demo import demo_dir
from deepretrieval.metrics import evaluate_run
from deepretrieval.retrievers.bm25 import BM25Retriever
from deepretrieval.retrievers.corpus import load_corpus

GENERATOR = Path(__file__).resolve().parents[1] / "scripts" / "build_demo_collection.py"
INVENTORY = GENERATOR.with_name("demo_concepts.yaml")


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_demo_collection", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def inventory(generator):
    return generator.load_inventory(INVENTORY)


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
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert [str(p) for p in written] == sorted(
        ["README.md", "corpus.jsonl", "queries.jsonl", *(f"qrels/{split}.tsv" for split in ("train", "test"))]
    )
    for name in written:
        assert (tmp_path / name).read_bytes() == (demo_dir() / name).read_bytes(), f"{name} differs"


@pytest.mark.parametrize("hash_seed", ["1", "2"])
def test_check_passes_in_any_process(hash_seed):
    """``--check`` from a fresh interpreter: string hashing (set and dict order of words) must not reach
    the files or the README's figures."""
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    done = subprocess.run(
        [sys.executable, str(GENERATOR), "--check"], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "is up to date" in done.stdout


def test_the_inventory_keeps_file_order_and_clause_tags(generator, inventory):
    concepts = list(inventory.concepts.values())
    assert concepts[0].key == "heart_attack" and concepts[0].formal[0] == "myocardial infarction"
    no_start = inventory.concepts["car_wont_start"]
    assert [isinstance(p, generator.Clause) for p in no_start.lay] == [True, True]
    assert not isinstance(concepts[0].lay[0], generator.Clause)
    assert inventory.concepts["phone_battery_drain"].shared == {"batteri", "run"}  # words, stemmed on load


@pytest.mark.parametrize(
    ("old", "new", "error"),
    [
        (
            (
                "      prevention: smoking cessation, statin therapy, regular aerobic exercise and control of "
                "serum cholesterol\n"
            ),
            "",
            r"concept 'heart_attack', facts is missing 'prevention' \(needs signs, causes, remedy, prevention\)",
        ),
        (
            "  - key: heart_attack\n    domain: health\n",
            "  - key: heart_attack\n    domain: medicine\n",
            r"concept 'heart_attack' has the unknown domain 'medicine' \(known: health, home, ",
        ),
        (
            "    lay: [heart attack]\n",
            "    lay: [heart attack, '  ']\n",
            r"concept 'heart_attack', lay\[1\] ",
        ),
        (
            "      - 'Identifying {F}'\n",
            "      - 'Identifying {G}'\n",
            r"templates.titles.signs\[1\] .*\{G\}",
        ),
        ("  - key: high_blood_pressure\n", "  - key: heart_attack\n", "concept 'heart_attack' appears twice"),
        ("    facts:\n", "    facts:\n   bad indent\n", "not valid YAML at line "),
    ],
    ids=[
        "missing-facet",
        "unknown-domain",
        "empty-lay-phrase",
        "unknown-placeholder",
        "duplicate-key",
        "yaml",
    ],
)
def test_a_corrupted_inventory_gives_a_one_line_error(generator, tmp_path, capsys, old, new, error):
    text = INVENTORY.read_text(encoding="utf-8")
    assert old in text
    corrupted = tmp_path / "concepts.yaml"
    corrupted.write_text(text.replace(old, new, 1), encoding="utf-8")

    assert generator.main(["--inventory", str(corrupted), "--out", str(tmp_path / "out"), "--check"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith(f"error: {corrupted}: ")
    assert re.search(error, err), err
    with pytest.raises(generator.InventoryError, match=error):
        generator.load_inventory(corrupted)


def test_generator_rejects_a_concept_whose_documents_leak_lay_words(generator, inventory):
    concept = inventory.concepts["heart_attack"]
    leaky = dataclasses.replace(concept, facts={**concept.facts, "signs": "pain in the heart region"})
    with pytest.raises(
        generator.InventoryError, match=r"'heart_attack', signs document uses lay words \['heart'\]"
    ):
        generator.build(
            dataclasses.replace(inventory, concepts={**inventory.concepts, "heart_attack": leaky})
        )


def test_generator_rejects_a_distractor_without_lay_words(generator, inventory):
    concept = inventory.concepts["heart_attack"]
    unrelated = dataclasses.replace(concept, distractor=("Tide tables", "Low water at noon on Sunday."))
    with pytest.raises(generator.InventoryError, match="'heart_attack': the distractor shares no lay word"):
        generator.build(
            dataclasses.replace(inventory, concepts={**inventory.concepts, "heart_attack": unrelated})
        )


def test_formal_synonyms_close_the_vocabulary_gap(generator, inventory, queries, tmp_path):
    """The package's BM25 over the shipped files: the concept's formal synonyms lift NDCG@10 and R@10."""
    test = read_qrels("test")
    concept_of = {q.id: inventory.concepts[q.concept] for q in generator.build(inventory).queries}
    variants = {
        "original": [queries[q] for q in test],
        "oracle": [" ".join([queries[q], *concept_of[q].formal]) for q in test],
        "top2": [" ".join([queries[q], *concept_of[q].formal[:2]]) for q in test],
    }
    retriever = BM25Retriever.build(load_corpus(demo_dir()), tmp_path / "index", show_progress=False)
    scores = {}
    for name, texts in variants.items():
        run = {q: ranking.doc_ids for q, ranking in zip(test, retriever.search(texts, 10), strict=True)}
        scores[name], _ = evaluate_run(run, test, ["ndcg@10", "recall@10"])
    base, expanded, cheap = scores["original"], scores["oracle"], scores["top2"]

    assert 0.25 <= base["ndcg@10"] <= 0.55, base  # moderate: the lay words find some relevant documents
    assert expanded["ndcg@10"] >= base["ndcg@10"] + 0.25, (base, expanded)
    assert expanded["recall@10"] >= base["recall@10"] + 0.25, (base, expanded)
    assert cheap["ndcg@10"] >= base["ndcg@10"] + 0.25, (base, cheap)
