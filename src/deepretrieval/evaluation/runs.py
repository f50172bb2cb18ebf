"""TREC run files: the rankings the judge saw, one ``qid Q0 docid rank score tag`` line per retrieved
document, so trec_eval, ``ir_measures`` or a fusion tool can read an evaluation's rankings.

trec_eval and ``ir_measures`` order a query's documents by score, not by the rank column, and break ties
their own way (by document id); a score that ties with the one above it is therefore written as the next
32-bit float below it (``numpy.nextafter``; trec_eval holds scores as 32-bit floats, so a smaller step
would tie again there), so every tool reads the ranking the judge scored. Every other score is the
retriever's own.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from deepretrieval.evaluation.harness import EvalResult
from deepretrieval.files import atomic_write
from deepretrieval.retrievers.base import Ranking

CHUNK_LINES = 50_000  # lines encoded per write: an evidence run holds 3,000 per query


def run_tag(label: str) -> str:
    """A policy label as a run tag: one token (whitespace would split the line)."""
    return re.sub(r"\s+", "_", label.strip()) or "policy"


def strictly_decreasing(scores: np.ndarray) -> np.ndarray:
    """``scores`` as 32-bit floats, each tie with (or rise over) the score above it lowered to the next
    32-bit float below that one."""
    out = np.array(scores, dtype=np.float32)
    if out.size < 2 or bool(np.all(np.diff(out) < 0)):
        return out
    floor = np.float32(-np.inf)
    for i in range(1, out.size):
        if not out[i] < out[i - 1]:
            out[i] = np.nextafter(out[i - 1], floor)
    return out


def run_lines(query_id: str, ranking: Ranking, tag: str) -> Iterator[str]:
    """The run lines of one query's ranking (ranks from 1)."""
    for rank, (doc_id, score) in enumerate(zip(ranking.doc_ids, strictly_decreasing(ranking.scores)), 1):
        yield f"{query_id} Q0 {doc_id} {rank} {float(score)!r} {tag}\n"


def write_run(path: str | Path, result: EvalResult, query_ids: Sequence[str]) -> Path:
    """Write ``result``'s kept rankings, in ``query_ids`` order, as a TREC run file (atomically). A query
    that failed, or retrieved nothing, has no line (trec_eval's convention)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tag = run_tag(result.policy)
    with atomic_write(target) as handle:
        chunk: list[str] = []
        for query_id in query_ids:
            ranking = result.rankings.get(query_id)
            if ranking is None:
                continue
            chunk.extend(run_lines(query_id, ranking, tag))
            if len(chunk) >= CHUNK_LINES:
                handle.write("".join(chunk).encode("utf-8"))
                chunk = []
        handle.write("".join(chunk).encode("utf-8"))
    return target
