"""Several policies on one task split, one table, significance against a baseline: :func:`evaluate_policies`,
what ``deepretrieval eval`` and the quickstart run.

Every policy's requirements are checked before any generation starts: files, endpoints and models must be
reachable, and each model's prompting (explicit choices, its card, the defaults) must suit the task. Models
then load one at a time, each freed once its last variant is done.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from deepretrieval.config import PromptingConfig, RunConfig
from deepretrieval.default_model import resolve_model
from deepretrieval.evaluation.harness import EvalResult, evaluate
from deepretrieval.evaluation.significance import Comparison, compare
from deepretrieval.policies import (
    PolicyOptions,
    PolicySpec,
    is_local_model,
    load_policy,
    local_card,
    parse_policy_spec,
)
from deepretrieval.policies.baselines import BLIND_FEEDBACK
from deepretrieval.policies.openai import OpenAIPolicy
from deepretrieval.prompting import DEFAULT_FEEDBACK_WORDS, resolve
from deepretrieval.tasks.base import Example, Task

DEFAULT_BASELINE = "original"


@dataclass
class SuiteResult:
    """One evaluation table: a result per policy, the significance tests against ``baseline``, the
    examples of the split (for per-query files) and the task's primary metric (for the plots)."""

    results: list[EvalResult]
    comparison: Comparison | None
    baseline: str
    examples: list[Example]
    primary_metric: str = ""

    def failure_problem(self, max_failures: int | None = None) -> str | None:
        """Why this table must not pass for a result: a policy none of whose examples could be judged,
        or one with more failed examples than ``max_failures`` (None: no limit). None when it may."""
        for result in self.results:
            if result.failures and not result.judged:
                return (
                    f"{result.policy}: none of the {result.total} examples could be judged; {_first(result)}"
                )
        for result in self.results:
            if max_failures is not None and len(result.failures) > max_failures:
                return (
                    f"{result.policy}: {len(result.failures)} of {result.total} examples could not be judged, "
                    f"over --max-failures {max_failures}; {_first(result)}"
                )
        return None


def _first(result: EvalResult) -> str:
    return f"first: {next(iter(result.failures.values()))}"


def policy_specs(config: RunConfig) -> tuple[list[PolicySpec], str]:
    """The policies of ``config.eval`` parsed, and the baseline (checked to be one of them)."""
    specs = [parse_policy_spec(text) for text in config.eval.policies]
    labels = [spec.text for spec in specs]
    duplicated = sorted({label for label in labels if labels.count(label) > 1})
    if duplicated:
        raise ValueError(f"--policy lists {duplicated[0]!r} twice")
    baseline = config.eval.baseline or (DEFAULT_BASELINE if DEFAULT_BASELINE in labels else labels[0])
    if baseline not in labels:
        raise ValueError(f"--baseline {baseline!r} is not one of the --policy entries: {', '.join(labels)}")
    return specs, baseline


def evaluate_policies(
    config: RunConfig,
    task: Task,
    *,
    progress: bool = True,
    logs: Path | None = None,
    keep_rankings: bool = False,
) -> SuiteResult:
    """Evaluate ``config.eval.policies`` on ``task``'s ``config.task.eval_split`` (default: the task's own);
    with ``logs``, each model's completions are logged there and reused by a rerun; with
    ``keep_rankings``, each result holds the rankings the judge saw (for run files)."""
    specs, baseline = policy_specs(config)
    options = _options(config, task, specs)
    loaded = _prepare(specs, config, task, options)
    split = config.task.eval_split or task.default_split
    results = []
    for index, spec in enumerate(specs):
        if spec.base not in loaded:
            loaded[spec.base] = load_policy(spec.base, options(spec))
        results.append(
            evaluate(
                task,
                loaded[spec.base],  # type: ignore[arg-type]
                split,
                prompting=_explicit(config, spec),
                limit=config.eval.limit,
                batch_size=config.eval.batch_size,
                progress=progress,
                label=spec.text,
                log_path=logs / f"{slug(spec.text)}.jsonl" if logs else None,
                keep_rankings=keep_rankings,
            )
        )
        if all(later.base != spec.base for later in specs[index + 1 :]):  # free the model early
            done = loaded.pop(spec.base)
            if isinstance(done, OpenAIPolicy):
                done.close()  # its HTTP session and completion cache; models just go
    comparison = None
    if len(results) > 1:
        per_query = {r.policy: r.per_query for r in results}
        comparison = compare(
            per_query, baseline, list(task.metrics), resamples=config.eval.resamples, seed=config.eval.seed
        )
    return SuiteResult(results, comparison, baseline, task.examples(split), task.primary_metric)


def _explicit(config: RunConfig, spec: PolicySpec) -> PromptingConfig:
    """The explicit prompting of one spec: the config's, with the spec's reasoning variant."""
    if spec.reasoning is None:
        return config.prompting
    return config.prompting.model_copy(update={"reasoning": spec.reasoning})


def _options(config: RunConfig, task: Task, specs: Sequence[PolicySpec]):
    """The options each spec is opened with. Blind feedback shows what the explicit prompting says, else
    what the first listed policy trained with feedback read (so both see the same snippets), else the top
    3 results, 12 words each."""
    chosen = config.prompting
    trained = next(
        (card.prompting for spec in specs if is_local_model(spec.base) and (card := local_card(spec.base))
         and card.prompting.feedback),
        None,
    )  # fmt: skip
    count = chosen.feedback or (trained.feedback if trained else BLIND_FEEDBACK)
    words = chosen.feedback_words or (trained.feedback_words if trained else DEFAULT_FEEDBACK_WORDS)
    openai = {
        "base_url": config.eval.openai.base_url,
        "concurrency": config.eval.openai.concurrency,
        "max_retries": config.eval.openai.retries,
        "cache": config.eval.openai.cache,
    }

    def for_spec(spec: PolicySpec) -> PolicyOptions:
        return PolicyOptions(name=spec.text, task=task, feedback=count, feedback_words=words, openai=openai)

    return for_spec


def _prepare(specs: Sequence[PolicySpec], config: RunConfig, task: Task, options) -> dict[str, object]:
    """Open the cheap policies (baselines, files, endpoints) and check that every model can be had and
    that its prompting suits the task; the models themselves load one at a time, when their turn comes."""
    loaded: dict[str, object] = {}
    for spec in specs:
        if is_local_model(spec.base):
            resolve_model(None if spec.base == "untrained" else spec.base)
            card = local_card(spec.base)
            resolve(_explicit(config, spec), card.prompting if card else None, task)
        elif spec.base not in loaded:
            loaded[spec.base] = load_policy(spec.base, options(spec))
    return loaded


def slug(label: str) -> str:
    """A file name for a policy label (``runs/x/final`` -> ``runs_x_final-1a2b3c``), unique per label."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("_.")[:60] or "policy"
    return f"{readable}-{hashlib.sha256(label.encode()).hexdigest()[:6]}"
