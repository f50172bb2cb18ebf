"""Standard per-query retrieval metrics, as values (after ``ir_measures``): ``Metric.parse("ndcg@10")``.

Definitions follow trec_eval, so numbers equal ``ir_measures``/``pytrec_eval`` on the same ranking:

- ``recall@k``    relevant docs in the top k / all relevant docs (grade > 0)
- ``precision@k`` relevant docs in the top k / k
- ``ndcg@k``      sum(grade / log2(rank + 1)) over the top k, divided by the same sum for the ideal ranking
                  (linear gain, as trec_eval's ``ndcg_cut``)
- ``mrr@k``       1 / rank of the first relevant doc in the top k (0 if none)
- ``hits@k``      1 if any relevant doc is in the top k (``Success@k``)

Every other measure ``ir_measures`` knows (``map``, ``RR``, ``P(rel=2)@5``, ``Judged@10``, ``infAP``...) is
computed by it from the same rankings (:func:`score_rankings`).

A query without relevant documents scores 0 on every metric.

One non-standard measure reproduces the paper's own SciFact numbers, named so nobody takes it for BEIR's:

- ``seed_pair_ndcg@k``  the mean, over the query's relevant documents, of each one's NDCG@k alone (binary:
                  ``1 / log2(rank + 1)`` when it is in the top k, else 0; grades ignored). The seed's
                  ``src/eval/BM25/scifact.py`` averages that over (query, document) *pairs* (its parquet
                  holds one row per pair): read the seed's files (``--task parquet``) for its number,
                  whose examples are those pairs. Its "BM25 57.3" is this form, not the standard 0.676.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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
_IR_PATTERN = re.compile(r"^\s*([^\W\d]\w*)\s*(\(.*\))?\s*(?:@\s*(\d+))?\s*$")
_IR_KEYS = {"AP": "map"}
"""ir_measures names whose key is not their lower-case name (trec_eval calls AP ``map``)."""
DEFAULT_DEPTH = 1000
"""How deep a measure without a cutoff (``map``, ``RR``) ranks: the customary depth of a TREC run."""
KNOWN = (
    "hits@K, mrr@K, ndcg@K, precision@K (P@K), recall@K (R@K), or any ir_measures measure "
    "(map, RR, infAP, Judged@10...)"
)


@dataclass(frozen=True, slots=True)
class Metric:
    """A measure at a cutoff; its string form is the lower-case key used everywhere (``ndcg@10``, ``map``,
    ``judged@10``). The five measures of :data:`MEASURES` are computed here (``fast``; the reward path);
    every other measure ``ir_measures`` knows is computed by it from the rankings (``name`` is then its
    lower-case name, ``params`` its parameters as ``ir_measures`` prints them, e.g. ``(rel=2)``)."""

    name: str
    k: int | None = None
    params: str = ""

    @classmethod
    def parse(cls, text: str) -> Metric:
        match = _PATTERN.match(text.lower())
        if match:
            name = _ALIASES.get(match.group(1), match.group(1))
            k = int(match.group(2))
            if name in MEASURES:
                if k < 1:
                    raise ValueError(f"bad cutoff in {text!r}: k must be >= 1")
                return cls(name, k)
        return _parse_ir_measure(text)

    @property
    def fast(self) -> bool:
        """Computed by the hand-written functions of this module (else by ``ir_measures``)."""
        return self.name in MEASURES and not self.params and self.k is not None

    @property
    def depth(self) -> int:
        """How many results the measure reads: its cutoff, else :data:`DEFAULT_DEPTH`."""
        return self.k if self.k is not None else DEFAULT_DEPTH

    def __str__(self) -> str:
        return f"{self.name}{self.params}" + ("" if self.k is None else f"@{self.k}")

    def __call__(self, ranked: Sequence[str], qrels: Qrels) -> float:
        if not self.fast:
            return score_rankings([self], [ranked], [qrels])[0][str(self)]
        return MEASURES[self.name](ranked, qrels, self.k)  # type: ignore[arg-type]

    def ir_measure(self) -> Any:
        """The ``ir_measures`` measure this metric is."""
        import ir_measures

        name = _FAST_IR_NAMES[self.name] if self.fast else _ir_names()[self.name]
        return ir_measures.parse_measure(f"{name}{self.params}" + ("" if self.k is None else f"@{self.k}"))


_FAST_IR_NAMES = {"recall": "R", "precision": "P", "ndcg": "nDCG", "mrr": "RR", "hits": "Success"}


@functools.cache
def _ir_names() -> dict[str, str]:
    """ir_measures' measure names by lower-case name (aliases included: ``MAP`` is ``AP``)."""
    from ir_measures import measures

    names = {name.lower(): name for name in measures.registry}
    names |= {key: name for name, key in _IR_KEYS.items()}
    return names


@functools.cache
def _parse_ir_measure(text: str) -> Metric:
    """A measure ``ir_measures`` knows, checked to be computable here (its provider installed)."""
    match = _IR_PATTERN.match(text)
    names = _ir_names()
    if not match or match.group(1).lower() not in names:
        raise ValueError(f"unknown metric {text.strip()!r}; known: {KNOWN}")
    import ir_measures

    name, params, cutoff = names[match.group(1).lower()], match.group(2) or "", match.group(3)
    try:
        measure = ir_measures.parse_measure(f"{name}{params}" + (f"@{cutoff}" if cutoff else ""))
        list(ir_measures.iter_calc([measure], {"1": {"d1": 1}}, {"1": {"d1": 1.0, "d2": 0.5}}))
    except Exception as err:  # noqa: BLE001 - a bad parameter raises ValueError, TypeError, NameError...
        reason = " ".join(str(err).split())
        raise ValueError(f"metric {text.strip()!r} cannot be computed here: {reason}") from None
    k = measure.params.get("cutoff")
    if k is not None and k < 1:
        raise ValueError(f"bad cutoff in {text!r}: k must be >= 1")
    shown = str(measure)
    params = shown[len(measure.NAME) :].rsplit("@", 1)[0] if k is not None else shown[len(measure.NAME) :]
    return Metric(_IR_KEYS.get(measure.NAME, measure.NAME.lower()), k, params)


def parse_metrics(names: Iterable[str | Metric]) -> list[Metric]:
    return [name if isinstance(name, Metric) else Metric.parse(name) for name in names]


def score_rankings(
    metrics: Sequence[Metric], rankings: Sequence[Sequence[str]], qrels: Sequence[Qrels]
) -> list[dict[str, float]]:
    """Every metric of every ranking (doc ids, best first) against its judgments: the fast measures here,
    the others by ``ir_measures`` in one call for the batch. There each ranking is its own query (the
    same example may come twice in a batch) scored ``-rank``, so ties cannot reorder it; a ranking that
    is empty, or judged by no qrels, scores 0 (trec_eval's ``-c``)."""
    values = [
        {str(m): m(ranked, judged) for m in metrics if m.fast} for ranked, judged in zip(rankings, qrels)
    ]
    others = [m for m in metrics if not m.fast]
    if others:
        import ir_measures

        measures = {m.ir_measure(): str(m) for m in others}
        run = {
            str(i): {doc: float(-rank) for rank, doc in enumerate(ranked)}
            for i, ranked in enumerate(rankings)
            if len(ranked)
        }
        judged = {str(i): {doc: int(grade) for doc, grade in q.items()} for i, q in enumerate(qrels) if q}
        for row in values:
            row.update(dict.fromkeys(measures.values(), 0.0))
        for found in ir_measures.iter_calc(list(measures), judged, run):
            values[int(found.query_id)][measures[found.measure]] = float(found.value)
    return values


def evaluate_run(
    run: Mapping[str, Sequence[str]], qrels: Mapping[str, Qrels], metrics: Iterable[str | Metric]
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Score a run (query id -> ranked doc ids) over every judged query.

    Returns (mean per metric, per-query values). Judged queries missing from the run score 0.
    """
    parsed = parse_metrics(metrics)
    ids = list(qrels)
    scored = score_rankings(parsed, [run.get(qid, ()) for qid in ids], [qrels[qid] for qid in ids])
    per_query = dict(zip(ids, scored))
    count = max(len(per_query), 1)
    aggregate = {str(m): sum(values[str(m)] for values in per_query.values()) / count for m in parsed}
    return aggregate, per_query
