"""The demo collection bundled with the package (written by this project) as a classic-IR task."""

from __future__ import annotations

from pathlib import Path

from deepretrieval.tasks import beir
from deepretrieval.tasks.retrieval import RetrievalTask


def load(data: str | Path | None = None, **options: object) -> RetrievalTask:
    """The bundled demo collection (or a BEIR folder given as ``data``) with BM25 and NDCG@10."""
    from deepretrieval.data.demo import demo_dir

    options.setdefault("name", "demo")
    return beir.load(data or demo_dir(), **options)
