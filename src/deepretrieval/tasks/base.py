"""The task contract: examples (prompt fields + ground truth), prompts, and measurement."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


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


class Task(Protocol):
    """A task family instance bound to its data and its judge (retriever or database)."""

    name: str
    answer_key: str  # the JSON key an answer may carry: "query" or "sql"
    primary_metric: str  # e.g. "ndcg@10", "recall@3000", "hits@20", "ex"

    def examples(self, split: str) -> list[Example]: ...

    def messages(self, example: Example, reasoning: bool = True) -> list[dict[str, str]]:
        """Chat messages for the policy (system + user); rendered later by the tokenizer's template."""
        ...

    def default_scheme(self) -> Any:
        """The task family's reward scheme with the seed's values (see ``deepretrieval.rewards``)."""
        ...

    def measure(self, answers: Sequence[str], examples: Sequence[Example]) -> list[Outcome]:
        """Judge a batch of parsed answers, one outcome per (answer, example) pair, in one batched
        call to the retriever/database. Must not raise on any answer text."""
        ...
