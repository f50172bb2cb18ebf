"""Plots of a training run: reward and task metric per step, from ``<run>/logs/metrics.jsonl``."""

from __future__ import annotations

import json
from pathlib import Path


def read_metrics(run_dir: str | Path) -> list[dict]:
    """Per-step training records (the final summary line, which has no loss, is left out)."""
    path = Path(run_dir) / "logs" / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"no training log at {path}: is {run_dir} a run directory?")
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in records if "reward" in r]


def plot_run(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write a PNG with mean reward (and the task metric, when logged) per step; returns its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(run_dir)
    if not records:
        raise ValueError(f"{run_dir} has no logged training steps to plot")
    out = Path(out) if out else Path(run_dir) / "reward.png"
    steps = [r["step"] for r in records]
    metric_keys = [k for k in records[0] if (k.startswith("task/") and "@" in k) or k == "task/ex"]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(steps, [r["reward"] for r in records], label="mean reward", color="tab:blue")
    ax.set_xlabel("step")
    ax.set_ylabel("reward")
    if metric_keys:
        twin = ax.twinx()
        twin.plot(
            steps,
            [r.get(metric_keys[0], float("nan")) for r in records],
            color="tab:orange",
            label=metric_keys[0].removeprefix("task/"),
        )
        twin.set_ylabel(metric_keys[0].removeprefix("task/"))
        fig.legend(loc="upper left", bbox_to_anchor=(0.1, 0.92))
    ax.set_title(f"training: {Path(run_dir).resolve()}", fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
