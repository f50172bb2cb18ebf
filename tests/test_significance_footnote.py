"""The "† p < 0.05" footnote appears only under a table that prints a †; otherwise the table says that no
difference is significant, naming the same test (real paired randomisation tests)."""

from __future__ import annotations

from deepretrieval.evaluation import format_table, markdown_report
from deepretrieval.evaluation.harness import EvalResult
from deepretrieval.evaluation.significance import compare


def _result(policy: str, scores: dict[str, float]) -> EvalResult:
    per_query = {qid: {"ndcg@10": value} for qid, value in scores.items()}
    mean = sum(scores.values()) / len(scores)
    return EvalResult("demo", "test", policy, {"ndcg@10": mean}, per_query)


def _table(baseline: dict[str, float], other: dict[str, float]) -> tuple[str, str]:
    results = [_result("original", baseline), _result("trained", other)]
    comparison = compare({r.policy: r.per_query for r in results}, "original", ["ndcg@10"])
    return format_table(results, comparison), markdown_report(results, comparison)


def test_no_footnote_mark_without_a_significant_difference() -> None:
    baseline = {f"q{i}": 0.5 for i in range(4)}
    better = {f"q{i}": 0.6 for i in range(4)}  # 4 queries: the smallest exact p-value is 2/16
    text, markdown = _table(baseline, better)
    assert "†" not in text and "†" not in markdown
    assert "no difference from original is significant at p < 0.05: two-sided paired randomisation" in text
    assert "(p=0.1250)" in markdown  # the p-values are still listed


def test_the_footnote_explains_a_printed_mark() -> None:
    baseline = {f"q{i}": 0.2 + 0.01 * i for i in range(30)}
    better = {qid: value + 0.3 for qid, value in baseline.items()}
    text, markdown = _table(baseline, better)
    assert text.count("†") == 2  # the marked cell and its footnote
    assert "† p < 0.05 against original: two-sided paired randomisation test over 30 queries" in text
    assert "† p < 0.05 against original" in markdown
