"""An evaluation's files (``eval --out DIR``): ``results.json`` (per policy: metrics, format-valid rate,
prompting, counts; the significance tests), ``results.md`` and ``per_query/<policy>.jsonl`` (each query's
completion, parsed answer, metrics and failure). Every file is published atomically."""

from __future__ import annotations

import json
from pathlib import Path

from deepretrieval.evaluation.harness import EvalResult
from deepretrieval.evaluation.suite import SuiteResult, slug
from deepretrieval.evaluation.tables import markdown_report
from deepretrieval.files import write_text


def check_output_folder(path: str | Path) -> Path:
    """The output folder, checked before any work is done."""
    out = Path(path)
    if out.suffix == ".json" and not out.is_dir():
        raise ValueError(f"--out takes a folder (results.json and results.md are written in it), got {out}")
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder")
    for parent in out.parents:
        if parent.exists() and not parent.is_dir():
            raise ValueError(f"--out {out}: {parent} is a file, not a folder")
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
        "metrics": result.metrics,
        "format_ok": result.format_ok,
        "queries": len(result.per_query),
        "failures": len(result.failures),
        "groups": result.groups,
        "reasoning": prompting.reasoning if prompting else None,  # models only
        "template": prompting.template if prompting else None,
        "query_mode": result.query_mode,
        "prompting": prompting.to_json() if prompting else None,
        "seconds": round(result.seconds, 2),
        "per_query": per_query,
    }


def write_outputs(out: Path, suite: SuiteResult, command: str) -> None:
    """Write ``results.json``, ``results.md`` and the per-query files of ``suite`` into ``out``."""
    originals = {ex.id: ex.original for ex in suite.examples}
    summaries = []
    for result in suite.results:
        name = f"per_query/{slug(result.policy)}.jsonl"
        write_text(out / name, "\n".join(per_query_lines(result, originals)) + "\n")
        summaries.append(summary(result, name))
    first = suite.results[0]
    payload = {
        "task": first.task,
        "split": first.split,
        "command": command,
        "policies": summaries,
        "significance": suite.comparison.to_json() if suite.comparison is not None else None,
    }
    write_text(out / "results.json", json.dumps(payload, indent=1) + "\n")
    write_text(out / "results.md", markdown_report(suite.results, suite.comparison, command))
