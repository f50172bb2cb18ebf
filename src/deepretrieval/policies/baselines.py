"""Baselines that need no model: the user's original query, and the gold answer (proves a harness)."""

from __future__ import annotations

from collections.abc import Sequence

from deepretrieval.tasks.base import Example


class OriginalQuery:
    """Sends each example's original text to the retriever unchanged."""

    name = "original"

    def answers(self, examples: Sequence[Example]) -> list[str]:
        return [example.original for example in examples]


class Feedback:
    """Blind pseudo-relevance feedback: answers with the snippets of the top results the task shows the policy
    (its ``feedback`` option), all of them. In ``expand`` mode that is classic PRF expansion, the bar a policy
    that reads the same results must clear to show it learned which of them to trust."""

    name = "feedback"
    query_mode = "expand"  # the user's words followed by the snippets, unless eval is told otherwise

    def __init__(self, task: object) -> None:
        if not getattr(task, "feedback", 0):
            raise ValueError(
                "--policy feedback needs a retrieval task with feedback > 0 (task.options.feedback)"
            )
        self.task = task

    def answers(self, examples: Sequence[Example]) -> list[str]:
        return [" ".join(self.task.feedback_snippets(example)) for example in examples]  # type: ignore[attr-defined]


class Gold:
    """Answers with the ground truth itself (gold SQL); only defined where the truth is an answer string."""

    name = "gold"

    def answers(self, examples: Sequence[Example]) -> list[str]:
        if examples and not isinstance(examples[0].truth, str):
            raise ValueError(
                "--policy gold needs a task whose ground truth is an answer (e.g. SQL), not qrels"
            )
        return [example.truth for example in examples]


class ExpertStrategy:
    """Literature search: the review's own expert search strategy as stored with the topic (PubMed or Ovid
    syntax; the local Boolean engine reads both)."""

    name = "expert"

    def answers(self, examples: Sequence[Example]) -> list[str]:
        missing = [
            ex.id for ex in examples if not (ex.meta.get("boolean_query") or ex.meta.get("ovid_query"))
        ]
        if missing:
            raise ValueError(
                f"--policy expert needs each topic's expert strategy (metadata.boolean_query or ovid_query); "
                f"{len(missing)} topics have none, e.g. {missing[:3]}"
            )
        return [ex.meta.get("boolean_query") or ex.meta["ovid_query"] for ex in examples]
