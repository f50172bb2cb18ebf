"""Tasks judged by a retriever and relevance judgments (classic IR, literature search)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from deepretrieval.metrics import Metric, parse_metrics, score_rankings
from deepretrieval.retrievers.base import Ranking, Retriever
from deepretrieval.tasks.base import Example, Failure, Judgment, Outcome, PromptShape
from deepretrieval.tasks.prompts import prompt_template


def opening_words(texts: Sequence[str], words: int) -> list[str]:
    """The first ``words`` words of each text: the snippets a feedback prompt shows."""
    return [" ".join(text.split()[:words]) for text in texts]


def feedback_block(snippets: Sequence[str]) -> str:
    """The ``{feedback}`` slot of a prompt: one ``- snippet`` line per result."""
    return "\n".join(f"- {snippet}" for snippet in snippets)


def pick_default_split(splits: Sequence[str]) -> str:
    """``test`` when there is one (evaluation's usual target), else ``dev``, else the first split."""
    return next((s for s in ("test", "dev") if s in splits), min(splits))


class RetrievalTask:
    """Examples with qrels as truth; an answer is a query whose hits are scored with standard metrics.

    ``measure`` sends every answer of a batch to the retriever in ONE call (the retriever handed in by
    :func:`deepretrieval.tasks.load_task` deduplicates and caches), retrieving to the deepest cutoff any
    metric needs. With ``ignore_identical_ids`` (BEIR's evaluator default), a retrieved document whose id
    equals the query id is dropped before scoring: in collections whose queries are themselves documents
    (ArguAna, Quora) the query would otherwise retrieve itself.

    A prompting with ``feedback`` > 0 also shows the opening ``feedback_words`` words of the top ``feedback``
    documents the original query retrieves (pseudo-relevance feedback, the ``{feedback}`` slot of the
    template): a small policy cannot know a collection's vocabulary, but it can read it off the results.
    """

    answer_key = "query"
    supports_feedback = True

    def __init__(
        self,
        name: str,
        splits: dict[str, list[Example]],
        retriever: Retriever,
        metrics: Sequence[str] = ("ndcg@10", "recall@100"),
        template: str = "classic_ir",
        *,
        ignore_identical_ids: bool = True,
    ):
        if not metrics:
            raise ValueError("a retrieval task needs at least one metric")
        if not splits:
            raise ValueError(f"task {name!r} has no splits")
        self.name = name
        self._splits = splits
        self._metrics: list[Metric] = parse_metrics(metrics)
        self.metrics = tuple(str(m) for m in self._metrics)
        self.outcome_keys = frozenset(self.metrics)
        self.primary_metric = self.metrics[0]
        self.depth = max(m.depth for m in self._metrics)
        self.retriever = retriever
        self.ignore_identical_ids = ignore_identical_ids
        self.default_template = prompt_template(template).name
        self._feedback_texts: dict[tuple[str, int, int], str] = {}
        self.default_split = pick_default_split(list(splits))

    @property
    def splits(self) -> list[str]:
        return sorted(self._splits)

    @property
    def fingerprint(self) -> str:
        return self.retriever.fingerprint

    @property
    def default_reward(self) -> dict[str, Any]:
        """NDCG-style reward on the primary metric with the classic-IR format bonus (seed defaults)."""
        return {"kind": "metric", "metric": self.primary_metric}

    def examples(self, split: str) -> list[Example]:
        if split not in self._splits:
            raise KeyError(f"task {self.name!r} has no split {split!r}; available: {', '.join(self.splits)}")
        return self._splits[split]

    def prompt_fields(self, example: Example) -> dict[str, str]:
        """The template's fields of one example (families add their own, e.g. the search engine's name)."""
        return dict(example.fields)

    def messages(self, example: Example, prompting: PromptShape) -> list[dict[str, str]]:
        fields = self.prompt_fields(example)
        if prompting.feedback:
            fields["feedback"] = self.feedback_text(example, prompting.feedback, prompting.feedback_words)
        return prompting.messages(fields)

    def feedback_snippets(self, example: Example, count: int, words: int) -> list[str]:
        """The opening ``words`` words of the top ``count`` documents for the example's original query."""
        ranking = self.rankings([example.original], [example], count)[0]
        return opening_words(self.retriever.texts(ranking.doc_ids[:count]), words)

    def feedback_text(self, example: Example, count: int, words: int) -> str:
        """The ``{feedback}`` slot, computed once per example and setting."""
        key = (example.id, count, words)
        text = self._feedback_texts.get(key)
        if text is None:
            text = self._feedback_texts[key] = feedback_block(self.feedback_snippets(example, count, words))
        return text

    def analyze_many(self, answers: Sequence[str]) -> list[list[str]]:
        return self.retriever.analyze_many(answers)

    def query_errors(self, queries: Sequence[str]) -> list[str | None]:
        return self.retriever.query_errors(queries)

    def rankings(self, answers: Sequence[str], examples: Sequence[Example], depth: int) -> list[Ranking]:
        """One batched search; with ``ignore_identical_ids`` one extra hit is fetched so that dropping
        the query's own document still leaves ``depth`` hits."""
        if not self.ignore_identical_ids:
            return self.retriever.search(list(answers), depth)
        rankings = self.retriever.search(list(answers), depth + 1)
        return [_without(ranking, example.id, depth) for ranking, example in zip(rankings, examples)]

    def measure(self, answers: Sequence[str], examples: Sequence[Example]) -> list[Outcome | Failure]:
        return [judgment.outcome for judgment in self.judge(answers, examples)]

    def judge(self, answers: Sequence[str], examples: Sequence[Example]) -> list[Judgment]:
        return self.score(self.rankings(answers, examples, self.depth), examples)

    def score(self, rankings: Sequence[Ranking], examples: Sequence[Example]) -> list[Judgment]:
        """The task's metrics of each ranking against its example's qrels (one ``ir_measures`` call for
        the measures it computes); a failed search is a :class:`Failure` naming its cause."""
        judged = [i for i, ranking in enumerate(rankings) if not ranking.failed]
        values = iter(
            score_rankings(
                self._metrics, [rankings[i].doc_ids for i in judged], [examples[i].truth for i in judged]
            )
        )
        return [
            Judgment(search_failure(ranking)) if ranking.failed else Judgment(next(values), ranking)
            for ranking in rankings
        ]

    def close(self) -> None:
        self.retriever.close()


def search_failure(ranking: Ranking) -> Failure:
    """The failure of a search that could not be made, with the retriever's reason."""
    return Failure(f"search failed: {ranking.error}")


def _without(ranking: Ranking, doc_id: str, depth: int) -> Ranking:
    """``ranking`` minus the document ``doc_id``, cut to ``depth`` hits."""
    if doc_id in ranking.doc_ids:
        keep = [i for i, d in enumerate(ranking.doc_ids) if d != doc_id][:depth]
        total = None if ranking.total is None else ranking.total - 1
        return Ranking([ranking.doc_ids[i] for i in keep], ranking.scores[keep], total=total)
    if len(ranking) <= depth:
        return ranking
    return Ranking(ranking.doc_ids[:depth], ranking.scores[:depth], total=ranking.total)
