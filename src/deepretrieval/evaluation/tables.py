"""Evaluation results as tables: plain text for the terminal, Markdown for ``results.md``."""

from __future__ import annotations

from collections.abc import Sequence

from deepretrieval.evaluation.harness import EvalResult
from deepretrieval.evaluation.significance import Comparison


def _columns(results: Sequence[EvalResult]) -> list[str]:
    columns: list[str] = []
    for result in results:
        columns += [key for key in result.metrics if key not in columns]
    return columns


NO_VALUE = "-"
"""A metric a policy has no value for: not measured, or measured over no judged example."""


def _cells(result: EvalResult, columns: Sequence[str], comparison: Comparison | None) -> list[str]:
    def value(metric: str) -> str:
        if result.metrics.get(metric) is None:
            return NO_VALUE
        mark = comparison.mark(result.policy, metric) if comparison else ""
        return f"{result.metrics[metric]:.4f}{mark}"

    return [value(metric) for metric in columns]


def format_table(results: Sequence[EvalResult], comparison: Comparison | None = None) -> str:
    """A plain-text table: one row per result, one column per metric (union, in first-seen order; ``-``
    where a policy has no value), the format-valid rate of models, the count of queries the judge could
    not read when any, ``judged/total`` examples when any failed; ``comparison`` adds significance marks
    and their footnote. Per-group rows (e.g. SQL hardness) follow."""
    columns = _columns(results)
    show_format = any(r.format_ok is not None for r in results)
    show_invalid = any(r.invalid for r in results)
    show_failed = any(r.failures for r in results)
    header = (
        ["policy", *columns]
        + (["format_ok"] if show_format else [])
        + (["invalid"] if show_invalid else [])
        + (["judged"] if show_failed else [])
    )
    rows = [header]
    for r in results:
        row = [r.policy, *_cells(r, columns, comparison)]
        if show_format:
            row.append("-" if r.format_ok is None else f"{r.format_ok:.3f}")
        if show_invalid:
            row.append(str(len(r.invalid)))
        if show_failed:
            row.append(f"{r.judged}/{r.total}")
        rows.append(row)
    for r in results:
        for group, values in r.groups.items():
            rows.append(
                [f"  {r.policy} [{group}, n={int(values['count'])}]"]
                + [f"{values.get(c, 0):.4f}" for c in columns]
            )
    widths = [max(len(row[i]) if i < len(row) else 0 for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if comparison is not None and comparison.tests:
        lines.append(comparison.footer())
    return "\n".join(lines)


def markdown_report(
    results: Sequence[EvalResult], comparison: Comparison | None = None, command: str | None = None
) -> str:
    """The results as Markdown: the table (with significance marks), the p-values against the baseline,
    per-group tables, and the command that produced them."""
    first = results[0]
    columns = _columns(results)
    show_format = any(r.format_ok is not None for r in results)
    lines = [f"# {first.task} / {first.split}", ""]
    if command:
        lines += ["Produced by:", "", "```bash", command, "```", ""]
    show_failed = any(r.failures for r in results)
    queries = "judged/total" if show_failed else "queries"
    header = ["policy", *columns] + (["format-valid"] if show_format else []) + [queries]
    lines += [_md_row(header), _md_row(["---"] + ["---:"] * (len(header) - 1))]
    for r in results:
        row = [f"`{r.policy}`", *_cells(r, columns, comparison)]
        if show_format:
            row.append("–" if r.format_ok is None else f"{r.format_ok:.1%}")
        lines.append(_md_row([*row, f"{r.judged}/{r.total}" if show_failed else str(r.judged)]))
    if comparison is not None and comparison.tests:
        lines += ["", comparison.footer() + "."]
    if comparison is not None and any(t.n for tests in comparison.tests.values() for t in tests.values()):
        lines += ["", f"Difference from `{comparison.baseline}` (p-value):", ""]
        lines += [_md_row(["policy", *columns]), _md_row(["---"] + ["---:"] * len(columns))]
        for policy, tests in comparison.tests.items():
            cells = [
                f"{tests[m].delta:+.4f} (p={tests[m].p_value:.4f})" if m in tests and tests[m].n else "-"
                for m in columns
            ]
            lines.append(_md_row([f"`{policy}`", *cells]))
    for r in results:
        if r.groups:
            lines += ["", f"`{r.policy}` by group:", "", _md_row(["group", "n", *columns])]
            lines.append(_md_row(["---"] + ["---:"] * (len(columns) + 1)))
            for group, values in r.groups.items():
                cells = [f"{values.get(c, 0):.4f}" for c in columns]
                lines.append(_md_row([group, str(int(values["count"])), *cells]))
    failed = [r for r in results if r.failures]
    if failed:
        lines += ["", "Examples that could not be judged (left out of the means):", ""]
        lines += [f"- `{r.policy}`: {failure_summary(r)}" for r in failed]
    prompting = [f"`{r.policy}`: {r.prompting.describe()}" for r in results if r.prompting is not None]
    if prompting:
        lines += ["", "Prompting: " + "; ".join(prompting) + "."]
    return "\n".join(lines) + "\n"


def failure_summary(result: EvalResult) -> str:
    """How many examples of ``result`` failed, and the first cause, on one line."""
    first = next(iter(result.failures.values()), "")
    return f"{len(result.failures)} of {result.total} examples could not be judged; first: {first}"


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"
