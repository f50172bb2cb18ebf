"""BM25 on bm25s: build, save, memory-mapped load, edge-case queries, index CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from deepretrieval.retrievers import open_retriever
from deepretrieval.retrievers.bm25 import BM25Retriever, BM25Settings
from deepretrieval.retrievers.corpus import CorpusError, load_corpus


def _write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.fixture()
def small_index(tmp_path: Path) -> BM25Retriever:
    corpus = _write(
        tmp_path / "docs.jsonl",
        [
            {
                "id": "a",
                "title": "Myocardial infarction",
                "contents": "Aspirin lowers the risk of myocardial infarction.",
            },
            {"id": "b", "contents": "Hypertension is treated with diuretics and beta blockers."},
            {"id": "c", "contents": "Punctured tyres are repaired with a patch kit."},
        ],
    )
    return BM25Retriever.build(load_corpus(corpus), tmp_path / "index", show_progress=False)


def test_search_ranks_matching_document_first_and_stems(small_index: BM25Retriever) -> None:
    (hits,) = small_index.search(["infarctions aspirin"], k=10)
    assert [h.doc_id for h in hits] == ["a"]  # non-matching documents are not returned
    assert hits[0].score > 0
    assert "Aspirin" in small_index.text("a") and small_index.text("a").startswith("Myocardial infarction")


@pytest.mark.parametrize("query", ["", "   ", "the and of is", "zzzqqq", "x" * 100_000])
def test_degenerate_queries_return_empty_results(small_index: BM25Retriever, query: str) -> None:
    assert small_index.search([query], k=5) == [[]]


def test_huge_query_with_real_terms_still_works(small_index: BM25Retriever) -> None:
    (hits,) = small_index.search(["tyre " * 20_000], k=5)
    assert [h.doc_id for h in hits] == ["c"]


def test_k_larger_than_collection_and_empty_batch(small_index: BM25Retriever) -> None:
    assert len(small_index.search(["aspirin hypertension tyres"], k=1000)[0]) == 3
    assert small_index.search([], k=5) == []


def test_saved_index_loads_memory_mapped_with_identical_hits(
    scifact_bm25: BM25Retriever, scifact_task
) -> None:
    queries = [ex.original for ex in scifact_task.examples("test")[:50]]
    loaded = BM25Retriever.load(scifact_bm25.docs.folder, mmap=True)
    assert loaded.memory_mapped and not BM25Retriever.load(scifact_bm25.docs.folder, mmap=False).memory_mapped
    assert loaded.fingerprint == scifact_bm25.fingerprint
    assert loaded.search(queries, 100) == scifact_bm25.search(queries, 100)


def test_fingerprint_depends_on_settings_and_content(tmp_path: Path) -> None:
    records = [{"_id": "1", "text": "alpha beta"}, {"_id": "2", "text": "gamma delta"}]
    corpus = load_corpus(_write(tmp_path / "c.jsonl", records))
    base = BM25Retriever.build(corpus, tmp_path / "i1", show_progress=False).fingerprint
    other_k1 = BM25Retriever.build(
        corpus, tmp_path / "i2", BM25Settings(k1=1.2), show_progress=False
    ).fingerprint
    records[1]["text"] = "gamma epsilon"
    changed = load_corpus(_write(tmp_path / "c2.jsonl", records))
    other_text = BM25Retriever.build(changed, tmp_path / "i3", show_progress=False).fingerprint
    assert len({base, other_k1, other_text}) == 3


def test_bad_inputs_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="not found"):
        load_corpus(tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"_id": "1", "text": "ok"}\n{oops\n')
    with pytest.raises(CorpusError, match="bad.jsonl:2"):
        load_corpus(bad)
    with pytest.raises(CorpusError, match="needs an id"):
        load_corpus(_write(tmp_path / "noid.jsonl", [{"text": "x"}]))
    with pytest.raises(ValueError, match="k1"):
        BM25Settings(k1=-1)
    with pytest.raises(FileNotFoundError, match="index build"):
        BM25Retriever.load(tmp_path)


def test_open_retriever_builds_once_then_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEEPRETRIEVAL_CACHE", str(tmp_path / "cache"))
    corpus = _write(tmp_path / "c.jsonl", [{"_id": "1", "text": "alpha beta"}, {"_id": "2", "text": "gamma"}])
    first = open_retriever("bm25", corpus=corpus, show_progress=False)
    built = [p for p in (tmp_path / "cache" / "indexes").iterdir() if p.is_dir()]
    second = open_retriever("bm25", corpus=corpus, show_progress=False)
    assert len(built) == 1 and second.fingerprint == first.fingerprint


def test_index_build_cli(tmp_path: Path) -> None:
    corpus = _write(
        tmp_path / "c.jsonl",
        [{"_id": str(i), "text": f"document number {i} about topic{i % 3}"} for i in range(50)],
    )
    out = tmp_path / "idx"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "deepretrieval.cli",
            "index",
            "build",
            "--corpus",
            str(corpus),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "indexed 50 documents" in proc.stdout
    hits = BM25Retriever.load(out).search(["topic1"], 100)[0]
    assert sorted(int(h.doc_id) for h in hits) == [i for i in range(50) if i % 3 == 1]
