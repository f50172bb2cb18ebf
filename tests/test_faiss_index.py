"""FAISS retriever: exact by default (the dense retriever's hits), HNSW and IVF close to exact, one
lifecycle with the other index kinds (registry, open_retriever, settings and damage refused clearly)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from deepretrieval.retrievers import (
    BadIndexError,
    IndexMismatchError,
    SettingsError,
    known_kinds,
    open_retriever,
)
from deepretrieval.retrievers.corpus import Corpus
from deepretrieval.retrievers.dense import DenseRetriever

pytest.importorskip("sentence_transformers")
pytest.importorskip("faiss")
from deepretrieval.retrievers.dense.faiss_index import FaissRetriever, FaissSettings
from deepretrieval.retrievers.storage import index_store


@pytest.fixture(scope="module")
def claims(scifact_dir: Path) -> tuple[Corpus, list[str]]:
    """200 SciFact claims as short documents (cheap to embed), and 30 queries made of their words."""
    texts = [json.loads(line)["text"] for line in (scifact_dir / "queries.jsonl").open()][:200]
    rng = random.Random(7)
    queries = [" ".join(w for w in rng.choice(texts).split() if rng.random() > 0.3) for _ in range(30)]
    return Corpus([f"c{i}" for i in range(len(texts))], texts), queries


@pytest.fixture(scope="module")
def exact(claims, tmp_path_factory) -> DenseRetriever:
    return DenseRetriever.build(claims[0], tmp_path_factory.mktemp("dense"), show_progress=False)


def _overlap(found: list, reference: list, k: int) -> float:
    return np.mean([len(set(a.doc_ids[:k]) & set(b.doc_ids[:k])) / k for a, b in zip(found, reference)])


def test_flat_index_is_exact(claims, exact, tmp_path: Path) -> None:
    corpus, queries = claims
    flat = FaissRetriever.build(corpus, tmp_path / "flat", show_progress=False)
    assert "faiss" in known_kinds() and flat.kind == "faiss" and flat.settings == FaissSettings()
    assert type(flat.index).__name__ == "IndexFlatIP" and flat.dim == exact.dim == 384
    for ours, reference in zip(flat.search(queries, 20), exact.search(queries, 20)):
        np.testing.assert_allclose(ours.scores, reference.scores, rtol=1e-5, atol=1e-6)
        found = dict(zip(ours.doc_ids, ours.scores))
        for doc_id, score in zip(reference.doc_ids, reference.scores):
            if score > reference.scores[-1] + 1e-5:  # above the cut: no tie can leave it out
                assert found[doc_id] == pytest.approx(score, abs=1e-5)
    assert flat.search(["", "   "], 5) == [[], []] and len(flat.search([queries[0]], 10_000)[0]) == 200
    assert flat.texts(["c3", "c1"]) == [corpus.texts[3], corpus.texts[1]]


def test_hnsw_and_ivf_are_close_to_exact(claims, exact, tmp_path: Path) -> None:
    corpus, queries = claims
    reference = exact.search(queries, 10)
    hnsw = FaissRetriever.build(
        corpus, tmp_path / "hnsw", FaissSettings(index="hnsw", hnsw_m=16), show_progress=False
    )
    assert type(hnsw.index).__name__ == "IndexHNSWFlat" and hnsw.index.hnsw.efSearch == 128
    assert _overlap(hnsw.search(queries, 10), reference, 10) >= 0.95
    ivf = FaissRetriever.build(
        corpus, tmp_path / "ivf", FaissSettings(index="ivf", nlist=10), show_progress=False
    )
    assert type(ivf.index).__name__ == "IndexIVFFlat" and ivf.index.nprobe == 16
    assert _overlap(ivf.search(queries, 10), reference, 10) >= 0.9
    one_probe = FaissRetriever.load(ivf.index_dir, nprobe=1)  # a runtime option: same index, fewer clusters
    assert one_probe.fingerprint == ivf.fingerprint
    every_probe = FaissRetriever.load(ivf.index_dir, nprobe=10)
    assert _overlap(every_probe.search(queries, 10), reference, 10) == 1.0  # all clusters: exact
    assert _overlap(one_probe.search(queries, 10), reference, 10) < 1.0
    few = one_probe.search([queries[0]], 200)[0]
    assert 0 < len(few) < 200  # an approximate index may find fewer than k: no -1 rows leak out


def test_open_retriever_loads_and_checks_settings(claims, tmp_path: Path) -> None:
    corpus, _ = claims
    path = tmp_path / "c.jsonl"
    path.write_text(
        "".join(json.dumps({"_id": i, "text": t}) + "\n" for i, t in zip(corpus.ids, corpus.texts))
    )
    settings = FaissSettings(index="hnsw")
    built = FaissRetriever.build(corpus, tmp_path / "i", settings, show_progress=False, ef_search=32)
    assert isinstance(built, FaissRetriever) and built.index.hnsw.efSearch == 32
    loaded = open_retriever("faiss", corpus=path, index_dir=tmp_path / "i", ef_search=64)
    assert loaded.fingerprint == built.fingerprint and loaded.index.hnsw.efSearch == 64
    with pytest.raises(IndexMismatchError, match="built with index='hnsw', not 'flat'"):
        open_retriever("faiss", corpus=path, index_dir=tmp_path / "i", index="flat")


def test_bad_settings_and_damaged_indexes_are_refused_in_one_line(
    claims, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus, _ = claims
    with pytest.raises(SettingsError, match="index: Input should be 'flat', 'hnsw' or 'ivf'"):
        FaissSettings(index="pq")
    with pytest.raises(SettingsError, match="hnsw_m: Input should be greater than or equal to 2"):
        FaissSettings(hnsw_m=1)
    small = Corpus(corpus.ids[:10], corpus.texts[:10])
    with pytest.raises(ValueError, match="nlist=50 needs at least 50 documents to train on, got 10"):
        FaissRetriever.build(
            small, tmp_path / "ivf", FaissSettings(index="ivf", nlist=50), show_progress=False
        )
    assert not (tmp_path / "ivf" / "index.json").exists()
    folder = FaissRetriever.build(small, tmp_path / "flat", show_progress=False).index_dir
    with pytest.raises(ValueError, match="ef_search and nprobe must be >= 1"):
        FaissRetriever.load(folder, nprobe=0)
    version = folder / json.loads((folder / "index.json").read_text())["version"]
    index_file = version / "faiss.index"
    size = index_file.stat().st_size
    index_file.write_bytes(b"\0" * size)  # same size: a small file's checksum is checked on every load
    with pytest.raises(BadIndexError, match="faiss.index does not match its checksum"):
        FaissRetriever.load(folder)
    monkeypatch.setattr(index_store, "CHECKSUM_ON_LOAD", 0)  # as a large file: the reader itself must notice
    with pytest.raises(
        BadIndexError, match="faiss.index is not a readable FAISS index; rebuild it with .* --retriever faiss"
    ):
        FaissRetriever.load(folder)
    with pytest.raises(BadIndexError, match="it is a faiss index, not dense"):
        DenseRetriever.load(folder)
