"""The evaluation harness: a fixed policy answers a task's split; the task's judge scores the answers.

Answers go through the same parse-and-guard path as in training (:class:`deepretrieval.rewards.AnswerParser`),
so an answer that training would call malformed (e.g. over the length cap) retrieves nothing here either.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from tqdm.auto import tqdm

from deepretrieval.policies.base import AnswerPolicy, CompletionPolicy, Policy
from deepretrieval.rewards import AnswerParser, Guards, QueryMode, check_query_mode, judged_queries
from deepretrieval.tasks.base import Example, Outcome, Task

JUDGE_BATCH = 512


@dataclass(frozen=True)
class Prompting:
    """How a policy is used: reasoning or not, the prompt template (None: the task's own), and how its
    answers reach the judge (``rewrite`` or ``expand``)."""

    reasoning: bool = True
    template: str | None = None
    query_mode: QueryMode = "rewrite"


def prompting_for(
    policy: Policy,
    reasoning: bool | None = None,
    template: str | None = None,
    query_mode: QueryMode | None = None,
) -> Prompting:
    """Explicit choices win; otherwise a trained policy is used as its card says; otherwise with reasoning,
    the task's template and ``rewrite``."""
    card = policy.card if isinstance(policy, CompletionPolicy) else None
    if reasoning is None:
        reasoning = card.reasoning if card else True
    if template is None and card is not None:
        template = card.template
    if query_mode is None:
        query_mode = card.query_mode if card else "rewrite"  # type: ignore[assignment]
    return Prompting(reasoning, template, query_mode)  # type: ignore[arg-type]


@dataclass
class EvalResult:
    """Mean metrics, per-example values, optional per-group means, and what the policy answered.

    ``failed`` counts examples the judge could not score (a search API that kept failing); they are left
    out of the means and listed in ``failed_ids``."""

    task: str
    split: str
    policy: str
    metrics: dict[str, float]
    per_query: dict[str, dict[str, float]]
    groups: dict[str, dict[str, float]] = field(default_factory=dict)
    format_ok: float | None = None
    answers: dict[str, str] = field(default_factory=dict)
    reasoning: bool = True
    query_mode: str = "rewrite"
    failed_ids: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> dict:
        return asdict(self)


def _mean(outcomes: Sequence[Outcome], keys: Sequence[str]) -> dict[str, float]:
    n = max(len(outcomes), 1)
    return {key: sum(o.get(key, 0.0) for o in outcomes) / n for key in keys}


def answer(
    task: Task,
    policy: Policy,
    examples: Sequence[Example],
    *,
    prompting: Prompting,
    guards: Guards | None = None,
    batch_size: int,
    progress: bool,
) -> tuple[list[str], float | None]:
    """Answers for ``examples`` and the format-valid rate (None for baselines that answer directly).
    A completion with an invalid format answers the empty string, which retrieves nothing."""
    if isinstance(policy, AnswerPolicy):
        return policy.answers(examples), None
    parse = AnswerParser(reasoning=prompting.reasoning, answer_key=task.answer_key, guards=guards)
    answers: list[str] = []
    valid = 0
    bar = tqdm(total=len(examples), desc=f"{policy.name}: generating", disable=not progress, unit="ex")
    for start in range(0, len(examples), batch_size):
        batch = examples[start : start + batch_size]
        prompts = [task.messages(example, prompting.reasoning, prompting.template) for example in batch]
        for completion in policy.complete(prompts):
            parsed = parse(completion)
            valid += parsed.format_ok
            answers.append(parsed.answer)
        bar.update(len(batch))
    bar.close()
    return answers, valid / max(len(examples), 1)


def evaluate(
    task: Task,
    policy: Policy,
    split: str | None = None,
    *,
    reasoning: bool | None = None,
    template: str | None = None,
    query_mode: QueryMode | None = None,
    guards: Guards | None = None,
    limit: int | None = None,
    batch_size: int = 64,
    group_by: str | None = "hardness",
    progress: bool = True,
) -> EvalResult:
    """Run ``policy`` on ``split`` (default: the task's) and score every answer with the task's judge."""
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be a positive number of examples, got {limit}")
    started = time.perf_counter()
    split = split or task.default_split
    examples = task.examples(split)[:limit] if limit else task.examples(split)
    if not examples:
        raise ValueError(f"split {split!r} of task {task.name!r} has no examples")
    prompting = prompting_for(policy, reasoning, template, query_mode)
    check_query_mode(task, prompting.query_mode)
    answers, format_ok = answer(
        task, policy, examples, prompting=prompting, guards=guards, batch_size=batch_size, progress=progress
    )
    outcomes: list[Outcome | None] = []
    bar = tqdm(total=len(examples), desc="judging", disable=not progress, unit="ex")
    queries = judged_queries(answers, examples, prompting.query_mode)
    for start in range(0, len(examples), JUDGE_BATCH):
        outcomes += task.measure(queries[start : start + JUDGE_BATCH], examples[start : start + JUDGE_BATCH])
        bar.update(min(JUDGE_BATCH, len(examples) - start))
    bar.close()
    keys = list(task.metrics)
    judged = [(ex, o) for ex, o in zip(examples, outcomes) if o is not None]
    grouped: dict[str, list[Outcome]] = defaultdict(list)
    if group_by:
        for example, outcome in judged:
            if group_by in example.meta:
                grouped[str(example.meta[group_by])].append(outcome)
    return EvalResult(
        task=task.name,
        split=split,
        policy=policy.name,
        metrics=_mean([o for _, o in judged], keys),
        per_query={ex.id: {k: o[k] for k in keys} for ex, o in judged},
        groups={
            group: _mean(items, keys) | {"count": float(len(items))}
            for group, items in sorted(grouped.items())
        },
        format_ok=format_ok,
        answers={ex.id: a for ex, a in zip(examples, answers)},
        reasoning=prompting.reasoning,
        query_mode=prompting.query_mode,
        failed_ids=[ex.id for ex, o in zip(examples, outcomes) if o is None],
        seconds=time.perf_counter() - started,
    )


def format_table(results: Sequence[EvalResult]) -> str:
    """A plain-text table: one row per result, one column per metric (union, in first-seen order)."""
    columns: list[str] = []
    for result in results:
        columns += [key for key in result.metrics if key not in columns]
    show_format = any(r.format_ok is not None for r in results)
    header = ["policy"] + columns + (["format_ok"] if show_format else [])
    rows = [header]
    for r in results:
        row = [r.policy] + [f"{r.metrics[c]:.4f}" if c in r.metrics else "-" for c in columns]
        if show_format:
            row.append("-" if r.format_ok is None else f"{r.format_ok:.3f}")
        rows.append(row)
    for r in results:
        for group, values in r.groups.items():
            rows.append(
                [f"  {r.policy} [{group}, n={int(values['count'])}]"]
                + [f"{values.get(c, 0):.4f}" for c in columns]
            )
    widths = [max(len(row[i]) if i < len(row) else 0 for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
