"""The evaluation a training run ends with: its final policy beside ``eval.policies`` (the original query by
default) on ``task.eval_split``, all prompted as in training, tested against ``eval.baseline``, written to
``RUN_DIR/eval/`` (results.json, results.md, per-query files) as ``deepretrieval eval`` writes them.

In a run, ``untrained`` means the run's own base model (``model``), so the table shows what training changed
and nothing else. The quickstart evaluates through here too.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from deepretrieval.config import ConfigError, PromptingConfig, RunConfig
from deepretrieval.evaluation.outputs import write_outputs
from deepretrieval.evaluation.suite import SuiteResult, evaluate_policies
from deepretrieval.policies import parse_policy_spec
from deepretrieval.prompting import Prompting
from deepretrieval.tasks.base import Task

EVAL_DIR = "eval"
TRAINED = "trained"


def run_policies(config: RunConfig, run_dir: Path, extra: Sequence[str] = ()) -> list[tuple[str, str]]:
    """(row label, policy spec) of each policy the run is evaluated with: ``eval.policies`` and ``extra``
    (``untrained`` standing for the run's base model), then the trained policy."""
    pairs = []
    for text in [*config.eval.policies, *extra]:
        spec = parse_policy_spec(text)
        if spec.base == "untrained" and config.model is not None:
            variant = text[len(spec.base) :]  # "@no-reasoning" or ""
            pairs.append((text, config.model + variant))
        elif spec.base != TRAINED:
            pairs.append((text, text))
    return [*pairs, (TRAINED, str(run_dir / "final"))]


def check_run_evaluation(config: RunConfig, run_dir: Path, task: Task, extra: Sequence[str] = ()) -> None:
    """Refuse, before training starts, a final evaluation that could only fail once training has ended: an
    eval split the task lacks, a baseline that is not evaluated, a policy listed twice, a model that
    cannot be had."""
    from deepretrieval.default_model import resolve_model
    from deepretrieval.policies import is_local_model

    split = config.task.eval_split or task.default_split
    if split not in task.splits:
        raise ConfigError(
            f"task.eval_split: {task.name} has no split {split!r} (it has {', '.join(task.splits)})"
        )
    pairs = run_policies(config, run_dir, extra)
    labels = [label for label, _ in pairs]
    twice = sorted({label for label in labels if labels.count(label) > 1})
    if twice:
        raise ConfigError(f"eval.policies lists {twice[0]!r} twice")
    if config.eval.baseline is not None and config.eval.baseline not in labels:
        raise ConfigError(
            f"eval.baseline {config.eval.baseline!r} is not evaluated after training: choose one of "
            f"{', '.join(labels)}"
        )
    for _, spec in pairs[:-1]:  # the trained policy does not exist yet
        base = parse_policy_spec(spec).base
        if is_local_model(base):
            resolve_model(None if base == "untrained" else base)


def evaluate_run(
    config: RunConfig,
    run_dir: Path,
    task: Task,
    prompting: Prompting,
    *,
    extra: Sequence[str] = (),
    progress: bool = True,
) -> SuiteResult:
    """Evaluate the run's final policy beside the others (see :func:`run_policies`) in the run's
    ``prompting``, write the table into ``RUN_DIR/eval/`` and return it, rows labelled as listed."""
    pairs = run_policies(config, run_dir, extra)
    labels = {spec: label for label, spec in pairs}
    baseline = config.eval.baseline or ("original" if "original" in labels.values() else pairs[0][0])
    specs = [spec for _, spec in pairs]
    evaluated = config.model_copy(
        update={
            "prompting": PromptingConfig(
                **prompting.to_json()
            ),  # every model as trained: only training differs
            "eval": config.eval.model_copy(
                update={"policies": specs, "baseline": dict(pairs).get(baseline, baseline), "out": None}
            ),
        }
    )
    suite = evaluate_policies(evaluated, task, progress=progress)
    suite = relabel(suite, labels)
    write_outputs(run_dir / EVAL_DIR, suite, _command(run_dir, specs, prompting))
    return suite


def relabel(suite: SuiteResult, labels: dict[str, str]) -> SuiteResult:
    """The suite with each policy's row (and its significance tests) under its label."""
    results = [replace(result, policy=labels.get(result.policy, result.policy)) for result in suite.results]
    comparison = suite.comparison
    if comparison is not None:
        tests = {labels.get(policy, policy): by_metric for policy, by_metric in comparison.tests.items()}
        comparison = replace(
            comparison, baseline=labels.get(comparison.baseline, comparison.baseline), tests=tests
        )
    return replace(
        suite, results=results, comparison=comparison, baseline=labels.get(suite.baseline, suite.baseline)
    )


def _command(run_dir: Path, specs: Sequence[str], prompting: Prompting) -> str:
    """The ``deepretrieval eval`` command that gives the same table."""
    return shlex.join(
        [
            "deepretrieval",
            "eval",
            "--config",
            str(run_dir / "config.yaml"),
            "--policy",
            ",".join(specs),
            "--max-new-tokens",
            str(prompting.max_new_tokens),
        ]
    )
