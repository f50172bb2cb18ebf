"""``deepretrieval quickstart``: train the embedded default model on the demo collection (CPU), then compare
the original query, the untrained policy and the trained policy on the held-out demo queries.

Writes into ``--out`` (default ``runs/quickstart``): ``quickstart.json`` (the figures, their p-values against
the original query, and the training's steps done and planned and why it stopped), ``per_query.jsonl``
(one line per held-out query: the original query, what each policy wrote, what the judge searched for, and
the metric), and ``run/`` (the training run, its report and ``eval/`` table). A run cut short by its time
budget says so in the table, the JSON and the report.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from deepretrieval.config import RunConfig, load_config
from deepretrieval.files import write_json, write_text

QUICKSTART_CONFIG = Path(__file__).resolve().parents[1] / "data" / "quickstart.yaml"


def quickstart_config(out: Path, seed: int = 0, overrides: list[str] | None = None) -> RunConfig:
    """The shipped quickstart recipe (``deepretrieval/data/quickstart.yaml``) writing into ``out/run``."""
    return load_config(
        QUICKSTART_CONFIG,
        [f"output_dir={json.dumps(str(out / 'run'))}", f"rl.seed={seed}", *(overrides or [])],
    )


def per_query_rows(task, split: str, results: Sequence) -> list[dict]:
    """One row per query of ``split``: its original text and, per policy, the answer, the query the judge
    searched for (in ``expand`` mode: the original followed by the answer) and the metric."""
    from deepretrieval.answers import judged_queries

    metric = task.primary_metric
    rows = []
    for example in task.examples(split):
        row: dict = {"id": example.id, "original": example.original}
        for result in results:
            answer = result.answers.get(example.id, "")
            searched = judged_queries([answer], [example], result.query_mode)[0]
            score = result.per_query.get(example.id, {}).get(metric)
            row[result.policy] = {"answer": answer, "searched": searched, metric: score}
        rows.append(row)
    return rows


def run(out: Path, seed: int = 0, overrides: list[str] | None = None) -> dict:
    """Train, then evaluate on the demo's held-out split the original query, blind pseudo-relevance feedback
    (when the recipe shows the policy the top results), the untrained and the trained policy (the policies in
    the query mode and prompt of training), tested against the original query; print one table with the
    training's steps done and planned, write the figures and the per-query file."""
    from deepretrieval.evaluation import format_table
    from deepretrieval.prompting import run_prompting
    from deepretrieval.report import plot_run
    from deepretrieval.train.data import build_task
    from deepretrieval.train.final_eval import TRAINED, evaluate_run
    from deepretrieval.train.grpo import train
    from deepretrieval.train.summary import TrainingSummary

    started = time.perf_counter()
    config = quickstart_config(out, seed, [*(overrides or []), "eval.after_training=false"])  # evaluated here
    run_dir = Path(config.output_dir)
    if run_dir.exists():  # a quickstart always starts fresh
        shutil.rmtree(run_dir)
    budget = f", at most {config.rl.time_budget_s:.0f} s" if config.rl.time_budget_s else ""
    _phase(1, f"training: {config.rl.max_steps or 'all'} GRPO steps{budget}")
    train(config)
    summary = TrainingSummary.read(run_dir)
    if summary is None:
        raise RuntimeError(f"training wrote no summary into {run_dir}")
    trained_s = time.perf_counter() - started

    task = build_task(config)
    split = config.task.eval_split or task.default_split
    trained = run_prompting(config, task)
    # blind PRF, the bar to clear: the snippets the policy reads, all appended; the untrained model is
    # prompted as the trained one, so only training differs
    extra = [*(["feedback"] if trained.feedback else []), "untrained"]
    count = len(task.examples(split))
    _phase(2, f"evaluating original, {', '.join(extra)} and trained on {count} held-out {split} queries")
    suite = evaluate_run(config, run_dir, task, trained, extra=extra)
    rows = per_query_rows(task, split, suite.results)
    task.close()
    _phase(3, "writing the report")
    plot = plot_run(run_dir)
    metric = task.primary_metric
    figures = {
        "metric": metric,
        **{result.policy: result.metrics[metric] for result in suite.results},
        "significance": _significance(suite, metric),
        "trained_vs_feedback": _versus_feedback(suite, metric, config),
        "query_mode": trained.query_mode,
        "template": trained.template,
        "seed": seed,
        "steps": summary.steps,
        "steps_planned": summary.steps_planned,
        "stopped_by": summary.stopped_by,
        "complete": summary.complete,
        "warning": summary.warning(),
        "train_seconds": round(trained_s, 1),
        "seconds": round(time.perf_counter() - started, 1),
    }
    print()
    print(f"{task.name} {split}, {count} held-out queries; {TRAINED}: {summary.describe()}")
    print(format_table(suite.results, suite.comparison))
    if figures["trained_vs_feedback"]:
        versus = figures["trained_vs_feedback"]
        print(
            f"\n{TRAINED} against blind feedback (the bar a model must clear): {versus['delta']:+.4f} {metric} "
            f"(p = {versus['p_value']:.4f}, same test)"
        )
    if summary.warning():
        print(f"\nwarning: {summary.warning()}")
    print(
        f"\n{trained.query_mode} mode; run directory: {run_dir}\nreward per step: {plot}"
        f"\ntotal time: {figures['seconds']:.0f} s"
    )
    write_text(out / "per_query.jsonl", "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    write_json(out / "quickstart.json", figures, indent=2)
    print(f"figures: {out / 'quickstart.json'}; per query: {out / 'per_query.jsonl'}", file=sys.stderr)
    return figures


def _phase(number: int, text: str) -> None:
    print(f"[{number}/3] {text}", file=sys.stderr, flush=True)


def _versus_feedback(suite, metric: str, config: RunConfig) -> dict[str, float]:
    """The trained policy's difference from blind feedback on ``metric``, with its p-value (empty when
    feedback was not evaluated)."""
    from deepretrieval.evaluation.significance import compare
    from deepretrieval.train.final_eval import TRAINED

    per_query = {r.policy: r.per_query for r in suite.results}
    if "feedback" not in per_query or TRAINED not in per_query:
        return {}
    pair = {name: per_query[name] for name in ("feedback", TRAINED)}
    test = compare(pair, "feedback", [metric], resamples=config.eval.resamples, seed=config.eval.seed)
    result = test.tests[TRAINED][metric]
    return {"delta": result.delta, "p_value": result.p_value}


def _significance(suite, metric: str) -> dict[str, dict[str, float]]:
    """Each policy's difference from the baseline on ``metric``, with its p-value."""
    if suite.comparison is None:
        return {}
    tests = suite.comparison.tests
    return {
        policy: {"delta": by_metric[metric].delta, "p_value": by_metric[metric].p_value}
        for policy, by_metric in tests.items()
        if metric in by_metric
    }
