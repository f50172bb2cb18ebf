"""Task families: data + prompts + how an answer is judged. One constructor: :func:`load_task`.

A family is one module registered in :data:`TASKS` that exposes ``FAMILY`` (a :class:`TaskFamily`): its
options schema, where its retriever's corpus is (if it is judged by a retriever at all) and how to build
the task. Adding a family is one new module plus one line here (or ``TASKS.register``).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from pydantic import ValidationError

from deepretrieval.config import RetrieverConfig, TaskConfig
from deepretrieval.registry import Registry
from deepretrieval.retrievers import open_retriever
from deepretrieval.retrievers.base import DateRange, Ranking, Retriever
from deepretrieval.retrievers.cache import CachedRetriever
from deepretrieval.tasks.base import Example, Outcome, Task, TaskOptions
from deepretrieval.tasks.sources import resolve_data

__all__ = ["TASKS", "Example", "Outcome", "Task", "TaskFamily", "TaskOptions", "load_task", "task_family"]


PROMPTING_OPTIONS = frozenset({"template", "feedback", "feedback_words"})
"""Former task options that are now part of how a policy is prompted (``deepretrieval.prompting``)."""


@dataclass(frozen=True)
class TaskFamily:
    """How one family is configured and built.

    ``corpus(data, options)`` gives the collection its retriever indexes (None from the function: an engine
    without local documents, e.g. a search API; no function at all: the family is judged without a
    retriever, e.g. by a database, and a retriever section is refused); ``build(data, options, retriever)``
    makes the task; ``retriever`` is the retriever kind used when the config names none, or a function of
    the data and options giving it (None: this data is judged without a retriever).
    ``needs_data``: whether ``task.data`` is required; ``template``: the prompt template its tasks give a
    policy unless told otherwise; ``hub_names``: a plain ``OWNER/NAME`` that is no local path names a
    Hugging Face dataset (``irds:`` and ``hf:`` data work for every family: see :mod:`.sources`).
    """

    options: type[TaskOptions]
    build: Callable[[Path | None, Any, Retriever | None], Task]
    template: str
    corpus: Callable[[Path | None, Any], Path | None] | None = None
    retriever: str | Callable[[Path | None, Any], str | None] = "bm25"
    needs_data: bool = True
    hub_names: bool = False

    def default_retriever(self, data: Path | None, options: Any) -> str | None:
        """The retriever kind judging ``data`` unless the config names one (None: no retriever)."""
        if self.corpus is None:
            return None
        return self.retriever(data, options) if callable(self.retriever) else self.retriever


TASKS: Registry[TaskFamily] = Registry(
    "task",
    {
        "beir": "deepretrieval.tasks.beir:FAMILY",
        "demo": "deepretrieval.tasks.demo:FAMILY",
        "evidence": "deepretrieval.tasks.evidence:FAMILY",
        "literature": "deepretrieval.tasks.literature:FAMILY",
        "parquet": "deepretrieval.tasks.parquet:FAMILY",
        "sql": "deepretrieval.tasks.sql:FAMILY",
    },
)
"""Task families by name, imported on first use (a BM25 user never needs the SQL task's dependencies)."""


def task_family(name: str) -> TaskFamily:
    """The family registered as ``name`` (one-line error with a suggestion and the known ones)."""
    return TASKS.get(name)


def _options(name: str, family: TaskFamily, raw: dict[str, Any]) -> TaskOptions:
    try:
        return family.options.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            key = ".".join(str(p) for p in error["loc"])
            if error["type"] == "extra_forbidden" and error["loc"][-1] in PROMPTING_OPTIONS:
                problems.append(f"task.options.{key}: moved to prompting.{key} (how the policy is prompted)")
            elif error["type"] == "extra_forbidden":
                known = list(family.options.model_fields)
                close = difflib.get_close_matches(str(error["loc"][-1]), known, n=1)
                hint = f"did you mean {close[0]}?" if close else f"expected one of: {', '.join(known)}"
                problems.append(f"task.options.{key}: unknown option of task {name!r} ({hint})")
            else:
                message = error["msg"].removeprefix("Value error, ")
                problems.append(f"task.options.{key}: {message}")
        raise ValueError("; ".join(problems)) from None


def load_task(
    task: TaskConfig | str,
    data: str | Path | None = None,
    *,
    retriever: RetrieverConfig | Retriever | None = None,
    judge: bool = True,
    **options: Any,
) -> Task:
    """Build a task from its config (or ``name, data, **options``) and its judge.

    The retriever comes from ``retriever`` (a config section, or an opened retriever to reuse), opened
    through the retriever registry over the family's corpus, and wrapped here in a deduplicating cache
    (plus the on-disk result cache when the section names one). Used by the CLI, training and the
    quickstart alike. ``judge=False`` builds the task's examples and prompts only: no index, corpus or
    database is opened, and anything that needs a search says so (``deepretrieval data prompts``).
    """
    spec = task if isinstance(task, TaskConfig) else TaskConfig(name=task, data=_str(data), options=options)
    if isinstance(task, TaskConfig) and (data is not None or options):
        raise TypeError("load_task(TaskConfig) takes no data or options arguments: put them in the config")
    family = task_family(spec.name)
    if family.needs_data and spec.data is None:
        raise ValueError(f"task {spec.name!r} needs a data folder (task.data, --data)")
    data_path = resolve_data(spec.data, hub_names=family.hub_names)
    opts = _options(spec.name, family, dict(spec.options))
    default_kind = family.default_retriever(data_path, opts)
    if not judge:
        kind = (retriever.kind if isinstance(retriever, RetrieverConfig) else None) or default_kind
        return family.build(data_path, opts, Unjudged(kind) if default_kind is not None else None)
    if default_kind is None:
        if isinstance(retriever, Retriever) or (retriever is not None and retriever != RetrieverConfig()):
            raise ValueError(
                f"task {spec.name!r} is judged without a retriever: remove the retriever section / options"
            )
        return family.build(data_path, opts, None)
    return family.build(data_path, opts, _open_judge(family, default_kind, data_path, opts, retriever))


def _open_judge(
    family: TaskFamily,
    default_kind: str,
    data: Path | None,
    options: TaskOptions,
    retriever: RetrieverConfig | Retriever | None,
) -> CachedRetriever:
    if isinstance(retriever, CachedRetriever):
        return retriever
    if isinstance(retriever, Retriever):
        return CachedRetriever(retriever)
    section = retriever or RetrieverConfig()
    assert family.corpus is not None  # default_retriever said this family is judged by a retriever
    opened = open_retriever(
        section.kind or default_kind,
        corpus=family.corpus(data, options),
        index_dir=section.index,
        **section.options,
    )
    return CachedRetriever(opened, disk_dir=section.cache)


class Unjudged(Retriever):
    """Stands in for a task's judge when only its examples and prompts are wanted (``load_task(...,
    judge=False)``): it names the engine (prompts may say which) and refuses every search."""

    def __init__(self, kind: str) -> None:
        self.kind = kind  # type: ignore[misc]
        self.fingerprint = f"unjudged-{kind}"

    def _refuse(self) -> NoReturn:
        raise ValueError(
            "this command builds no index or judge: a prompting that shows search results (feedback) "
            "needs one; use deepretrieval eval, or drop prompting.feedback"
        )

    def search(
        self, queries: Sequence[str], k: int, *, dates: Sequence[DateRange | None] | None = None
    ) -> list[Ranking]:
        self._refuse()

    def text(self, doc_id: str) -> str:
        self._refuse()

    def analyze(self, text: str) -> list[str]:
        self._refuse()

    def close(self) -> None:
        return None


def _str(data: str | Path | None) -> str | None:
    return None if data is None else str(data)
