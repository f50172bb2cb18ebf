"""The harness proof: gold SQL on Spider dev scores 100% execution accuracy through ``evaluate``."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from deepretrieval.evaluation import evaluate
from deepretrieval.policies import load_policy
from deepretrieval.tasks import load_task


def test_gold_sql_scores_100_percent_on_spider_dev(
    spider_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="deepretrieval.tasks.sql"):
        task = load_task("sql", spider_dir)
        try:
            result = evaluate(task, load_policy("gold"), "dev", progress=False)
        finally:
            task.close()
    assert task.dialect == "spider"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "skipped 62 of 1034" in warnings[0] and "wta_1: 62" in warnings[0]
    assert len(result.per_query) == 972
    assert result.metrics == {"ex": 1.0, "executed": 1.0}
    assert set(result.groups) == {"easy", "medium", "hard", "extra"}
    assert sum(group["count"] for group in result.groups.values()) == 972
    assert all(group["ex"] == 1.0 for group in result.groups.values())
