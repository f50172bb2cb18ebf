"""GRPO on the 12 CLEF TAR 2017 training reviews against the local Boolean engine (CPU, embedded SmolLM2-135M),
then the 8 test reviews judged by their whole result sets: the review title as typed, its words ORed, blind
feedback, the untrained model, the trained policy and the experts' strategies, with F3 (recall-weighted, as
CLEF TAR and the Boolean-query literature report it), set recall and precision, the number of documents
retrieved (the screening load), and a paired randomisation test of every policy against the title.

The recipe is ``configs/literature-clef-cpu.yaml``. Training gets the wall clock left after a reserve for the
evaluation, so the whole run fits ``--minutes`` (60 by default, on 2 cores):

    python benchmarks/train_literature_cpu.py --minutes 60 --out DIR --json PATH [--set KEY=VALUE ...]

The trained policy is left at ``DIR/final`` (a copy of the run's ``final``), ready for
``deepretrieval eval --task literature --data .../clef-tar-2017 --split test --engine local --policy DIR/final``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from pathlib import Path

from _common import REPO_ROOT, shared_data_dir
from deepretrieval.config import load_config
from deepretrieval.evaluation import format_table
from deepretrieval.evaluation.suite import evaluate_policies
from deepretrieval.files import write_json
from deepretrieval.report import read_metrics
from deepretrieval.tasks import load_task
from deepretrieval.train.grpo import train

CONFIG = REPO_ROOT / "configs" / "literature-clef-cpu.yaml"
BASELINES = ("original", "or-words", "feedback", "untrained")
METRICS = ("f3", "set_recall", "set_precision", "retrieved")
EVAL_RESERVE_S = 420  # the evaluation of six policies on 8 reviews, generation included, with a margin


def train_policy(args: argparse.Namespace) -> tuple:
    """Train for the time left after the evaluation reserve; the config, run folder and training figures."""
    out = Path(args.out)
    run_dir = out / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    budget = max(60.0, args.minutes * 60 - EVAL_RESERVE_S)
    overrides = [
        f"task.data={args.data}",
        f"rl.time_budget_s={budget}",
        f"output_dir={run_dir}",
        *args.overrides,
    ]
    config = load_config(CONFIG, overrides)
    started = time.perf_counter()
    train(config)
    steps = read_metrics(run_dir)
    figures = {
        "train_seconds": round(time.perf_counter() - started, 1),
        "time_budget_s": budget,
        "steps": steps[-1]["step"] if steps else 0,
        "reward_first_10": statistics.mean(r["reward"] for r in steps[:10]) if steps else None,
        "reward_last_10": statistics.mean(r["reward"] for r in steps[-10:]) if steps else None,
    }
    final = out / "final"
    shutil.rmtree(final, ignore_errors=True)
    shutil.copytree(run_dir / "final", final)
    return config, final, figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", default=str(shared_data_dir() / "literature" / "clef-tar-2017"))
    parser.add_argument("--minutes", type=float, default=60.0, help="wall clock of the whole run")
    parser.add_argument("--out", default="runs/bench-train-literature")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--json", default=None, help="write the figures here")
    args = parser.parse_args()

    started = time.perf_counter()
    config, final, training = train_policy(args)
    # the test reviews as the ordinary evaluation reads them (the included studies, the default metrics),
    # described to the policies as in training
    described = {key: value for key, value in config.task.options.items() if key != "judgements"}
    evaluation = load_config(
        CONFIG,
        [
            f"task.data={args.data}",
            f"task.options={json.dumps(described)}",
            f"eval.policies=[{','.join(BASELINES)},{final},expert]",
            f"prompting={json.dumps(config.prompting.model_dump(exclude_none=True))}",
        ],
    )
    task = load_task(evaluation.task, retriever=evaluation.retriever)
    suite = evaluate_policies(evaluation, task, progress=True)
    examples = {ex.id: ex for ex in task.examples(evaluation.task.eval_split or "test")}
    task.close()
    print()
    print(format_table(suite.results, suite.comparison))
    by_name = {r.policy: r for r in suite.results}
    trained, expert = by_name[str(final)], by_name["expert"]
    print(
        f"\ntrained: {training['steps']} GRPO steps in {training['train_seconds']:.0f} s "
        f"(mean reward of the first 10 steps {training['reward_first_10']:.3f}, last 10 "
        f"{training['reward_last_10']:.3f}); whole run {time.perf_counter() - started:.0f} s"
    )
    print(
        f"F3 trained {trained.metrics['f3']:.4f} vs experts {expert.metrics['f3']:.4f}; documents retrieved per "
        f"review {trained.metrics['retrieved']:.0f} vs experts {expert.metrics['retrieved']:.0f} "
        f"({trained.metrics['retrieved'] / max(expert.metrics['retrieved'], 1):.2f}x)"
    )
    print("\nthe trained policy's queries:")
    for example_id, answer in trained.answers.items():
        scores = trained.per_query.get(example_id, {})
        figures = ", ".join(f"{m} {scores.get(m, 0):.3g}" for m in METRICS)
        print(f"  {examples[example_id].original[:70]!r}\n    -> {answer!r} ({figures})")
    if args.json:
        payload = {
            "metrics": {r.policy: {m: r.metrics.get(m) for m in METRICS} for r in suite.results},
            "significance": suite.comparison.to_json() if suite.comparison else None,
            "training": training,
            "seconds": round(time.perf_counter() - started, 1),
            "queries": {
                ex_id: {"answer": a, **trained.per_query.get(ex_id, {})}
                for ex_id, a in trained.answers.items()
            },
        }
        write_json(Path(args.json), payload)


if __name__ == "__main__":
    main()
