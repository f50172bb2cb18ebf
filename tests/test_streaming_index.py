"""The streamed BM25 build (batches spilled to disk, merged by term slices) equals bm25s's in-memory index,
and collections are read as streams: JSONL and DPR-style TSV, checked line by line."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import bm25s
import numpy as np
import pytest
import scipy.sparse
import Stemmer

from deepretrieval.retrievers.bm25 import BM25Retriever, BM25Settings
from deepretrieval.retrievers.bm25 import build as bm25_build
from deepretrieval.retrievers.corpus import Corpus, CorpusError, load_corpus, open_corpus

WORDS = [f"w{i}" for i in range(3000)] + ["running", "runs", "runner", "cells", "the", "and", "of", "studies"]


def _collection(size: int, seed: int = 0) -> Corpus:
    """Documents of Zipfian words (a few empty or stop words only), ids in a shuffled order."""
    rng = np.random.default_rng(seed)
    texts = []
    for i in range(size):
        length = 0 if i % 97 == 0 else int(rng.integers(5, 120))
        picks = np.minimum(rng.zipf(1.3, length), len(WORDS)) - 1
        texts.append(" ".join(WORDS[p] for p in picks) if i % 101 else "the and of is")
    ids = [f"doc-{i}" for i in random.Random(seed).sample(range(size * 10), size)]
    return Corpus(ids, texts)


def _bm25s_matrix(corpus: Corpus, settings: BM25Settings) -> tuple[dict, dict]:
    """bm25s's own in-memory index of ``corpus``, terms numbered in sorted order (as ours are)."""
    stemmer = Stemmer.Stemmer(settings.stemmer) if settings.stemmer else None
    tokens = bm25s.tokenize(
        corpus.texts, stopwords=settings.stopwords or [], stemmer=stemmer, show_progress=False
    )
    terms = sorted(tokens.vocab)
    new_id = np.empty(len(terms), dtype=np.int64)
    for rank, term in enumerate(terms):
        new_id[tokens.vocab[term]] = rank
    ids = [new_id[np.asarray(doc, dtype=np.int64)].tolist() for doc in tokens.ids]
    model = bm25s.BM25(k1=settings.k1, b=settings.b, method=settings.method)
    model.index(
        bm25s.tokenization.Tokenized(ids=ids, vocab={t: r for r, t in enumerate(terms)}),
        create_empty_token=False,
        show_progress=False,
    )
    return model.scores, model.vocab_dict


@pytest.mark.parametrize("method", ["lucene", "robertson", "atire", "bm25l", "bm25+"])
def test_streamed_build_equals_bm25s_in_memory(method: str, tmp_path: Path, monkeypatch) -> None:
    corpus = _collection(3000)
    settings = BM25Settings(method=method, k1=1.2, b=0.75)
    monkeypatch.setattr(bm25_build, "BATCH_DOCS", 257)  # many batches ...
    monkeypatch.setattr(bm25_build, "MERGE_PAIRS", 5000)  # ... merged in many term slices
    ours = BM25Retriever.build(corpus, tmp_path / method, settings, show_progress=False)
    reference, vocab = _bm25s_matrix(corpus, settings)
    matrix = ours._term_doc
    assert ours._vocab == vocab and len(vocab) > 2000
    assert np.array_equal(matrix.indptr, reference["indptr"])
    assert np.array_equal(matrix.indices, reference["indices"])
    np.testing.assert_allclose(matrix.data, reference["data"], rtol=1e-6, atol=0)
    reference_matrix = scipy.sparse.csc_matrix(
        (reference["data"], reference["indices"], reference["indptr"]), shape=(len(corpus), len(vocab))
    )
    queries = [" ".join(random.Random(q).choices(WORDS[:200], k=4)) for q in range(50)]
    for query, ranking in zip(queries, ours.search(queries, 20)):
        counts = np.zeros(len(vocab), dtype=np.float32)
        for term in ours.analyze(query):
            if term in vocab:
                counts[vocab[term]] += 1
        expected = reference_matrix @ counts
        best = np.sort(expected[expected > 0])[::-1][: len(ranking)]
        np.testing.assert_allclose(ranking.scores, best, rtol=1e-5)
        rows = [ours.docs.row_of(doc_id) for doc_id in ranking.doc_ids]
        np.testing.assert_allclose(expected[rows], ranking.scores, rtol=1e-5)


def test_streamed_file_and_memory_builds_are_the_same_index(tmp_path: Path, monkeypatch) -> None:
    corpus = _collection(1200, seed=3)
    path = tmp_path / "c.jsonl"
    path.write_text(
        "".join(json.dumps({"_id": i, "text": t}) + "\n" for i, t in zip(corpus.ids, corpus.texts))
    )
    monkeypatch.setattr(bm25_build, "BATCH_DOCS", 100)
    streamed = BM25Retriever.build(open_corpus(path), tmp_path / "streamed", show_progress=False)
    memory = BM25Retriever.build(load_corpus(path), tmp_path / "memory", show_progress=False)
    assert streamed.fingerprint == memory.fingerprint
    assert streamed.corpus_fingerprint == corpus.fingerprint
    for name in ("bm25.data.npy", "bm25.indices.npy", "bm25.indptr.npy", "bm25.vocab.json", "docs.jsonl"):
        assert _file(streamed, name) == _file(memory, name)
    assert len(streamed) == 1200 and streamed.docs.ids == corpus.ids


def _file(retriever: BM25Retriever, name: str) -> bytes:
    (version,) = [p for p in retriever.index_dir.iterdir() if p.is_dir()]
    return (version / name).read_bytes()


def _write_tsv(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter="\t")
        writer.writerow(["id", "text", "title"])
        writer.writerows(rows)
    return path


def test_dpr_tsv_streams_with_titles_and_quotes(tmp_path: Path) -> None:
    rows = [
        ("1", 'Aaron ( or ; "Ahärôn") is a prophet, high priest', "Aaron"),
        ("2", "Paris is the capital of France.", "Paris"),
        ("3", "Rome\tis the capital of Italy.", "Rome"),
    ]
    tsv = _write_tsv(tmp_path / "psgs.tsv", rows)
    assert '"Aaron ( or ; ""Ahärôn"")' in tsv.read_text()  # quoted as DPR's file is
    stream = open_corpus(tsv)
    batches = list(stream.batches(2))
    assert [ids for ids, _ in batches] == [["1", "2"], ["3"]]
    assert batches[0][1][0] == 'Aaron Aaron ( or ; "Ahärôn") is a prophet, high priest'
    memory = Corpus([r[0] for r in rows], [f"{r[2]} {r[1]}" for r in rows])
    assert len(stream) == 3 and stream.fingerprint == memory.fingerprint == load_corpus(tsv).fingerprint
    index = BM25Retriever.build(open_corpus(tsv), tmp_path / "index", show_progress=False)
    assert index.search(["capital of france"], 2)[0].doc_ids[0] == "2"
    assert index.docs.texts(["3", "1"]) == [memory.texts[2], memory.texts[0]]
    assert index.docs.texts([2, 0, 2]) == [memory.texts[2], memory.texts[0], memory.texts[2]]


def test_streamed_corpora_are_checked_in_one_line(tmp_path: Path) -> None:
    dup = _write_tsv(tmp_path / "dup.tsv", [("a", "x y", "t"), ("b", "z", "t"), ("a", "w", "t")])
    with pytest.raises(CorpusError, match=r"dup.tsv:4: duplicate document id 'a' \(first on line 2\)"):
        list(open_corpus(dup).batches())
    short = tmp_path / "short.tsv"
    short.write_text("id\ttext\ttitle\n1\tok\tT\n2\tno title\n")
    with pytest.raises(CorpusError, match="short.tsv:3: 2 tab-separated fields, the header names 3"):
        list(open_corpus(short).batches())
    latin = tmp_path / "latin.tsv"
    latin.write_bytes(b"id\ttext\n1\tcaf\xe9\n")
    with pytest.raises(CorpusError, match="latin.tsv:2: not UTF-8"):
        load_corpus(latin)
    (tmp_path / "noid.tsv").write_text("key\ttext\nk1\thello\n")
    with pytest.raises(CorpusError, match=r"noid.tsv:2: needs an id .* keys present: \['key', 'text'\]"):
        list(open_corpus(tmp_path / "noid.tsv").batches())
    with pytest.raises(CorpusError, match="no documents"):
        list(open_corpus(_write_tsv(tmp_path / "header-only.tsv", [])).batches())
    (tmp_path / "empty.tsv").write_text("")
    with pytest.raises(CorpusError, match="empty TSV file"):
        list(open_corpus(tmp_path / "empty.tsv").batches())
    with pytest.raises(CorpusError, match="not found"):
        open_corpus(tmp_path / "missing.tsv")


def test_document_store_reads_many_texts_by_id_or_row(tmp_path: Path) -> None:
    corpus = _collection(500, seed=5)
    index = BM25Retriever.build(corpus, tmp_path / "i", show_progress=False)
    rows = random.Random(1).choices(range(500), k=200)
    assert index.docs.texts(rows) == [corpus.texts[r] for r in rows]
    assert index.docs.texts([corpus.ids[r] for r in rows]) == [corpus.texts[r] for r in rows]
    assert index.docs.texts([-1]) == [corpus.texts[-1]] and index.docs.texts([]) == []
    with pytest.raises(IndexError, match="row 500 out of range for 500 documents"):
        index.docs.texts([3, 500])
    with pytest.raises(KeyError, match="unknown document id 'nope'"):
        index.docs.texts(["nope"])
