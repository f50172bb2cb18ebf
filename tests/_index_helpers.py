"""Index folders for tests that name one (``retriever.index``, ``eval --index``): a given folder is
loaded, never built, so a test builds it first, as a user runs ``deepretrieval index build``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deepretrieval.retrievers import retriever_class
from deepretrieval.retrievers.corpus import load_corpus, open_corpus
from deepretrieval.tasks import task_family


def task_index(
    task: str,
    data: str | Path,
    folder: str | Path,
    *,
    kind: str = "bm25",
    task_options: dict[str, Any] | None = None,
    **settings: Any,
) -> str:
    """Build the ``kind`` index of task ``task``'s collection (over ``data``) in ``folder``, with the
    retriever ``settings``; the folder as a string, for ``RetrieverConfig(index=...)`` or ``--index``."""
    family = task_family(task)
    corpus = family.corpus(Path(data), family.options.model_validate(task_options or {}))
    cls = retriever_class(kind)
    read = open_corpus if cls.streams_corpus else load_corpus
    cls.build(read(corpus), folder, cls.settings_type(**settings), show_progress=False).close()
    return str(folder)
