"""An evaluation's files (``eval --out DIR``): ``results.json`` (per policy: metrics, format-valid rate,
prompting, counts; the significance tests), ``results.md``, ``per_query/<policy>.jsonl`` (each query's
completion, parsed answer, metrics and failure), ``runs/<policy>.run`` (the rankings the judge saw, as
TREC run files) and ``plots/*.png`` (linked from results.md). Every file is published atomically."""

from __future__ import annotations

import json
from pathlib import Path

from deepretrieval.evaluation.harness import EvalResult
from deepretrieval.evaluation.plots import Plot, matplotlib_missing, write_plots
from deepretrieval.evaluation.runs import write_run
from deepretrieval.evaluation.suite import SuiteResult, slug
from deepretrieval.evaluation.tables import markdown_report
from deepretrieval.files import write_text

PROBE = ".deepretrieval-write-probe"


def check_output_folder(path: str | Path) -> Path:
    """The output folder, checked before any work is done: created if missing, and a probe file written
    into it (atomically) and removed, so an unwritable target fails now, not after the evaluation."""
    out = Path(path)
    if out.suffix == ".json" and not out.is_dir():
        raise ValueError(f"--out takes a folder (results.json and results.md are written in it), got {out}")
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder")
    for parent in out.parents:
        if parent.exists() and not parent.is_dir():
            raise ValueError(f"--out {out}: {parent} is a file, not a folder")
    try:
        write_text(out / PROBE, "").unlink()
    except OSError as err:
        raise ValueError(
            f"--out {out} cannot be written ({err.strerror or err}); give a folder you can write to"
        ) from None
    return out


def per_query_lines(result: EvalResult, originals: dict[str, str]) -> list[str]:
    """One JSON line per query: original, prompt and completion (models), answer, format verdict, metrics,
    failure."""
    lines = []
    for query_id, answer in result.answers.items():
        record: dict = {"id": query_id, "original": originals.get(query_id)}
        if query_id in result.prompts:
            record["prompt"] = result.prompts[query_id]
        if query_id in result.completions:
            record["completion"] = result.completions[query_id]
        record["answer"] = answer
        if result.reasons:
            record["format"] = result.reasons[query_id]
        if query_id in result.invalid:
            record["invalid_query"] = result.invalid[query_id]
        record["metrics"] = result.per_query.get(query_id)
        if query_id in result.failures:
            record["failure"] = result.failures[query_id]
        lines.append(json.dumps(record, ensure_ascii=False))
    return lines


def summary(result: EvalResult, per_query: str) -> dict:
    """The ``results.json`` entry of one policy."""
    prompting = result.prompting
    return {
        "policy": result.policy,
        "metrics": result.metrics,  # null: no example was judged
        "format_ok": result.format_ok,
        "queries": result.total,
        "judged": result.judged,
        "failures": len(result.failures),
        "first_failure": next(iter(result.failures.values()), None),
        "groups": result.groups,
        "reasoning": prompting.reasoning if prompting else None,  # models only
        "template": prompting.template if prompting else None,
        "query_mode": result.query_mode,
        "prompting": prompting.to_json() if prompting else None,
        "seconds": round(result.seconds, 2),
        "per_query": per_query,
    }


def write_outputs(out: Path, suite: SuiteResult, command: str) -> list[str]:
    """Write ``results.json``, ``results.md``, the per-query files, the run files of the results that
    kept their rankings and the plots of ``suite`` into ``out``; returns what to tell the user (plots
    skipped, then what was written)."""
    originals = {ex.id: ex.original for ex in suite.examples}
    query_ids = [ex.id for ex in suite.examples]
    summaries = []
    for result in suite.results:
        name = f"per_query/{slug(result.policy)}.jsonl"
        write_text(out / name, "\n".join(per_query_lines(result, originals)) + "\n")
        summaries.append(summary(result, name))
        if result.rankings:
            run = f"runs/{slug(result.policy)}.run"
            write_run(out / run, result, query_ids)
            summaries[-1]["run"] = run
    first = suite.results[0]
    payload = {
        "task": first.task,
        "split": first.split,
        "command": command,
        "policies": summaries,
        "significance": suite.comparison.to_json() if suite.comparison is not None else None,
    }
    write_text(out / "results.json", json.dumps(payload, indent=1) + "\n")
    notes = [note] if (note := matplotlib_missing()) else []
    plots = [] if notes else _plots(out, suite)
    report = markdown_report(suite.results, suite.comparison, command)
    write_text(out / "results.md", report + _plots_section(out, plots, notes))
    written = ["results.json", "results.md", "per_query/"]
    written += ["runs/"] if any("run" in s for s in summaries) else []
    written += ["plots/"] if plots else []
    return [*notes, f"wrote {', '.join(written)} in {out}"]


def _plots(out: Path, suite: SuiteResult) -> list[Plot]:
    names = {r.policy: slug(r.policy) for r in suite.results}
    return write_plots(out, suite.results, suite.baseline, suite.primary_metric, names)


def _plots_section(out: Path, plots: list[Plot], notes: list[str]) -> str:
    """The Markdown section that links the plots (or says why there are none)."""
    if not plots and not notes:
        return ""
    lines = ["", "## Plots", ""]
    lines += [f"{note}." for note in notes]
    for plot in plots:
        lines += [f"{plot.title}:", "", f"![{plot.title}]({plot.path.relative_to(out).as_posix()})", ""]
    return "\n".join(lines).rstrip("\n") + "\n"
