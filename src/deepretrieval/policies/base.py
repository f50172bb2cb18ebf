"""Policy contracts: who writes the answers that evaluation judges."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from deepretrieval.policies.card import PolicyCard
from deepretrieval.tasks.base import Example


@runtime_checkable
class CompletionPolicy(Protocol):
    """A language model: chat messages in, raw completions out (parsed by the harness). ``card`` says how
    it was trained to be prompted (None: an untrained model, prompted as the caller says)."""

    name: str
    card: PolicyCard | None

    def complete(self, prompts: Sequence[list[dict[str, str]]]) -> list[str]: ...


@runtime_checkable
class AnswerPolicy(Protocol):
    """A baseline that produces answers directly (the original query, the gold SQL)."""

    name: str

    def answers(self, examples: Sequence[Example]) -> list[str]: ...


Policy = CompletionPolicy | AnswerPolicy
