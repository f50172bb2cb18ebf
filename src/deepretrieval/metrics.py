"""Standard per-query retrieval metrics, as values (after ``ir_measures``): ``Metric.parse("ndcg@10")``.

Definitions follow trec_eval, so numbers equal ``ir_measures``/``pytrec_eval`` on the same ranking:

- ``recall@k``    relevant docs in the top k / all relevant docs (grade > 0)
- ``precision@k`` relevant docs in the top k / k
- ``ndcg@k``      sum(grade / log2(rank + 1)) over the top k, divided by the same sum for the ideal ranking
                  (linear gain, as trec_eval's ``ndcg_cut``)
- ``mrr@k``       1 / rank of the first relevant doc in the top k (0 if none)
- ``hits@k``      1 if any relevant doc is in the top k (``Success@k``)

A query without relevant documents scores 0 on every metric.

One non-standard measure reproduces the paper's own SciFact numbers, named so nobody takes it for BEIR's:

- ``seed_pair_ndcg@k``  the mean, over the query's relevant documents, of each one's NDCG@k alone (binary:
                  ``1 / log2(rank + 1)`` when it is in the top k, else 0; grades ignored). The seed's
                  ``src/eval/BM25/scifact.py`` averages that over (query, document) *pairs* (its parquet
                  holds one row per pair): read the seed's files (``--task parquet``) for its number,
                  whose examples are those pairs. Its "BM25 57.3" is this form, not the standard 0.676.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

Qrels = Mapping[str, int]
"""Relevance judgments of one query: doc id -> grade (> 0 means relevant)."""

_LOG2 = [0.0] + [1.0 / math.log2(rank + 1) for rank in range(1, 10_001)]


def _discount(rank: int) -> float:
    return _LOG2[rank] if rank < len(_LOG2) else 1.0 / math.log2(rank + 1)


def _relevant(qrels: Qrels) -> set[str]:
    return {doc for doc, grade in qrels.items() if grade > 0}


def recall(ranked: Sequence[str], qrels: Qrels, k: int) -> float:
    relevant = _relevant(qrels)
    return len(relevant.intersection(ranked[:k])) / len(relevant) if relevant else 0.0


def precision(ranked: Sequence[str], qrels: Qrels, k: int) -> float:
    return len(_relevant(qrels).intersection(ranked[:k])) / k


def ndcg(ranked: Sequence[str], qrels: Qrels, k: int) -> float:
    ideal_grades = sorted((grade for grade in qrels.values() if grade > 0), reverse=True)[:k]
    if not ideal_grades:
        return 0.0
    ideal = sum(grade * _discount(rank) for rank, grade in enumerate(ideal_grades, start=1))
    gained = 0.0
    for rank, doc in enumerate(ranked[:k], start=1):
        grade = qrels.get(doc)
        if grade is not None and grade > 0:
            gained += grade * _discount(rank)
    return gained / ideal


def mrr(ranked: Sequence[str], qrels: Qrels, k: int) -> float:
    for rank, doc in enumerate(ranked[:k], start=1):
        if qrels.get(doc, 0) > 0:
            return 1.0 / rank
    return 0.0


def hits(ranked: Sequence[str], qrels: Qrels, k: int) -> float:
    return 1.0 if any(qrels.get(doc, 0) > 0 for doc in ranked[:k]) else 0.0


def seed_pair_ndcg(ranked: Sequence[str], qrels: Qrels, k: int) -> float:
    """The paper's pairwise NDCG@k (``src/Lucene/utils.py`` ``ndcg_at_k`` with one target), averaged over
    the query's relevant documents (see the module notes)."""
    relevant = _relevant(qrels)
    if not relevant:
        return 0.0
    gained = sum(_discount(rank) for rank, doc in enumerate(ranked[:k], start=1) if doc in relevant)
    return gained / len(relevant)


MEASURES: dict[str, Callable[[Sequence[str], Qrels, int], float]] = {
    "recall": recall,
    "precision": precision,
    "ndcg": ndcg,
    "mrr": mrr,
    "hits": hits,
    "seed_pair_ndcg": seed_pair_ndcg,
}
_ALIASES = {"r": "recall", "p": "precision", "rr": "mrr", "success": "hits", "ndcg_cut": "ndcg"}
_PATTERN = re.compile(r"^\s*([a-z_]+)\s*@\s*(\d+)\s*$")


@dataclass(frozen=True, slots=True)
class Metric:
    """A measure at a cutoff; its string form is the lower-case key used everywhere (``ndcg@10``)."""

    name: str
    k: int

    @classmethod
    def parse(cls, text: str) -> Metric:
        match = _PATTERN.match(text.lower())
        if not match:
            raise ValueError(
                f"bad metric {text!r}: expected NAME@K, e.g. ndcg@10, recall@100, hits@20, mrr@10"
            )
        name = _ALIASES.get(match.group(1), match.group(1))
        k = int(match.group(2))
        if name not in MEASURES:
            raise ValueError(
                f"unknown metric {match.group(1)!r} in {text!r}; known: {', '.join(sorted(MEASURES))}"
            )
        if k < 1:
            raise ValueError(f"bad cutoff in {text!r}: k must be >= 1")
        return cls(name, k)

    def __str__(self) -> str:
        return f"{self.name}@{self.k}"

    def __call__(self, ranked: Sequence[str], qrels: Qrels) -> float:
        return MEASURES[self.name](ranked, qrels, self.k)


def parse_metrics(names: Iterable[str | Metric]) -> list[Metric]:
    return [name if isinstance(name, Metric) else Metric.parse(name) for name in names]


def evaluate_run(
    run: Mapping[str, Sequence[str]], qrels: Mapping[str, Qrels], metrics: Iterable[str | Metric]
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Score a run (query id -> ranked doc ids) over every judged query.

    Returns (mean per metric, per-query values). Judged queries missing from the run score 0.
    """
    parsed = parse_metrics(metrics)
    per_query = {qid: {str(m): m(run.get(qid, ()), judged) for m in parsed} for qid, judged in qrels.items()}
    count = max(len(per_query), 1)
    aggregate = {str(m): sum(values[str(m)] for values in per_query.values()) / count for m in parsed}
    return aggregate, per_query
