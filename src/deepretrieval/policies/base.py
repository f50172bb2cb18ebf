"""Policy contracts: who writes the answers that evaluation judges."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, Self, runtime_checkable

from deepretrieval.policies.card import PolicyCard
from deepretrieval.prompting import Prompting, QueryMode
from deepretrieval.tasks.base import Example


@dataclass(frozen=True)
class GenerationFailure:
    """A completion that could not be had (an API that kept failing): the example is reported as failed
    and left out of the means, never judged as a bad answer. ``reason`` says what went wrong."""

    reason: str


class Completion(str):
    """A completion's text that also says whether generation stopped at the token cap (``truncated``), for
    an OpenAI-style ``finish_reason``; everywhere else it is the plain string."""

    truncated: bool

    def __new__(cls, text: str, truncated: bool = False) -> Self:
        completion = super().__new__(cls, text)
        completion.truncated = truncated
        return completion


@runtime_checkable
class CompletionPolicy(Protocol):
    """A language model: chat messages in, raw completions out (parsed by the harness). ``card`` says how
    it was trained to be prompted (None: an untrained model, prompted as the caller says);
    ``fingerprint`` identifies the weights and sampling settings (saved generations are reused only
    under the same fingerprint and prompts)."""

    name: str
    card: PolicyCard | None
    fingerprint: str

    def complete(
        self, prompts: Sequence[list[dict[str, str]]], prompting: Prompting
    ) -> list[str | GenerationFailure]:
        """One completion per prompt, rendered as ``prompting`` says and starting with its prefill, of at
        most ``prompting.max_new_tokens`` new tokens."""
        ...


@runtime_checkable
class AnswerPolicy(Protocol):
    """A baseline that produces answers directly (the original query, the gold SQL, a predictions file).
    It is handed the whole split, in split order, so that it can check its alignment with it.
    ``query_mode`` is how its answers reach the judge unless the caller says otherwise."""

    name: str
    query_mode: QueryMode

    def answers(self, examples: Sequence[Example]) -> list[str]: ...


Policy = CompletionPolicy | AnswerPolicy
