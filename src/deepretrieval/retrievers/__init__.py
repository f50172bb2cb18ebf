"""Retrievers: one batched ``search(queries, k)`` interface over BM25, dense and remote engines."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from filelock import FileLock

from deepretrieval.paths import cache_dir
from deepretrieval.retrievers.base import Hit, Retriever
from deepretrieval.retrievers.corpus import Corpus, load_corpus

__all__ = ["Corpus", "Hit", "Retriever", "load_corpus", "open_retriever"]


def _default_index_dir(kind: str, corpus_path: Path, options: dict) -> Path:
    stat = corpus_path.stat()
    key = json.dumps(
        [kind, str(corpus_path.resolve()), stat.st_size, stat.st_mtime_ns, options], sort_keys=True
    )
    return (
        cache_dir()
        / "indexes"
        / f"{kind}-{corpus_path.parent.name}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    )


def open_retriever(
    kind: str = "bm25",
    *,
    corpus: str | Path | None = None,
    index_dir: str | Path | None = None,
    show_progress: bool = True,
    **options: object,
) -> Retriever:
    """Load the index in ``index_dir`` if it holds one, else build it from ``corpus`` (into ``index_dir``, or a
    cache folder keyed by the corpus file and the settings) and return it."""
    if kind not in ("bm25", "dense"):
        raise ValueError(f"unknown retriever {kind!r}; choose bm25 or dense")
    corpus_path = None
    if corpus is not None:
        corpus_path = Path(corpus)
        corpus_path = corpus_path / "corpus.jsonl" if corpus_path.is_dir() else corpus_path
    if index_dir is None:
        if corpus_path is None:
            raise ValueError("open_retriever needs a corpus or an index_dir")
        index_dir = _default_index_dir(kind, corpus_path, options)
    index_dir = Path(index_dir)
    index_dir.parent.mkdir(parents=True, exist_ok=True)
    # Several processes (ranks of a distributed run, parallel evaluations) may open the same index at
    # once: the first builds it under the lock, the others wait and then load what it wrote.
    with FileLock(f"{index_dir}.lock"):
        return _load_or_build(kind, index_dir, corpus_path, show_progress, options)


def _load_or_build(
    kind: str, index_dir: Path, corpus_path: Path | None, show_progress: bool, options: dict
) -> Retriever:
    if kind == "bm25":
        from deepretrieval.retrievers.bm25 import MANIFEST, BM25Retriever, BM25Settings

        if (index_dir / MANIFEST).is_file():
            return BM25Retriever.load(index_dir)
        if corpus_path is None:
            raise FileNotFoundError(f"no BM25 index in {index_dir} and no corpus given to build one")
        return BM25Retriever.build(
            load_corpus(corpus_path), index_dir, BM25Settings(**options), show_progress
        )

    from deepretrieval.retrievers.dense import MANIFEST as DENSE_MANIFEST
    from deepretrieval.retrievers.dense import DenseRetriever

    if (index_dir / DENSE_MANIFEST).is_file():
        return DenseRetriever.load(index_dir)
    if corpus_path is None:
        raise FileNotFoundError(f"no dense index in {index_dir} and no corpus given to build one")
    retriever = DenseRetriever.build(load_corpus(corpus_path), show_progress=show_progress, **options)
    retriever.save(index_dir)
    return DenseRetriever.load(index_dir)
