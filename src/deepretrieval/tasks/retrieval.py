"""Tasks judged by a retriever and relevance judgments (classic IR, literature search)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from deepretrieval.metrics import Metric, parse_metrics
from deepretrieval.retrievers.base import Ranking, Retriever
from deepretrieval.retrievers.cache import CachedRetriever
from deepretrieval.tasks.base import Example, Outcome
from deepretrieval.tasks.prompts import TEMPLATES, PromptTemplate


class RetrievalTask:
    """Examples with qrels as truth; an answer is a query whose hits are scored with standard metrics.

    ``measure`` sends every answer of a batch to the retriever in one call through a
    :class:`CachedRetriever` (dedupe + LRU), retrieving to the deepest cutoff any metric needs.
    """

    answer_key = "query"

    def __init__(
        self,
        name: str,
        splits: dict[str, list[Example]],
        retriever: Retriever,
        metrics: Sequence[str] = ("ndcg@10", "recall@100"),
        template: PromptTemplate | str = "classic_ir",
        cache_dir: str | Path | None = None,
    ):
        if not metrics:
            raise ValueError("a retrieval task needs at least one metric")
        self.name = name
        self._splits = splits
        self._metrics: list[Metric] = parse_metrics(metrics)
        self.metrics = [str(m) for m in self._metrics]
        self.primary_metric = self.metrics[0]
        self.depth = max(m.k for m in self._metrics)
        self.retriever = (
            retriever
            if isinstance(retriever, CachedRetriever)
            else CachedRetriever(retriever, disk_dir=cache_dir)
        )
        self.template = TEMPLATES[template] if isinstance(template, str) else template

    @property
    def splits(self) -> list[str]:
        return sorted(self._splits)

    def default_scheme(self):
        """NDCG-style reward on the primary metric with the classic-IR format bonus (seed defaults)."""
        from deepretrieval.rewards import MetricReward

        return MetricReward(metric=self.primary_metric)

    def examples(self, split: str) -> list[Example]:
        if split not in self._splits:
            raise KeyError(f"task {self.name!r} has no split {split!r}; available: {', '.join(self.splits)}")
        return self._splits[split]

    def messages(self, example: Example, reasoning: bool = True) -> list[dict[str, str]]:
        return self.template.messages(example.fields, reasoning)

    def measure(self, answers: Sequence[str], examples: Sequence[Example]) -> list[Outcome]:
        rankings = self.retriever.search(list(answers), self.depth)
        outcomes = []
        for hits, example in zip(rankings, examples):
            ranked = hits.doc_ids if isinstance(hits, Ranking) else [hit.doc_id for hit in hits]
            outcomes.append(
                {name: metric(ranked, example.truth) for name, metric in zip(self.metrics, self._metrics)}
            )
        return outcomes
