"""The answer path shared by training and evaluation: a completion in, the query the judge receives out.

:class:`AnswerParser` parses a completion as the prompting says (reasoning, answer format) and applies the
guards' length cap; :func:`judged_queries` turns parsed answers into what the retriever searches for in the
prompting's query mode. Reward schemes (``deepretrieval.rewards``) only see the result.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from deepretrieval.parsing import ParsedCompletion, parse_completion, parse_seed_completion
from deepretrieval.prompting import Prompting, QueryMode
from deepretrieval.tasks.base import Example
from deepretrieval.tasks.prompts import normalize_answer, prompt_template


class Guards(BaseModel):
    """Limits against reward hacking, applied alike in training and evaluation.

    - answers longer than ``max_query_chars`` count as malformed (format penalty, never sent to the retriever);
    - a query repeating one term more than ``max_term_repeats`` times gets ``repetition_penalty`` added.
      Terms are counted as the judge analyses them (``task.analyze_many``: BM25's stemmed terms without stop
      words), because that is what it adds up: "penetrance penetration penetrating" is one term repeated
      three times to BM25, and a stop word repeated costs nothing. The seed shows a policy that learned to
      repeat one term 63 times.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_query_chars: int = Field(2000, gt=0)
    max_term_repeats: int = Field(8, gt=0)
    repetition_penalty: float = -1.0


def max_term_repeats(terms: Sequence[str]) -> int:
    """Highest number of times one term occurs in ``terms`` (0 for none)."""
    return max(Counter(terms).values(), default=0)


def refuse_invalid(parsed: ParsedCompletion, error: str | None) -> ParsedCompletion:
    """``parsed`` turned invalid (``reason="invalid_query"``, the judge's message in ``detail``) when the judge
    cannot read its query (``Task.query_errors``); as it is otherwise."""
    if error is None or not parsed.format_ok:
        return parsed
    return ParsedCompletion("", parsed.think, False, "invalid_query", error)


def judged_queries(answers: Sequence[str], examples: Sequence[Example], mode: QueryMode) -> list[str]:
    """What the judge receives for each parsed answer: the answer itself (``rewrite``, the seed's mode), or
    the example's original query followed by the answer (``expand``: query expansion, where the policy
    starts from the original's quality and learns what to add; an answer that only repeats the original
    adds nothing, so the original is searched as it is, as the ``original`` baseline is in any mode)."""
    if mode == "rewrite":
        return list(answers)
    if mode == "expand":
        return [
            example.original if answer.strip() == example.original.strip() else f"{example.original} {answer}"
            for answer, example in zip(answers, examples)
        ]
    raise ValueError(f"unknown query mode {mode!r}; choose rewrite or expand")


class AnswerParser:
    """The one parse-and-guard path of training and evaluation: a completion in, a parsed answer out,
    read as ``prompting`` asks (reasoning or not, tags or JSON; the seed's rules for ``format_rules:
    seed``), with answers longer than the guard's cap turned malformed (``reason="query_too_long"``), and
    so is an answer that only copies the template's placeholder ("your query", "SELECT ...":
    ``reason="placeholder"``).

    Under the seed's rules a completion whose tags are wrong keeps its extracted answer with
    ``format_ok`` false: training never judges it (the seed's reward does not), evaluation does (the
    seed's evaluation scripts read the last answer without checking the tags)."""

    def __init__(self, prompting: Prompting, *, answer_key: str, guards: Guards | None = None):
        self.prompting = prompting
        self.answer_key = answer_key
        self.guards = guards or Guards()
        self._format = "json" if prompting.answer_format == "json" else "auto"
        self.placeholders = prompt_template(prompting.template).placeholders

    def __call__(self, completion: object) -> ParsedCompletion:
        if self.prompting.format_rules == "seed":
            parsed = parse_seed_completion(completion, answer_key=self.answer_key)
        else:
            parsed = parse_completion(
                completion,
                reasoning=self.prompting.reasoning,
                answer_key=self.answer_key,
                answer_format=self._format,  # type: ignore[arg-type]
            )
        if len(parsed.answer) > self.guards.max_query_chars:
            return ParsedCompletion("", parsed.think, False, "query_too_long")
        if parsed.format_ok and normalize_answer(parsed.answer) in self.placeholders:
            return ParsedCompletion("", parsed.think, False, "placeholder")
        return parsed
