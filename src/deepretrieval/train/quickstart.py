"""``deepretrieval quickstart``: train the embedded default model on the demo collection (CPU), then compare
the original query, the untrained policy and the trained policy on the held-out demo queries.

Writes into ``--out`` (default ``runs/quickstart``): ``quickstart.json`` (the figures), ``per_query.jsonl``
(one line per held-out query: the original query, what each policy wrote, what the judge searched for, and
the metric), and ``run/`` (the training run).
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
    the query mode and prompt of training); print one table, write the figures and per-query file."""
    from deepretrieval.config import PromptingConfig
    from deepretrieval.default_model import resolve_model
    from deepretrieval.evaluation import evaluate, format_table
    from deepretrieval.policies.baselines import Feedback, OriginalQuery
    from deepretrieval.policies.hf import HFPolicy
    from deepretrieval.prompting import run_prompting
    from deepretrieval.report import plot_run, read_metrics
    from deepretrieval.train.data import build_task
    from deepretrieval.train.grpo import train

    started = time.perf_counter()
    config = quickstart_config(out, seed, overrides)
    run_dir = Path(config.output_dir)
    if run_dir.exists():  # a quickstart always starts fresh
        shutil.rmtree(run_dir)
    base = resolve_model(config.model)
    train(config)
    trained_s = time.perf_counter() - started

    task = build_task(config)
    split = config.task.eval_split or task.default_split
    trained = run_prompting(config, task)
    as_trained = PromptingConfig(**trained.to_json())  # the untrained model too, so only training differs
    # blind PRF, the bar to clear: the snippets the policy reads, all appended
    feedback = [Feedback(task, trained.feedback, trained.feedback_words)] if trained.feedback else []
    results = [
        evaluate(task, OriginalQuery(), split, progress=False),
        *(evaluate(task, policy, split, prompting=as_trained, progress=False) for policy in feedback),
        evaluate(task, HFPolicy(base, name="untrained"), split, prompting=as_trained, progress=False),
        evaluate(task, HFPolicy(str(run_dir / "final"), name="trained"), split, progress=False),
    ]
    rows = per_query_rows(task, split, results)
    task.close()
    plot = plot_run(run_dir)
    metric = task.primary_metric
    steps = read_metrics(run_dir)
    figures = {
        "metric": metric,
        **{result.policy: result.metrics[metric] for result in results},
        "query_mode": trained.query_mode,
        "template": trained.template,
        "seed": seed,
        "steps": steps[-1]["step"] if steps else 0,
        "train_seconds": round(trained_s, 1),
        "seconds": round(time.perf_counter() - started, 1),
    }
    print()
    print(format_table(results))
    print(
        f"\n{trained.query_mode} mode, {figures['steps']} GRPO steps in {trained_s:.0f} s"
        f"\nrun directory: {run_dir}\nreward per step: {plot}\ntotal time: {figures['seconds']:.0f} s"
    )
    write_text(out / "per_query.jsonl", "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    write_json(out / "quickstart.json", figures, indent=2)
    print(f"figures: {out / 'quickstart.json'}; per query: {out / 'per_query.jsonl'}", file=sys.stderr)
    return figures
