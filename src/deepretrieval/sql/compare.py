"""Execution accuracy: does a predicted query's result equal the gold query's result?

Two semantics, after value normalisation (:func:`normalize_value`):

* **Spider** (the official test-suite evaluation, ``exec_eval.result_eq``): results are multisets of
  rows; row order matters only when the gold query orders its output; the columns of the prediction may
  be a permutation of the gold columns.
* **BIRD** (the official ``evaluation.py``): ``set(predicted rows) == set(gold rows)``; order, duplicates
  and row width beyond set membership are ignored, columns are compared in order.

Deviations from the official scripts, all deliberate and small:

* values are normalised: ``1 == 1.0 == True`` (as in Python, so unchanged) and floats are compared at 12
  significant digits, so ``0.1 + 0.2`` equals ``0.3`` (the official scripts compare floats exactly);
* Spider's "order matters" is decided by a top-level ``ORDER BY`` in the gold query, found by the
  tokenizer; the official script searches the text for ``order by`` anywhere (also inside subqueries,
  window clauses and string literals, where it does not order the output);
* Spider's column permutations are searched exhaustively among columns with equal value multisets,
  interchangeable (identical) columns tried once, instead of constraining them from 20 random rows;
  the search stops after :data:`MAX_PERMUTATIONS` candidates (counted as a mismatch), which needs many
  columns holding the same values in different row arrangements.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Sequence
from functools import lru_cache
from itertools import pairwise
from typing import Any, Literal

from deepretrieval.sql.executor import tokenize

Dialect = Literal["spider", "bird"]
DIALECTS: tuple[Dialect, ...] = ("spider", "bird")
MAX_PERMUTATIONS = 10_000


def normalize_value(value: Any) -> Any:
    """A hashable value where numerically equal numbers are equal: integral floats become ints,
    other floats are rounded to 12 significant digits."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return value
        if value.is_integer():
            return int(value)
        rounded = float(f"{value:.12g}")
        return int(rounded) if rounded.is_integer() else rounded
    return value


def normalize_rows(rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
    return [tuple(normalize_value(v) for v in row) for row in rows]


@lru_cache(maxsize=65_536)
def orders_output(sql: str) -> bool:
    """Whether ``sql`` has an ``ORDER BY`` at the top level (outside parentheses, strings, comments)."""
    words = [t.text.upper() for t in tokenize(sql) if t.kind == "word" and t.depth == 0]
    return any(a == "ORDER" and b == "BY" for a, b in pairwise(words))


def _unordered(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(sorted(row, key=lambda v: (type(v).__name__, repr(v))))


def _column_permutations(
    gold: list[tuple[Any, ...]], pred: list[tuple[Any, ...]]
) -> Iterator[tuple[int, ...]]:
    """Orders of the predicted columns that could reproduce the gold columns, identity first.

    A gold column can only come from a predicted column with the same multiset of values; among
    identical predicted columns only the first unused one is tried.
    """
    width = len(gold[0])
    gold_counts = [Counter(row[i] for row in gold) for i in range(width)]
    pred_columns = [tuple(row[j] for row in pred) for j in range(width)]
    pred_counts = [Counter(column) for column in pred_columns]
    candidates = [[j for j in range(width) if pred_counts[j] == gold_counts[i]] for i in range(width)]
    chosen: list[int] = []
    used: set[int] = set()

    def extend(i: int) -> Iterator[tuple[int, ...]]:
        if i == width:
            yield tuple(chosen)
            return
        tried: set[tuple[Any, ...]] = set()
        for j in candidates[i]:
            if j in used or pred_columns[j] in tried:
                continue
            tried.add(pred_columns[j])
            chosen.append(j)
            used.add(j)
            yield from extend(i + 1)
            chosen.pop()
            used.discard(j)

    yield from extend(0)


def spider_match(
    gold_rows: Sequence[Sequence[Any]], pred_rows: Sequence[Sequence[Any]], order_matters: bool
) -> bool:
    """Spider execution match (test-suite ``result_eq`` semantics, see module doc)."""
    gold, pred = normalize_rows(gold_rows), normalize_rows(pred_rows)
    if not gold and not pred:
        return True
    if len(gold) != len(pred) or len(gold[0]) != len(pred[0]):
        return False
    unordered_gold, unordered_pred = [_unordered(r) for r in gold], [_unordered(r) for r in pred]
    if order_matters and unordered_gold != unordered_pred:
        return False
    if not order_matters and Counter(unordered_gold) != Counter(unordered_pred):
        return False
    gold_counts = Counter(gold)
    for tried, perm in enumerate(_column_permutations(gold, pred)):
        if tried >= MAX_PERMUTATIONS:
            return False
        permuted = [tuple(row[j] for j in perm) for row in pred]
        if (permuted == gold) if order_matters else (Counter(permuted) == gold_counts):
            return True
    return False


def bird_match(gold_rows: Sequence[Sequence[Any]], pred_rows: Sequence[Sequence[Any]]) -> bool:
    """BIRD execution match: equal sets of rows."""
    return set(normalize_rows(gold_rows)) == set(normalize_rows(pred_rows))


def results_match(
    gold_rows: Sequence[Sequence[Any]],
    pred_rows: Sequence[Sequence[Any]],
    *,
    dialect: Dialect,
    gold_sql: str = "",
) -> bool:
    """Execution match under ``dialect``; Spider takes row order into account when ``gold_sql`` orders."""
    if dialect == "spider":
        return spider_match(gold_rows, pred_rows, order_matters=orders_output(gold_sql))
    if dialect == "bird":
        return bird_match(gold_rows, pred_rows)
    raise ValueError(f"unknown SQL dialect {dialect!r}; expected one of {DIALECTS}")
