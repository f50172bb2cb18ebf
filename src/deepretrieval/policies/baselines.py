"""Baselines that need no model: the user's original query, and the gold answer (proves a harness)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from bm25s.stopwords import STOPWORDS_EN

from deepretrieval.prompting import DEFAULT_FEEDBACK_WORDS
from deepretrieval.tasks.base import Example, Task

BLIND_FEEDBACK = 3
"""Results appended by blind feedback when the prompting shows none."""


class OriginalQuery:
    """Sends each example's original text to the retriever unchanged."""

    name = "original"
    query_mode = "rewrite"

    def answers(self, examples: Sequence[Example]) -> list[str]:
        return [example.original for example in examples]


class OrWords:
    """The original's words joined by OR, no model: what ORing every word of a review title looks like (stop
    words and one-character words left out, each word once). On a ranked engine it is a bag of words; on a
    Boolean engine it matches every document that shares a word with the title."""

    name = "or-words"
    query_mode = "rewrite"

    def answers(self, examples: Sequence[Example]) -> list[str]:
        return [" OR ".join(content_words(example.original)) for example in examples]


def content_words(text: str) -> list[str]:
    """The words of ``text`` (two or more word characters), each once, stop words left out, in order."""
    words = (word for word in _WORD.findall(text) if word.lower() not in _STOPWORDS)
    return list(dict.fromkeys(words))


_WORD = re.compile(r"\w\w+")
_STOPWORDS = frozenset(STOPWORDS_EN)


class Feedback:
    """Blind pseudo-relevance feedback: answers with the snippets of the top ``count`` results of the user's
    query (``words`` words each), all of them: the snippets a feedback prompt shows a policy. In ``expand``
    mode that is classic PRF expansion, the bar a policy that reads the same results must clear to show it
    learned which of them to trust."""

    name = "feedback"
    query_mode = "expand"  # the user's words followed by the snippets, unless eval is told otherwise

    def __init__(self, task: Task, count: int = BLIND_FEEDBACK, words: int = DEFAULT_FEEDBACK_WORDS) -> None:
        if not task.supports_feedback:
            raise ValueError(
                f"--policy feedback needs a task judged by a ranked search; {task.name!r} is not"
            )
        if count < 1 or words < 1:
            raise ValueError(f"blind feedback needs count and words >= 1, got {count}, {words}")
        self.task, self.count, self.words = task, count, words

    def answers(self, examples: Sequence[Example]) -> list[str]:
        return [" ".join(self.task.feedback_snippets(ex, self.count, self.words)) for ex in examples]


class Gold:
    """Answers with the ground truth itself (gold SQL); only defined where the truth is an answer string."""

    name = "gold"
    query_mode = "rewrite"

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
    query_mode = "rewrite"

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
