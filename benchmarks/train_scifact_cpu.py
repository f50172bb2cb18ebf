"""GRPO on SciFact train claims (CPU, embedded SmolLM2-135M) in both query modes, then NDCG@10 on the test
claims for the original claim, the untrained policy and the trained policy of each mode, with a paired
randomisation test of every policy against the original claim; plus the time per training step split into
generation, reward and update.

Each mode trains for ``--minutes`` of wall clock (or ``--steps``, whichever comes first), so the whole run
takes about 2 x minutes + evaluation (~25 minutes with the defaults on 2 cores):

    python benchmarks/train_scifact_cpu.py [--minutes 10] [--steps 200] [--modes rewrite,expand] [--curve]
        [--eval-limit N] [--out DIR] [--json PATH] [--set KEY=VALUE ...]
        (--set: any run-config override, e.g. --set rl.learning_rate=1e-5)

``--curve`` also evaluates every checkpoint the run kept (set checkpointing.keep=null and save_steps to
choose them), so a run that stays below the original claims shows where it was heading.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import time
from pathlib import Path

from _common import REPO_ROOT, shared_data_dir
from deepretrieval.config import PromptingConfig, load_config
from deepretrieval.default_model import resolve_model
from deepretrieval.evaluation import EvalResult, compare, evaluate
from deepretrieval.policies.baselines import Feedback, OriginalQuery
from deepretrieval.policies.hf import HFPolicy
from deepretrieval.report import read_metrics
from deepretrieval.train.data import build_task
from deepretrieval.train.grpo import train

CONFIG = REPO_ROOT / "configs" / "scifact-bm25-cpu.yaml"
PHASES = ("generation_s", "reward_s", "update_s")
MODES = ("rewrite", "expand")
METRIC = "ndcg@10"


def step_profile(run_dir: Path) -> dict[str, float]:
    """Median seconds per step of each phase over the logged steps (the first, warm-up, step excluded)."""
    steps = [r for r in read_metrics(run_dir) if "time/step_s" in r]
    steps = steps[1:] if len(steps) > 1 else steps
    return {key: statistics.median(r[f"time/{key}"] for r in steps) for key in ("step_s", *PHASES)}


def train_mode(args: argparse.Namespace, mode: str) -> tuple:
    """Train one mode for its budget; the run config, the run folder and its training figures."""
    out = Path(args.out) / mode
    shutil.rmtree(out, ignore_errors=True)
    overrides = [
        f"task.data={args.data}",
        f"prompting.query_mode={mode}",
        f"rl.max_steps={args.steps}",
        f"rl.time_budget_s={args.minutes * 60}",
        f"output_dir={out}",
        "eval.after_training=false",  # evaluated below, beside the untrained policy
        *args.overrides,
    ]
    config = load_config(CONFIG, overrides)
    started = time.perf_counter()
    run_dir = train(config)
    steps = read_metrics(run_dir)
    figures = {
        "train_seconds": round(time.perf_counter() - started, 1),
        "steps": steps[-1]["step"] if steps else 0,
        "step_seconds": step_profile(run_dir),
        "reward_first_5": statistics.mean(r["reward"] for r in steps[:5]) if steps else None,
        "reward_last_5": statistics.mean(r["reward"] for r in steps[-5:]) if steps else None,
    }
    return config, run_dir, figures


def checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """The run's kept checkpoints as (step, folder), in step order."""
    found = []
    for folder in (run_dir / "checkpoints").glob("checkpoint-*"):
        match = re.fullmatch(r"checkpoint-(\d+)", folder.name)
        if match and (folder / "model.safetensors").is_file():
            found.append((int(match.group(1)), folder))
    return sorted(found)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", default=str(shared_data_dir() / "scifact"))
    parser.add_argument("--minutes", type=float, default=10.0, help="training wall clock per mode")
    parser.add_argument("--steps", type=int, default=200, help="step cap per mode")
    parser.add_argument("--modes", default=",".join(MODES), help="query modes to train, comma-separated")
    parser.add_argument("--curve", action="store_true", help="also evaluate every checkpoint the run kept")
    parser.add_argument(
        "--eval-limit", type=int, default=None, help="evaluate on the first N test claims only"
    )
    parser.add_argument("--out", default="runs/bench-train-scifact")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--json", default=None, help="write the figures here")
    args = parser.parse_args()

    modes = [mode.strip() for mode in args.modes.split(",") if mode.strip()]
    unknown = sorted(set(modes) - set(MODES))
    if unknown or not modes:
        parser.error(f"--modes takes {' and/or '.join(MODES)}, got {args.modes!r}")
    trained = {mode: train_mode(args, mode) for mode in modes}
    config = trained[modes[0]][0]
    task = build_task(config)
    untrained = HFPolicy(resolve_model(config.model), name="untrained")
    results: dict[str, EvalResult] = {
        "original": evaluate(task, OriginalQuery(), "test", limit=args.eval_limit, progress=False)
    }
    prompting = config.prompting
    if prompting.feedback:  # the no-model bar for a policy that reads the same results: all of them appended
        words = {"words": prompting.feedback_words} if prompting.feedback_words else {}
        blind = Feedback(task, prompting.feedback, **words)
        results["feedback"] = evaluate(task, blind, "test", limit=args.eval_limit, progress=False)
    for mode, (_, run_dir, _) in trained.items():
        policy = HFPolicy(str(run_dir / "final"), name=f"trained-{mode}")
        as_trained = PromptingConfig(**policy.card.prompting.to_json())  # the untrained model too
        for name, chosen in ((f"untrained-{mode}", untrained), (f"trained-{mode}", policy)):
            results[name] = evaluate(
                task, chosen, "test", prompting=as_trained, limit=args.eval_limit, progress=False
            )
    curve: dict[str, list[dict]] = {}
    if args.curve:
        for mode, (_, run_dir, _) in trained.items():
            for step, folder in checkpoints(run_dir):
                name = f"{mode}@{step}"
                policy = HFPolicy(str(folder), name=name)
                as_trained = PromptingConfig(**policy.card.prompting.to_json())
                results[name] = evaluate(
                    task, policy, "test", prompting=as_trained, limit=args.eval_limit, progress=False
                )
                curve.setdefault(mode, []).append({"step": step, METRIC: results[name].metrics[METRIC]})
    task.close()
    comparison = compare({name: r.per_query for name, r in results.items()}, "original", [METRIC])

    claims = len(results["original"].per_query)
    print(f"\nSciFact test ({claims} claims); paired randomisation test against the original claim")
    print(f"{'policy':<18} {METRIC:>8} {'delta':>8} {'p':>8} {'format_ok':>10}")
    for name, result in results.items():
        test = comparison.tests.get(name, {}).get(METRIC)
        delta, p = ("-", "-") if test is None else (f"{test.delta:+.4f}", f"{test.p_value:.4f}")
        fmt = "-" if result.format_ok is None else f"{result.format_ok:.3f}"
        print(f"{name:<18} {result.metrics[METRIC]:8.4f} {delta:>8} {p:>8} {fmt:>10}")
    for mode, (_, _, figures) in trained.items():
        split = figures["step_seconds"]
        print(
            f"{mode}: {figures['steps']} steps in {figures['train_seconds']:.0f} s, {split['step_s']:.1f} s a step "
            f"(generation {split['generation_s']:.1f}, reward {split['reward_s']:.3f}, update {split['update_s']:.1f}); "
            f"mean reward of the first 5 steps {figures['reward_first_5']:.3f}, last 5 {figures['reward_last_5']:.3f}"
        )

    if args.json:
        payload = {
            "claims": claims,
            METRIC: {name: r.metrics[METRIC] for name, r in results.items()},
            "significance": comparison.to_json(),
            "training": {mode: figures for mode, (_, _, figures) in trained.items()},
            "curve": curve,
        }
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
