"""The task contract: examples (prompt fields + ground truth), prompts, and measurement."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from deepretrieval.retrievers.base import Ranking


@dataclass(frozen=True)
class Example:
    """One training/evaluation item.

    ``fields`` fill the prompt template (e.g. ``{"query": ...}`` or ``{"question": ..., "schema": ...}``);
    ``truth`` is what the outcome is judged against: qrels ``{doc_id: grade}`` for retrieval,
    a list of answer strings for evidence seeking, gold SQL (+ db id) for SQL.
    ``original`` is the text the "original query" baseline sends to the retriever.
    """

    id: str
    fields: Mapping[str, str]
    truth: Any
    original: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)


Outcome = dict[str, float]
"""Measured result of one answer, keyed by lower-case metric names (``ndcg@10``, ``rank``, ``ex``...)."""


@dataclass(frozen=True, slots=True)
class Failure:
    """An answer the judge could not judge (a search API or retrieval service that kept failing): it says
    nothing about the answer's quality. ``reason`` says what went wrong, e.g. ``search failed: pubmed:
    server error (HTTP 500); gave up after 6 attempts``."""

    reason: str


@dataclass(frozen=True, slots=True)
class Judgment:
    """One answer's outcome (or failure) with the ranking the judge saw, at the task's depth (``None``
    for a task that judges without ranking documents, such as SQL, and for a failure)."""

    outcome: Outcome | Failure
    ranking: Ranking | None = None


class PromptShape(Protocol):
    """What a task needs of a prompting (``deepretrieval.prompting.Prompting``) to write a prompt: how many
    top results of the user's query to show (``feedback``, ``feedback_words`` words each), and the template
    that turns the fields into chat messages."""

    feedback: int
    feedback_words: int

    def messages(self, fields: Mapping[str, str]) -> list[dict[str, str]]: ...


class TaskOptions(BaseModel):
    """Base of every task family's options (``task.options`` in a run config): unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@runtime_checkable
class Task(Protocol):
    """A task family instance bound to its data and its judge (retriever or database).

    ``metrics`` are the reported metrics (table columns); ``outcome_keys`` every key ``measure`` fills
    (the metrics plus extras such as ``rank`` or ``executed``), so a reward scheme can be checked against
    them before a run starts. ``default_reward`` is the family's reward scheme as data
    (``{"kind": "metric", "metric": "ndcg@10"}``), resolved by ``deepretrieval.rewards``.
    ``default_template`` is the prompt template a policy gets unless told otherwise;
    ``supports_feedback`` says whether the task can show a policy the top results of the user's query
    (``feedback_snippets``), which a prompting may ask for.
    """

    name: str
    answer_key: str  # the JSON key an answer may carry: "query" or "sql"
    default_template: str
    supports_feedback: bool
    primary_metric: str  # e.g. "ndcg@10", "recall@3000", "hits@20", "ex"
    metrics: Sequence[str]
    outcome_keys: frozenset[str]
    default_reward: Mapping[str, Any]
    default_split: str
    fingerprint: str  # identifies the judge (index contents and settings, or the databases)

    @property
    def splits(self) -> list[str]: ...

    def examples(self, split: str) -> list[Example]: ...

    def messages(self, example: Example, prompting: PromptShape) -> list[dict[str, str]]:
        """Chat messages for the policy: the example's fields (with the top results of its query when the
        prompting asks for feedback) in the prompting's template; rendered later by ``Prompting.render``."""
        ...

    def query_errors(self, queries: Sequence[str]) -> list[str | None]:
        """Why each judged query cannot be searched (``None``: it can), e.g. a Boolean query that does not
        parse, with the parser's message: such an answer is invalid (format penalty, never an empty
        result)."""
        ...

    def feedback_snippets(self, example: Example, count: int, words: int) -> list[str]:
        """The opening ``words`` words of the top ``count`` results of the example's original query
        (tasks whose ``supports_feedback`` is false raise ``ValueError``)."""
        ...

    def analyze_many(self, answers: Sequence[str]) -> list[list[str]]:
        """The terms of each answer as the judge counts them (for the repetition guard), in one call;
        ``[]`` for each when repeating a term cannot inflate the outcome (SQL)."""
        ...

    def measure(self, answers: Sequence[str], examples: Sequence[Example]) -> list[Outcome | Failure]:
        """Judge a batch of parsed answers, one outcome per (answer, example) pair, in one batched call
        to the retriever/database. Must not raise on any answer text. A :class:`Failure` means the answer
        could not be judged (a search API that kept failing) and carries the cause."""
        ...

    def judge(self, answers: Sequence[str], examples: Sequence[Example]) -> list[Judgment]:
        """What :meth:`measure` does, with the ranking behind each outcome kept (evaluation writes them
        as TREC run files; the reward path calls ``measure`` and keeps none)."""
        ...

    def close(self) -> None:
        """Release the judge (executor processes, HTTP sessions, caches)."""
        ...
