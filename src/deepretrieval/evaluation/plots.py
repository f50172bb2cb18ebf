"""An evaluation's pictures (``eval --out DIR`` writes them to ``DIR/plots/``, and ``results.md`` links them):

- per policy, its per-query values against the baseline's on the primary metric: a scatter (each query one
  point; above the diagonal, the policy did better) beside the per-query differences sorted, so a reader
  sees whether a mean moved because of a few queries or many;
- for literature search, recall against the documents each topic's query retrieved (log scale): the
  screening load a systematic reviewer pays for the recall.

Plotting needs matplotlib (the ``train`` extras); without it the plots are skipped with a note and the
evaluation is unaffected.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from deepretrieval.evaluation.harness import EvalResult
from deepretrieval.files import atomic_write

PLOTS_DIR = "plots"
RETRIEVED = "retrieved"


@dataclass(frozen=True)
class Plot:
    """A written picture: its title and path."""

    title: str
    path: Path


def matplotlib_missing() -> str | None:
    """Why plots cannot be drawn here (None when they can)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return "plots skipped: matplotlib is not installed (pip install 'deepretrieval[train]' or matplotlib)"
    return None


def write_plots(
    out: Path, results: Sequence[EvalResult], baseline: str, metric: str, names: dict[str, str]
) -> list[Plot]:
    """Every plot of an evaluation into ``out/plots``; ``names`` gives each policy's file name stem."""
    import matplotlib

    matplotlib.use("Agg")
    base = next(r for r in results if r.policy == baseline)
    plots = []
    for result in results:
        if result is base or not _shared(result, base, metric):
            continue
        path = out / PLOTS_DIR / f"{names[result.policy]}-vs-baseline.png"
        plots.append(Plot(f"{result.policy} against {baseline} per query ({metric})", path))
        _against_baseline(result, base, metric, path)
    keys = _metric_keys(results)
    recall = (
        "set_recall"
        if "set_recall" in keys
        else next((m for m in sorted(keys) if m.startswith("recall@")), None)
    )
    if recall is not None and RETRIEVED in keys:
        path = out / PLOTS_DIR / "recall-vs-retrieved.png"
        plots.append(Plot(f"{recall} against documents retrieved per topic", path))
        _recall_vs_retrieved(results, recall, path)
    return plots


def _metric_keys(results: Sequence[EvalResult]) -> set[str]:
    return {key for r in results for values in r.per_query.values() for key in values}


def _shared(result: EvalResult, base: EvalResult, metric: str) -> list[str]:
    """The queries judged for both, with ``metric``."""
    return [q for q, v in result.per_query.items() if metric in v and metric in base.per_query.get(q, {})]


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    with atomic_write(path) as handle:
        fig.savefig(handle, format="png", dpi=110)
    plt.close(fig)


def _against_baseline(result: EvalResult, base: EvalResult, metric: str, path: Path) -> None:
    import matplotlib.pyplot as plt

    queries = _shared(result, base, metric)
    ours = [result.per_query[q][metric] for q in queries]
    theirs = [base.per_query[q][metric] for q in queries]
    diffs = sorted(o - t for o, t in zip(ours, theirs))
    better, worse = sum(d > 0 for d in diffs), sum(d < 0 for d in diffs)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.4))
    top = max([1.0, *ours, *theirs])
    points = Counter(zip(theirs, ours))  # many queries share a point (0 and 1 are common): area = count
    left.plot([0, top], [0, top], color="gray", linewidth=0.8, linestyle="--")
    left.scatter(
        [x for x, _ in points],
        [y for _, y in points],
        s=[16 * n for n in points.values()],
        alpha=0.5,
        color="tab:blue",
        edgecolors="none",
    )
    left.set_xlabel(f"baseline ({base.policy})")
    left.set_ylabel("policy")
    left.set_title(
        f"{metric} of each query ({len(queries)}; area = queries)\nabove the line: the policy did better"
    )
    left.set_xlim(-0.04 * top, top * 1.04)
    left.set_ylim(-0.04 * top, top * 1.04)
    colors = ["tab:green" if d > 0 else "tab:red" if d < 0 else "lightgray" for d in diffs]
    right.bar(range(len(diffs)), diffs, width=1.0 if len(diffs) > 60 else 0.8, color=colors)
    right.axhline(0, color="black", linewidth=0.6)
    right.set_xlabel("queries, sorted by difference")
    right.set_ylabel(f"{metric} difference")
    mean = sum(diffs) / len(diffs)
    right.set_title(
        f"policy minus baseline, sorted\nbetter {better}, worse {worse}, same {len(diffs) - better - worse}; "
        f"mean {mean:+.4f}"
    )
    right.set_xlim(-0.5, len(diffs) - 0.5)
    for ax in (left, right):
        ax.grid(alpha=0.3)
    fig.suptitle(f"{result.policy} against {base.policy} ({result.task} / {result.split})")
    _save(fig, path)


def _recall_vs_retrieved(results: Sequence[EvalResult], recall: str, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    markers = "os^Dv<>pPX*"
    for i, result in enumerate(results):
        points = [
            (v[RETRIEVED], v[recall]) for v in result.per_query.values() if RETRIEVED in v and recall in v
        ]
        if not points:
            continue
        x, y = zip(*points)
        ax.scatter(
            [max(value, 1.0) for value in x],  # a query that matched nothing sits at 1 on the log axis
            y,
            s=28,
            alpha=0.7,
            marker=markers[i % len(markers)],
            label=f"{result.policy} (median {sorted(x)[len(x) // 2]:,.0f} retrieved)",
        )
    ax.set_xscale("log")
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("documents the query retrieved (log scale; the screening load)")
    ax.set_ylabel(recall)
    ax.set_title(f"{recall} against documents retrieved, one point per topic")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower right")
    _save(fig, path)
