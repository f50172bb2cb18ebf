"""The demo collection bundled with the package (written by this project) as a classic-IR task."""

from __future__ import annotations

from pathlib import Path

from deepretrieval.data.demo import demo_dir
from deepretrieval.retrievers.base import Retriever
from deepretrieval.tasks import TaskFamily, beir
from deepretrieval.tasks.retrieval import RetrievalTask


def _folder(data: Path | None) -> Path:
    return Path(data) if data is not None else demo_dir()


def build(data: Path | None, options: beir.BeirOptions, retriever: Retriever) -> RetrievalTask:
    """The bundled demo collection (or a BEIR folder given as ``data``), named ``demo``."""
    named = options if options.name else options.model_copy(update={"name": "demo"})
    return beir.build(_folder(data), named, retriever)


FAMILY = TaskFamily(
    template="classic_ir",
    options=beir.BeirOptions,
    build=build,
    corpus=lambda data, options: beir.corpus_path(_folder(data), options),
    needs_data=False,
)
