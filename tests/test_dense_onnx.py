"""The ONNX Runtime encoder backends: the same embeddings as sentence-transformers (float32) or close
(int8), the export cached and checked, and the backend recorded as a setting of the index."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from deepretrieval.retrievers.corpus import Corpus
from deepretrieval.retrievers.dense import DEFAULT_MODEL, DenseRetriever, DenseSettings, load_encoder
from deepretrieval.retrievers.dense.encoder import encode

pytest.importorskip("sentence_transformers")
pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def abstracts(scifact_dir: Path) -> list[str]:
    lines = (scifact_dir / "corpus.jsonl").open()
    return [f"{r['title']} {r['text']}" for r in map(json.loads, (next(lines) for _ in range(24)))]


def test_onnx_backends_give_the_models_embeddings(abstracts: list[str]) -> None:
    reference = encode(load_encoder(DEFAULT_MODEL), abstracts, prefix="", normalize=True, batch_size=8)
    same = encode(
        load_encoder(DEFAULT_MODEL, None, "onnx"), abstracts, prefix="", normalize=True, batch_size=8
    )
    np.testing.assert_allclose(same, reference, atol=2e-5)
    int8 = encode(
        load_encoder(DEFAULT_MODEL, None, "onnx-int8"), abstracts, prefix="", normalize=True, batch_size=8
    )
    cosine = (int8 * reference).sum(axis=1)
    assert cosine.min() > 0.97 and cosine.mean() > 0.985
    assert not np.allclose(int8, reference, atol=1e-3)  # the int8 weights are really used
    prompted = encode(
        load_encoder(DEFAULT_MODEL, None, "onnx"),
        abstracts[:4],
        prefix="passage: ",
        normalize=True,
        batch_size=8,
    )
    expected = encode(
        load_encoder(DEFAULT_MODEL), abstracts[:4], prefix="passage: ", normalize=True, batch_size=8
    )
    np.testing.assert_allclose(prompted, expected, atol=2e-5)


def test_export_is_cached_and_a_damaged_one_is_redone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sentence_transformers import SentenceTransformer

    from deepretrieval.retrievers.dense.encoder import model_location
    from deepretrieval.retrievers.dense.onnx_encoder import MODEL_FILE, onnx_encoder

    monkeypatch.setenv("DEEPRETRIEVAL_CACHE", str(tmp_path))

    def fresh() -> SentenceTransformer:
        return onnx_encoder(
            SentenceTransformer(model_location(DEFAULT_MODEL), device="cpu"), DEFAULT_MODEL, "onnx"
        )

    first = fresh()
    (exported,) = (tmp_path / "onnx").glob(f"*/{MODEL_FILE}")
    stamp = exported.stat().st_mtime_ns
    fresh()
    assert exported.stat().st_mtime_ns == stamp  # loaded from the cache, not exported again
    exported.write_bytes(exported.read_bytes()[:-100] + b"\0" * 100)  # damage of the same size
    again = fresh()
    assert exported.read_bytes() != b"" and exported.stat().st_mtime_ns != stamp
    texts = ["aspirin and stroke", "vitamin d"]
    np.testing.assert_allclose(first.encode(texts), again.encode(texts), atol=1e-6)
    assert not list((tmp_path / "onnx").glob(".export-*"))  # no partial export left behind


def test_backend_is_an_index_setting(abstracts: list[str], tmp_path: Path) -> None:
    corpus = Corpus([f"d{i}" for i in range(len(abstracts))], abstracts)
    torch_index = DenseRetriever.build(corpus, tmp_path / "torch", show_progress=False)
    int8_index = DenseRetriever.build(
        corpus, tmp_path / "int8", DenseSettings(backend="onnx-int8"), show_progress=False
    )
    assert int8_index.settings.backend == "onnx-int8" and int8_index.fingerprint != torch_index.fingerprint
    queries = [text.split(".")[0] for text in abstracts]  # each abstract's title and first sentence
    top = [r.doc_ids[0] for r in int8_index.search(queries, 3)]
    assert sum(doc == f"d{i}" for i, doc in enumerate(top)) >= len(queries) - 1
    assert DenseRetriever.load(tmp_path / "int8").encoder is load_encoder(DEFAULT_MODEL, None, "onnx-int8")
    with pytest.raises(ValueError, match="the onnx-int8 encoder runs on CPU only; use backend='torch'"):
        load_encoder(DEFAULT_MODEL, "cuda", "onnx-int8")
    with pytest.raises(ValueError, match="backend: Input should be 'torch', 'onnx' or 'onnx-int8'"):
        DenseSettings(backend="tensorrt")
