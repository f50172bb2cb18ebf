"""The evaluation harness: a fixed policy answers a task's split; the task's judge scores the answers."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from tqdm.auto import tqdm

from deepretrieval.parsing import parse_completion
from deepretrieval.policies.base import AnswerPolicy, Policy
from deepretrieval.tasks.base import Example, Outcome, Task


@dataclass
class EvalResult:
    """Mean metrics, per-example values, optional per-group means, and what the policy answered."""

    task: str
    split: str
    policy: str
    metrics: dict[str, float]
    per_query: dict[str, dict[str, float]]
    groups: dict[str, dict[str, float]] = field(default_factory=dict)
    format_ok: float | None = None
    answers: dict[str, str] = field(default_factory=dict)
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
    reasoning: bool,
    batch_size: int,
    progress: bool,
) -> tuple[list[str], float | None]:
    """Answers for ``examples`` and the format-valid rate (None for baselines that answer directly).
    A completion with an invalid format answers the empty string, which retrieves nothing."""
    if isinstance(policy, AnswerPolicy):
        return policy.answers(examples), None
    answers: list[str] = []
    valid = 0
    bar = tqdm(total=len(examples), desc=f"{policy.name}: generating", disable=not progress, unit="ex")
    for start in range(0, len(examples), batch_size):
        batch = examples[start : start + batch_size]
        completions = policy.complete([task.messages(example, reasoning) for example in batch])
        for completion in completions:
            parsed = parse_completion(completion, reasoning=reasoning, answer_key=task.answer_key)
            valid += parsed.format_ok
            answers.append(parsed.answer)
        bar.update(len(batch))
    bar.close()
    return answers, valid / max(len(examples), 1)


def evaluate(
    task: Task,
    policy: Policy,
    split: str,
    *,
    reasoning: bool = True,
    limit: int | None = None,
    batch_size: int = 64,
    group_by: str | None = "hardness",
    progress: bool = True,
) -> EvalResult:
    """Run ``policy`` on ``split`` of ``task`` and score every answer with the task's judge."""
    started = time.perf_counter()
    examples = task.examples(split)[:limit] if limit else task.examples(split)
    if not examples:
        raise ValueError(f"split {split!r} of task {task.name!r} has no examples")
    answers, format_ok = answer(
        task, policy, examples, reasoning=reasoning, batch_size=batch_size, progress=progress
    )
    outcomes: list[Outcome] = []
    for start in tqdm(range(0, len(examples), 512), desc="judging", disable=not progress, unit="batch"):
        outcomes += task.measure(answers[start : start + 512], examples[start : start + 512])
    hidden = set(getattr(task, "extra_outcomes", ()))
    keys = [key for key in outcomes[0] if key not in hidden]
    grouped: dict[str, list[Outcome]] = defaultdict(list)
    if group_by:
        for example, outcome in zip(examples, outcomes):
            if group_by in example.meta:
                grouped[str(example.meta[group_by])].append(outcome)
    return EvalResult(
        task=task.name,
        split=split,
        policy=policy.name,
        metrics=_mean(outcomes, keys),
        per_query={ex.id: {k: o[k] for k in keys} for ex, o in zip(examples, outcomes)},
        groups={
            group: _mean(items, keys) | {"count": float(len(items))}
            for group, items in sorted(grouped.items())
        },
        format_ok=format_ok,
        answers={ex.id: a for ex, a in zip(examples, answers)},
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
