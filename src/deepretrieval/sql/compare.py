"""Execution accuracy: does a predicted query's result equal the gold query's result?

Two semantics, after value normalisation (:func:`normalize_value`):

* **Spider** (the official test-suite evaluation, ``exec_eval.result_eq``): results are multisets of
  rows; row order matters only when the gold query orders its output; the columns of the prediction may
  be a permutation of the gold columns.
* **BIRD** (the official ``evaluation.py``): ``set(predicted rows) == set(gold rows)``; order, duplicates
  and row width beyond set membership are ignored, columns are compared in order.

Spider's official execution evaluator (test-suite-sql-eval, ``evaluation.py --etype exec``) removes every
``DISTINCT`` from both the gold and the predicted query before executing them unless it is run with
``--keep_distinct``, so by default ``SELECT DISTINCT name`` and ``SELECT name`` are judged equal even when
the results differ by duplicates. Our default, ``compat="keep_distinct"``, equals its ``--keep_distinct``
mode: a query is executed as written. ``compat="official"`` reproduces its default: :func:`execution_sql`
rewrites both queries as the evaluator does before it executes them (its DISTINCT removal with sqlparse's
tokens, its ``> =`` repairs, ``" value "`` placeholders of predictions, ``YEAR(CURDATE())``), and
:func:`results_match` then decides "order matters" by its rule (``"order by"`` anywhere in the rewritten
gold, lower-cased) and compares floats exactly, as it does. What still differs in ``official`` mode: the
sandbox's time and size limits (the evaluator allows 60 s and any size), invalid UTF-8 decoded with
replacement characters (it drops the bytes), the permutation search bound below, and the test-suite's
extra databases (it executes on every ``.sqlite`` beside the gold one; Spider's own release has one).
Measured against a transcription of the evaluator's exec path on the 972 Spider dev questions whose
database we have: identical verdicts in both modes for 6,409 gold/variant pairs and for C3SQL's published
dev predictions (28 of whose 972 verdicts differ between the two modes).

Deviations from the official scripts in the default ``keep_distinct`` mode, all deliberate and small:

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
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from functools import lru_cache
from itertools import pairwise
from typing import Any, Literal

from deepretrieval.sql.executor import DEFAULT_MAX_SQL_CHARS, tokenize

Dialect = Literal["spider", "bird"]
DIALECTS: tuple[Dialect, ...] = ("spider", "bird")
Compat = Literal["keep_distinct", "official"]
COMPATS: tuple[Compat, ...] = ("keep_distinct", "official")
MAX_PERMUTATIONS = 10_000
_CURRENT_YEAR = re.compile(r"YEAR\s*\(\s*CURDATE\s*\(\s*\)\s*\)\s*", re.IGNORECASE)
OFFICIAL_CURRENT_YEAR = "2020"  # what the evaluator substitutes for YEAR(CURDATE())


def check_compat(compat: object, dialect: Dialect) -> Compat:
    """``compat`` if it is a valid comparison mode for ``dialect``, else a ``ValueError`` saying why."""
    if compat not in COMPATS:
        raise ValueError(f"unknown SQL compat mode {compat!r}; expected one of {COMPATS}")
    if compat == "official" and dialect != "spider":
        raise ValueError(
            "compat='official' reproduces Spider's evaluator (DISTINCT removed); BIRD's evaluator keeps "
            "DISTINCT, so use compat='keep_distinct' with dialect='bird'"
        )
    return compat  # type: ignore[return-value]


def remove_distinct(sql: str) -> str:
    """``sql`` as test-suite-sql-eval's ``remove_distinct`` leaves it: the first statement sqlparse finds,
    every token spelt ``distinct`` (any case, outside strings, quoted names and comments) deleted, the rest
    untouched. sqlparse's lexer is used because the rule is defined by its tokens; statements are split
    without sqlparse's grouping, which yields the same tokens and has no size limit. Text without
    ``distinct`` or ``;`` comes back unchanged without lexing, text over the SQL length limit too (the
    executor refuses it anyway)."""
    lowered = sql.lower()
    if ("distinct" not in lowered and ";" not in sql) or len(sql) > DEFAULT_MAX_SQL_CHARS:
        return sql
    from sqlparse.engine import FilterStack  # lazy: only the official mode needs sqlparse

    statement = next(iter(FilterStack().run(sql)), None)
    if statement is None:  # no statement at all (the evaluator itself would fail with an IndexError)
        return sql
    return "".join(token.value for token in statement.flatten() if token.value.lower() != "distinct")


def execution_sql(sql: str, *, compat: Compat = "keep_distinct", prediction: bool = False) -> str:
    """The statement to execute for ``sql`` under ``compat``.

    ``keep_distinct``: ``sql`` itself. ``official``: rewritten as test-suite-sql-eval rewrites it before
    executing: for a prediction (``prediction=True``) ``" value "`` becomes ``" 1 "``; then ``> =``,
    ``< =``, ``! =`` are closed up, DISTINCT is removed (:func:`remove_distinct`) and ``YEAR(CURDATE())``
    becomes 2020. Anything that is not a ``str`` comes back as is, for the executor to reject.
    """
    if compat == "keep_distinct" or not isinstance(sql, str):
        return sql
    if compat != "official":
        raise ValueError(f"unknown SQL compat mode {compat!r}; expected one of {COMPATS}")
    if prediction:
        sql = sql.replace(" value ", " 1 ")
    sql = sql.replace("> =", ">=").replace("< =", "<=").replace("! =", "!=")
    return _CURRENT_YEAR.sub(OFFICIAL_CURRENT_YEAR, remove_distinct(sql))


def official_orders_output(gold_sql: str) -> bool:
    """The official evaluator's "order matters" rule: ``order by`` anywhere in the rewritten gold query."""
    return "order by" in execution_sql(gold_sql, compat="official").lower()


def normalize_value(value: Any, round_floats: bool = True) -> Any:
    """A hashable value where numerically equal numbers are equal: integral floats become ints, other
    floats are rounded to 12 significant digits unless ``round_floats`` is false (the official evaluator
    compares them exactly)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return value
        if value.is_integer():
            return int(value)
        if not round_floats:
            return value
        rounded = float(f"{value:.12g}")
        return int(rounded) if rounded.is_integer() else rounded
    return value


def normalize_rows(rows: Sequence[Sequence[Any]], round_floats: bool = True) -> list[tuple[Any, ...]]:
    return [tuple(normalize_value(v, round_floats) for v in row) for row in rows]


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
    gold_rows: Sequence[Sequence[Any]],
    pred_rows: Sequence[Sequence[Any]],
    order_matters: bool,
    *,
    compat: Compat = "keep_distinct",
) -> bool:
    """Spider execution match (test-suite ``result_eq`` semantics, see module doc); ``compat="official"``
    compares non-integral floats exactly, as the evaluator does."""
    round_floats = check_compat(compat, "spider") == "keep_distinct"
    gold, pred = normalize_rows(gold_rows, round_floats), normalize_rows(pred_rows, round_floats)
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
    compat: Compat = "keep_distinct",
) -> bool:
    """Execution match under ``dialect``; Spider takes row order into account when ``gold_sql`` orders.

    The rows must come from executing :func:`execution_sql` of each query under the same ``compat``;
    ``gold_sql`` may be the query as written or as executed. ``compat="official"`` (Spider only) decides
    row order and compares values as test-suite-sql-eval does by default (see the module doc).
    """
    if dialect not in DIALECTS:
        raise ValueError(f"unknown SQL dialect {dialect!r}; expected one of {DIALECTS}")
    check_compat(compat, dialect)
    if dialect == "bird":
        return bird_match(gold_rows, pred_rows)
    if compat == "official":
        return spider_match(gold_rows, pred_rows, official_orders_output(gold_sql), compat="official")
    return spider_match(gold_rows, pred_rows, order_matters=orders_output(gold_sql))
