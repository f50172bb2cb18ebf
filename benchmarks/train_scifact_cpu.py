"""GRPO on SciFact train claims (CPU, embedded SmolLM2-135M) for a fixed step budget, then NDCG@10 on the
test claims for the original claim, the untrained policy and the trained policy, side by side; plus the
time per training step split into generation, reward and update (log-probs + backward + optimiser).

    python benchmarks/train_scifact_cpu.py [--steps 20] [--eval-limit N] [--out DIR] [--json PATH]
        [--set KEY=VALUE ...]   (any run-config override, e.g. --set rl.precision=bf16)
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from pathlib import Path

from deepretrieval.config import load_config
from deepretrieval.default_model import resolve_model
from deepretrieval.evaluate import evaluate
from deepretrieval.paths import REPO_ROOT, shared_data_dir
from deepretrieval.policies.baselines import OriginalQuery
from deepretrieval.policies.hf import HFPolicy
from deepretrieval.report import plot_run, read_metrics
from deepretrieval.train.data import build_task
from deepretrieval.train.grpo import train

CONFIG = REPO_ROOT / "configs" / "scifact-bm25-cpu.yaml"
PHASES = ("generation_s", "reward_s", "update_s")


def step_profile(run_dir: Path) -> dict[str, float]:
    """Median seconds per step of each phase over the logged steps (the first, warm-up, step excluded)."""
    steps = [r for r in read_metrics(run_dir) if "time/step_s" in r]
    steps = steps[1:] if len(steps) > 1 else steps
    return {key: statistics.median(r[f"time/{key}"] for r in steps) for key in ("step_s", *PHASES)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", default=str(shared_data_dir() / "scifact"))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument(
        "--eval-limit", type=int, default=None, help="evaluate on the first N test claims only"
    )
    parser.add_argument("--out", default="runs/bench-train-scifact")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--json", default=None, help="write the figures here")
    args = parser.parse_args()

    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    config = load_config(
        CONFIG, [f"task.data={args.data}", f"rl.max_steps={args.steps}", f"output_dir={out}", *args.overrides]
    )
    started = time.perf_counter()
    run_dir = train(config)
    train_s = time.perf_counter() - started
    profile = step_profile(run_dir)

    task = build_task(config)
    generation = {"prefill": config.prompt_prefill, "max_new_tokens": config.rl.max_completion_length}
    policies = [
        OriginalQuery(),
        HFPolicy(resolve_model(config.model), name="untrained", **generation),
        HFPolicy(str(run_dir / "final"), name="trained", **generation),
    ]
    results = {
        p.name: evaluate(task, p, "test", reasoning=config.reasoning, limit=args.eval_limit, progress=False)
        for p in policies
    }
    ndcg = {name: r.metrics["ndcg@10"] for name, r in results.items()}

    print(
        f"\nSciFact test ({len(results['original'].per_query)} claims), {args.steps} GRPO steps in {train_s:.0f} s"
    )
    print(f"{'policy':<10} {'ndcg@10':>8} {'vs original':>12} {'format_ok':>10}")
    for name, r in results.items():
        fmt = "-" if r.format_ok is None else f"{r.format_ok:.3f}"
        print(f"{name:<10} {ndcg[name]:8.4f} {ndcg[name] / max(ndcg['original'], 1e-9):11.2f}x {fmt:>10}")
    print(f"\ntime per step (median, {profile['step_s']:.1f} s):")
    for phase in PHASES:
        print(
            f"  {phase.removesuffix('_s'):<11} {profile[phase]:7.2f} s  {profile[phase] / profile['step_s']:6.1%}"
        )
    print(f"reward plot: {plot_run(run_dir)}")

    if args.json:
        figures = {
            "steps": args.steps,
            "train_seconds": train_s,
            "ndcg@10": ndcg,
            "trained_vs_untrained": ndcg["trained"] / max(ndcg["untrained"], 1e-9),
            "trained_vs_original": ndcg["trained"] / max(ndcg["original"], 1e-9),
            "step_seconds": profile,
            "reward_fraction": profile["reward_s"] / profile["step_s"],
        }
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
