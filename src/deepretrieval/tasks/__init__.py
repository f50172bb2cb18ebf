"""Task families: data + prompts + how an answer is judged. ``load_task(name, data, **options)``."""

from __future__ import annotations

import importlib
from pathlib import Path

from deepretrieval.tasks.base import Example, Outcome, Task

__all__ = ["TASKS", "Example", "Outcome", "Task", "load_task"]

# name -> module exposing ``load(data, **options) -> Task``; imported lazily so that e.g. the SQL
# task's dependencies are never needed by a BM25 user.
TASKS = {
    "beir": "deepretrieval.tasks.beir",
    "demo": "deepretrieval.tasks.demo",
    "evidence": "deepretrieval.tasks.evidence",
    "sql": "deepretrieval.tasks.sql",
}


def load_task(name: str, data: str | Path | None = None, **options: object) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}")
    module = importlib.import_module(TASKS[name])
    if data is None and name != "demo":
        raise ValueError(f"task {name!r} needs a data folder (--data)")
    return module.load(data, **options) if data is not None else module.load(**options)
