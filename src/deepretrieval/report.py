"""``deepretrieval report RUN_DIR``: what a training run did, step by step, as PNG plots and one HTML page.

Read from ``RUN_DIR/logs/metrics.jsonl`` (one line per logged step, written by training): mean reward,
the task metric, the format-valid rate, think length and query length (the seed's reasoning-length
study). The HTML page shows how training ended (steps done and planned, and a warning when it stopped
early), the plots, a table of the run's config and its first and last figures, and links every evaluation
saved inside the run folder (the final evaluation in ``eval/``, or ``eval --out RUN_DIR/...``: its
``results.md`` and the per-query plots beside it).
"""

from __future__ import annotations

import html
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from deepretrieval.files import atomic_write, write_text
from deepretrieval.train.summary import TrainingSummary

REPORT_DIR = "report"


@dataclass(frozen=True)
class Series:
    """One plotted quantity: its log key, file name, title and y-axis label (``unit_range`` fixes 0..1)."""

    key: str
    file: str
    title: str
    ylabel: str
    unit_range: bool = False
    from_zero: bool = False


def read_metrics(run_dir: str | Path) -> list[dict]:
    """Per-step training records (the final summary line, which has no reward, is left out). An
    unterminated last line (a run killed mid-write) is ignored; any other unreadable line is an error."""
    path = Path(run_dir) / "logs" / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"no training log at {path}: is {run_dir} a run directory?")
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            if number == len(lines):  # torn last line
                break
            raise ValueError(f"{path}:{number} is not a JSON line") from None
        if isinstance(record, dict) and "reward" in record and "step" in record:
            records.append(record)
    return records


def series_for(records: list[dict]) -> list[Series]:
    """What to plot: reward, the task metric(s), format-valid rate, think and query length (those logged)."""
    keys = {key for record in records for key in record}
    metrics = sorted(k for k in keys if k.startswith("task/") and ("@" in k or k == "task/ex"))
    chosen = [Series("reward", "reward.png", "Mean reward per step", "reward")]
    chosen += [
        Series(m, f"metric_{_file_part(m)}.png", f"{m[5:]} of the sampled queries", m[5:], unit_range=True)
        for m in metrics
    ]
    chosen += [
        Series("task/format_ok", "format_ok.png", "Format-valid completions", "share valid", unit_range=True),
        Series("task/think_len", "think_len.png", "Reasoning length", "words in <think>", from_zero=True),
        Series("task/query_len", "query_len.png", "Query length", "words in the answer", from_zero=True),
    ]
    return [s for s in chosen if s.key in keys]


def _file_part(key: str) -> str:
    return key.removeprefix("task/").replace("@", "_at_").replace("/", "_")


def _values(records: list[dict], key: str) -> tuple[list[int], list[float]]:
    pairs = [(r["step"], r[key]) for r in records if isinstance(r.get(key), (int, float))]
    return [p[0] for p in pairs], [float(p[1]) for p in pairs]


def _plot(records: list[dict], series: Series, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    steps, values = _values(records, series.key)
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    ax.plot(steps, values, marker="o" if len(steps) <= 60 else None, markersize=3, color="tab:blue")
    spread = series.key == "reward" and any("reward_std" in r for r in records)
    if spread:  # the within-batch spread of rewards: the signal GRPO learns from
        std = [float(r.get("reward_std", 0.0)) for r in records if isinstance(r.get("reward"), (int, float))]
        low = [v - s for v, s in zip(values, std)]
        high = [v + s for v, s in zip(values, std)]
        ax.fill_between(steps, low, high, color="tab:blue", alpha=0.15, label="± std within the batch")
        ax.legend(loc="best", fontsize=8)
    ax.set_title(series.title)
    ax.set_xlabel("training step")
    ax.set_ylabel(series.ylabel)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if series.unit_range:
        ax.set_ylim(-0.02, 1.02)
    elif series.from_zero:
        ax.set_ylim(bottom=0, top=max(max(values) * 1.1, 1.0))
    if not any(values):
        ax.text(0.5, 0.75, "0 at every step", transform=ax.transAxes, ha="center", color="gray")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = out / series.file
    with atomic_write(path) as handle:
        fig.savefig(handle, format="png", dpi=110)
    plt.close(fig)
    return path


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write every plot and ``report.html`` into ``out`` (default ``RUN_DIR/report``); returns the HTML."""
    run_dir = Path(run_dir)
    records = read_metrics(run_dir)
    if not records:
        raise ValueError(f"{run_dir} has no logged training steps to report")
    out = Path(out) if out else run_dir / REPORT_DIR
    out.mkdir(parents=True, exist_ok=True)
    plotted = [(series, _plot(records, series, out)) for series in series_for(records)]
    return write_text(out / "report.html", _html(run_dir, records, plotted, out))


def plot_run(run_dir: str | Path) -> Path:
    """Write the run's report (``RUN_DIR/report``) and return the reward plot."""
    write_report(run_dir)
    return Path(run_dir) / REPORT_DIR / "reward.png"


def _html(run_dir: Path, records: list[dict], plotted: list[tuple[Series, Path]], out: Path) -> str:
    first, last = records[0], records[-1]
    rows = []
    for series, _ in plotted:
        values = _values(records, series.key)[1]
        cells = "".join(f"<td>{_fmt(v)}</td>" for v in (values[0], values[-1], min(values), max(values)))
        rows.append(f"<tr><td>{html.escape(series.title)}</td>{cells}</tr>")
    figures = (
        f"<table><tr><th>quantity</th><th>step {first['step']}</th><th>step {last['step']}</th>"
        f"<th>min</th><th>max</th></tr>{''.join(rows)}</table>"
    )
    config = _config_rows(run_dir)
    ending = _ending(run_dir, out)
    note = ""
    if config.get("prompting.reasoning", config.get("reasoning")) is not True:  # or a run of the first format
        note = "<p>This run trained without reasoning: the think length is 0 by construction.</p>"
    images = "".join(
        f'<figure><img src="{html.escape(os.path.relpath(path, out))}" alt="{html.escape(series.title)}">'
        f"</figure>"
        for series, path in plotted
    )
    config_table = "".join(
        f"<tr><td><code>{html.escape(k)}</code></td><td>{html.escape(str(v))}</td></tr>"
        for k, v in config.items()
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>deepretrieval run {html.escape(_short(run_dir))}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 1400px; }}
figure {{ display: inline-block; margin: 0.5em; }} img {{ max-width: 640px; }}
table {{ border-collapse: collapse; margin: 1em 0; }} td, th {{ border: 1px solid #ccc; padding: 0.25em 0.6em; }}
th {{ background: #f4f4f4; }}
.warning {{ border: 2px solid #c00; background: #fee; padding: 0.5em 1em; font-weight: bold; }}
</style></head><body>
<h1>Training run <code>{html.escape(str(run_dir.resolve()))}</code></h1>
<p>{len(records)} logged steps, from <code>logs/metrics.jsonl</code>.</p>
{ending}
<h2>Figures</h2>{figures}{note}
{images}
{_evaluations_html(run_dir, out)}
<h2>Config</h2><table>{config_table}</table>
</body></html>
"""


def evaluations(run_dir: Path) -> list[Path]:
    """The folders inside the run (checkpoints aside) where ``eval --out`` wrote a ``results.md``."""
    found = (path.parent for path in run_dir.rglob("results.md"))
    return sorted(folder for folder in found if "checkpoints" not in folder.relative_to(run_dir).parts)


def _evaluations_html(run_dir: Path, out: Path) -> str:
    """A section linking each evaluation's ``results.md`` and showing its plots."""
    sections = []
    for folder in evaluations(run_dir):
        link = html.escape(os.path.relpath(folder / "results.md", out))
        name = html.escape(f"{folder.relative_to(run_dir).as_posix()}/results.md")
        images = "".join(
            f'<figure><img src="{html.escape(os.path.relpath(png, out))}" alt="{html.escape(png.stem)}"></figure>'
            for png in sorted((folder / "plots").glob("*.png"))
        )
        sections.append(f'<h3><a href="{link}">{name}</a></h3>{images}')
    return "<h2>Evaluations</h2>" + "".join(sections) if sections else ""


def _ending(run_dir: Path, out: Path) -> str:
    """How training ended (``training.json``), a warning when it stopped before its plan, and a link to the
    final evaluation when there is one."""
    parts = []
    summary = TrainingSummary.read(run_dir)
    if summary is not None:
        parts.append(f"<p>Training: {html.escape(summary.describe())}.</p>")
        if summary.warning():
            parts.append(f'<p class="warning">{html.escape(summary.warning() or "")}</p>')
    results = run_dir / "eval" / "results.md"
    if results.is_file():
        link = html.escape(os.path.relpath(results, out))
        parts.append(f'<p>Final evaluation: <a href="{link}">{html.escape(link)}</a>.</p>')
    return "\n".join(parts)


def _short(run_dir: Path) -> str:
    """``parent/name`` of the run folder (run folders are often all called ``run``)."""
    folder = run_dir.resolve()
    return f"{folder.parent.name}/{folder.name}"


def _fmt(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.4g}"


def _config_rows(run_dir: Path) -> dict[str, object]:
    """``config.yaml`` flattened to dotted keys, plus the manifest's seed and versions when present."""
    rows: dict[str, object] = {}
    config_path = run_dir / "config.yaml"
    if config_path.is_file():
        _flatten(yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}, "", rows)
    manifest = run_dir / "manifest.json"
    if manifest.is_file():
        _flatten({"manifest": json.loads(manifest.read_text(encoding="utf-8"))}, "", rows)
    return rows


def _flatten(value: object, prefix: str, rows: dict[str, object]) -> None:
    if isinstance(value, dict) and value:
        for key, inner in value.items():
            _flatten(inner, f"{prefix}.{key}" if prefix else str(key), rows)
    else:
        rows[prefix] = value
