"""Evaluation: a fixed policy answers a task's split and the task's judge scores it (``harness``), several
policies compared in one table with significance tests (``suite``, ``significance``), as text, Markdown
and files (``tables``, ``outputs``)."""

from deepretrieval.evaluation.harness import EvalResult, answer, evaluate, policy_prompting
from deepretrieval.evaluation.significance import Comparison, compare
from deepretrieval.evaluation.tables import format_table, markdown_report

__all__ = [
    "Comparison",
    "EvalResult",
    "answer",
    "compare",
    "evaluate",
    "format_table",
    "markdown_report",
    "policy_prompting",
]
