"""Spider difficulty ("easy", "medium", "hard", "extra") of a gold query, from its parsed ``sql`` field.

Same rules as ``Evaluator.eval_hardness`` in the official Spider ``evaluation.py``, including its
quirks (a condition unit's ``not`` flag counts as an aggregation in ``count_others``, HAVING
conditions are passed whole to ``count_agg``), so that the per-difficulty breakdown is comparable with
published numbers. On Spider dev this gives 248 easy, 446 medium, 174 hard and 166 extra.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

Hardness = Literal["easy", "medium", "hard", "extra"]
HARDNESS_LEVELS: tuple[Hardness, ...] = ("easy", "medium", "hard", "extra")

AGG_NONE = 0  # AGG_OPS.index("none")
WHERE_LIKE = (
    9  # WHERE_OPS.index("like") in ('not', 'between', '=', '>', '<', '>=', '<=', '!=', 'in', 'like', ...)
)

ParsedSql = Mapping[str, Any]


def _has_agg(unit: Any) -> bool:
    return unit[0] != AGG_NONE


def _count_agg(units: list[Any]) -> int:
    return sum(1 for unit in units if _has_agg(unit))


def _conditions(sql: ParsedSql) -> list[Any]:
    return sql["from"]["conds"][::2] + sql["where"][::2] + sql["having"][::2]


def _nested(sql: ParsedSql) -> list[ParsedSql]:
    nested = [value for cond in _conditions(sql) for value in (cond[3], cond[4]) if isinstance(value, dict)]
    return nested + [sql[key] for key in ("intersect", "except", "union") if sql[key] is not None]


def _count_component1(sql: ParsedSql) -> int:
    count = sum(1 for key in ("where", "groupBy", "orderBy") if len(sql[key]) > 0)
    count += sql["limit"] is not None
    if sql["from"]["table_units"]:
        count += len(sql["from"]["table_units"]) - 1  # joins
    connectives = sql["from"]["conds"][1::2] + sql["where"][1::2] + sql["having"][1::2]
    count += sum(1 for token in connectives if token == "or")
    count += sum(1 for cond in _conditions(sql) if cond[1] == WHERE_LIKE)
    return count


def _count_others(sql: ParsedSql) -> int:
    agg = _count_agg(sql["select"][1]) + _count_agg(sql["where"][::2]) + _count_agg(sql["groupBy"])
    if sql["orderBy"]:
        val_units = sql["orderBy"][1]
        agg += _count_agg([u[1] for u in val_units if u[1]] + [u[2] for u in val_units if u[2]])
    agg += _count_agg(sql["having"])
    return (agg > 1) + (len(sql["select"][1]) > 1) + (len(sql["where"]) > 1) + (len(sql["groupBy"]) > 1)


def spider_hardness(sql: ParsedSql) -> Hardness:
    """Difficulty of a query parsed in Spider's format (the ``sql`` field of dev.json / train_spider.json)."""
    try:
        comp1, comp2, others = _count_component1(sql), len(_nested(sql)), _count_others(sql)
    except (KeyError, IndexError, TypeError) as err:
        raise ValueError(f"not a Spider parsed query: {type(err).__name__}: {err}") from err
    if comp1 <= 1 and others == 0 and comp2 == 0:
        return "easy"
    if (others <= 2 and comp1 <= 1 and comp2 == 0) or (comp1 <= 2 and others < 2 and comp2 == 0):
        return "medium"
    if (
        (others > 2 and comp1 <= 2 and comp2 == 0)
        or (2 < comp1 <= 3 and others <= 2 and comp2 == 0)
        or (comp1 <= 1 and others == 0 and comp2 <= 1)
    ):
        return "hard"
    return "extra"
