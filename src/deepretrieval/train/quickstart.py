"""``deepretrieval quickstart``: train the embedded default model on the demo collection (CPU), then compare
the original query, the untrained policy and the trained policy on the held-out demo queries."""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

from deepretrieval.config import RunConfig, load_config

QUICKSTART_CONFIG = Path(__file__).resolve().parents[1] / "data" / "quickstart.yaml"


def quickstart_config(out: Path, seed: int = 0, overrides: list[str] | None = None) -> RunConfig:
    """The shipped quickstart recipe (``deepretrieval/data/quickstart.yaml``) writing into ``out/run``."""
    return load_config(
        QUICKSTART_CONFIG,
        [f"output_dir={json.dumps(str(out / 'run'))}", f"rl.seed={seed}", *(overrides or [])],
    )


def run(out: Path, seed: int = 0, overrides: list[str] | None = None) -> dict:
    """Train, evaluate the three policies on the demo's held-out split, print one table, write quickstart.json."""
    from deepretrieval.default_model import resolve_model
    from deepretrieval.evaluate import evaluate, format_table
    from deepretrieval.policies.baselines import OriginalQuery
    from deepretrieval.policies.hf import HFPolicy
    from deepretrieval.report import plot_run
    from deepretrieval.train.data import build_task
    from deepretrieval.train.grpo import train

    started = time.perf_counter()
    config = quickstart_config(out, seed, overrides)
    run_dir = Path(config.output_dir)
    if run_dir.exists():  # a quickstart always starts fresh
        shutil.rmtree(run_dir)
    base = resolve_model(config.model)
    train(config)

    task = build_task(config)
    split = config.task.eval_split or "test"
    generation = {"prefill": config.prompt_prefill, "max_new_tokens": config.rl.max_completion_length}
    policies = [
        OriginalQuery(),
        HFPolicy(base, name="untrained", **generation),
        HFPolicy(str(run_dir / "final"), name="trained", **generation),
    ]
    results = [
        evaluate(task, policy, split, reasoning=config.reasoning, progress=False) for policy in policies
    ]
    task.close()
    plot = plot_run(run_dir)
    metric = task.primary_metric
    figures = {
        "metric": metric,
        "original": results[0].metrics[metric],
        "untrained": results[1].metrics[metric],
        "trained": results[2].metrics[metric],
        "seconds": round(time.perf_counter() - started, 1),
    }
    print()
    print(format_table(results))
    print(f"\nrun directory: {run_dir}\nreward per step: {plot}\ntotal time: {figures['seconds']:.0f} s")
    out.mkdir(parents=True, exist_ok=True)
    (out / "quickstart.json").write_text(json.dumps(figures, indent=2) + "\n")
    (out / "answers.json").write_text(json.dumps({r.policy: r.answers for r in results}, indent=1) + "\n")
    print(f"figures: {out / 'quickstart.json'}", file=sys.stderr)
    return figures
