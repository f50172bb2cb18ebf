"""The evaluation harness: a fixed policy answers a task's split; the task's judge scores the answers.

Answers go through the same parse-and-guard path as in training (:class:`deepretrieval.rewards.AnswerParser`),
so an answer that training would call malformed (e.g. over the length cap) retrieves nothing here either.
A model's completions can be logged as they are generated (:class:`GenerationLog`), so an interrupted
evaluation resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from deepretrieval.generation_log import GenerationLog
from deepretrieval.policies.base import AnswerPolicy, CompletionPolicy, GenerationFailure, Policy
from deepretrieval.policies.card import PolicyCard
from deepretrieval.rewards import AnswerParser, Guards, QueryMode, check_query_mode, judged_queries
from deepretrieval.significance import Comparison
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
    the task's template and the policy's own ``query_mode`` (baselines), else ``rewrite``."""
    card = policy.card if isinstance(policy, CompletionPolicy) else None
    if reasoning is None:
        reasoning = card.reasoning if card else True
    if template is None and card is not None:
        template = card.template
    if query_mode is None:  # a baseline may say how its answers reach the judge (blind feedback: expand)
        query_mode = card.query_mode if card else getattr(policy, "query_mode", "rewrite")
    return Prompting(reasoning, template, query_mode)  # type: ignore[arg-type]


def check_feedback(task: Task, card: PolicyCard | None) -> None:
    """A policy trained on prompts that show the top results must be evaluated on the same prompts."""
    if card is None or not card.feedback:
        return
    shown = (getattr(task, "feedback", 0), getattr(task, "feedback_words", None))
    if shown != (card.feedback, card.feedback_words):
        raise ValueError(
            f"this policy was trained with the top {card.feedback} results ({card.feedback_words} words each) "
            f"in its prompt; evaluate it with --option feedback={card.feedback} --option feedback_words={card.feedback_words}"
        )


@dataclass(frozen=True)
class Answered:
    """What a policy said for one example: the answer sent to the judge, and for a model its raw
    completion and the parser's verdict (``reason``, ``"ok"`` when well-formed). ``failure`` is set when
    no completion could be had (the example is then neither judged nor counted)."""

    answer: str
    completion: str | None = None
    reason: str = "ok"
    failure: str | None = None


@dataclass
class EvalResult:
    """Mean metrics, per-example values, optional per-group means, and what the policy answered.

    ``failures`` maps the examples that could not be scored (a generation or a search API that kept
    failing) to the reason; they are left out of the means and of ``format_ok``. ``completions`` and
    ``reasons`` (the parser's verdict) are filled for models only."""

    task: str
    split: str
    policy: str
    metrics: dict[str, float]
    per_query: dict[str, dict[str, float]]
    groups: dict[str, dict[str, float]] = field(default_factory=dict)
    format_ok: float | None = None
    answers: dict[str, str] = field(default_factory=dict)
    completions: dict[str, str] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    reasoning: bool = True
    template: str | None = None
    query_mode: str = "rewrite"
    failures: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def failed_ids(self) -> list[str]:
        return list(self.failures)

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
    split_examples: Sequence[Example] | None = None,
    prompting: Prompting,
    guards: Guards | None = None,
    batch_size: int,
    progress: bool,
    log: GenerationLog | None = None,
    label: str | None = None,
) -> list[Answered]:
    """What ``policy`` answers for each of ``examples``. An answer policy is handed the whole split
    (``split_examples``, default ``examples``; a predictions file checks its alignment against it); a
    model's completions are parsed, and a malformed one answers the empty string, which retrieves
    nothing. With ``log``, completions already logged are reused and new ones logged batch by batch;
    ``label`` names the progress bar."""
    if isinstance(policy, AnswerPolicy):
        whole = split_examples if split_examples is not None else examples
        return [Answered(text) for text in policy.answers(whole)[: len(examples)]]
    parse = AnswerParser(reasoning=prompting.reasoning, answer_key=task.answer_key, guards=guards)
    done = log.done if log is not None else {}
    completions: dict[str, str | GenerationFailure] = {ex.id: done[ex.id] for ex in examples if ex.id in done}
    todo = [ex for ex in examples if ex.id not in completions]
    bar = tqdm(
        total=len(examples),
        initial=len(examples) - len(todo),
        desc=f"{label or policy.name}: generating",
        disable=not progress,
        unit="ex",
    )
    for start in range(0, len(todo), batch_size):
        batch = todo[start : start + batch_size]
        prompts = [task.messages(example, prompting.reasoning, prompting.template) for example in batch]
        outputs = policy.complete(prompts)
        if len(outputs) != len(batch):
            raise RuntimeError(f"policy {policy.name} returned {len(outputs)} completions for {len(batch)}")
        completions.update(zip((ex.id for ex in batch), outputs))
        if log is not None:
            log.append((ex.id, out) for ex, out in zip(batch, outputs) if isinstance(out, str))
        bar.update(len(batch))
    bar.close()
    answered = []
    for example in examples:
        output = completions[example.id]
        if isinstance(output, GenerationFailure):
            answered.append(Answered("", reason="generation_failed", failure=output.reason))
            continue
        parsed = parse(output)
        answered.append(Answered(parsed.answer, output, parsed.reason))
    return answered


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
    label: str | None = None,
    log_path: str | Path | None = None,
) -> EvalResult:
    """Run ``policy`` on ``split`` (default: the task's) and score every answer with the task's judge.

    ``label`` names the result (default: the policy's name). ``log_path``: a model's completions are
    logged there and reused by a later call with the same policy, task, split, examples and prompts."""
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be a positive number of examples, got {limit}")
    if not isinstance(policy, (AnswerPolicy, CompletionPolicy)):
        raise TypeError(
            f"{type(policy).__name__} is not a policy: an answer policy has name and answers(); a completion "
            "policy has name, card, fingerprint and complete()"
        )
    started = time.perf_counter()
    split = split or task.default_split
    split_examples = task.examples(split)
    examples = split_examples[:limit] if limit else split_examples
    if not examples:
        raise ValueError(f"split {split!r} of task {task.name!r} has no examples")
    prompting = prompting_for(policy, reasoning, template, query_mode)
    check_query_mode(task, prompting.query_mode)
    check_feedback(task, policy.card if isinstance(policy, CompletionPolicy) else None)
    log = None
    if log_path is not None and isinstance(policy, CompletionPolicy):
        log = GenerationLog(log_path, _log_key(task, policy, split, prompting, examples))
    try:
        answered = answer(
            task,
            policy,
            examples,
            split_examples=split_examples,
            prompting=prompting,
            guards=guards,
            batch_size=batch_size,
            progress=progress,
            log=log,
            label=label,
        )
    finally:
        if log is not None:
            log.close()
    failures = {ex.id: f"generation failed: {a.failure}" for ex, a in zip(examples, answered) if a.failure}
    to_judge = [(ex, a) for ex, a in zip(examples, answered) if a.failure is None]
    outcomes = _judge(task, to_judge, prompting.query_mode, progress)
    failures |= {ex.id: "judge failed" for (ex, _), o in zip(to_judge, outcomes) if o is None}
    keys = list(task.metrics)
    judged = [(ex, o) for (ex, _), o in zip(to_judge, outcomes) if o is not None]
    grouped: dict[str, list[Outcome]] = defaultdict(list)
    if group_by:
        for example, outcome in judged:
            if group_by in example.meta:
                grouped[str(example.meta[group_by])].append(outcome)
    is_model = isinstance(policy, CompletionPolicy)
    generated = [a for a in answered if a.failure is None]
    return EvalResult(
        task=task.name,
        split=split,
        policy=label or policy.name,
        metrics=_mean([o for _, o in judged], keys),
        per_query={ex.id: {k: o[k] for k in keys} for ex, o in judged},
        groups={
            group: _mean(items, keys) | {"count": float(len(items))}
            for group, items in sorted(grouped.items())
        },
        format_ok=sum(a.reason == "ok" for a in generated) / len(generated)
        if is_model and generated
        else None,
        answers={ex.id: a.answer for ex, a in zip(examples, answered)},
        completions={ex.id: a.completion for ex, a in zip(examples, answered) if a.completion is not None},
        reasons={ex.id: a.reason for ex, a in zip(examples, answered)} if is_model else {},
        reasoning=prompting.reasoning,
        template=prompting.template,
        query_mode=prompting.query_mode,
        failures=failures,
        seconds=time.perf_counter() - started,
    )


def _judge(
    task: Task, items: Sequence[tuple[Example, Answered]], mode: QueryMode, progress: bool
) -> list[Outcome | None]:
    """The judge's outcome for every (example, answer), in batches of :data:`JUDGE_BATCH`."""
    examples = [ex for ex, _ in items]
    queries = judged_queries([a.answer for _, a in items], examples, mode)
    outcomes: list[Outcome | None] = []
    bar = tqdm(total=len(items), desc="judging", disable=not progress, unit="ex")
    for start in range(0, len(items), JUDGE_BATCH):
        outcomes += task.measure(queries[start : start + JUDGE_BATCH], examples[start : start + JUDGE_BATCH])
        bar.update(min(JUDGE_BATCH, len(items) - start))
    bar.close()
    return outcomes


def _log_key(
    task: Task, policy: CompletionPolicy, split: str, prompting: Prompting, examples: Sequence[Example]
) -> dict:
    """What a policy's completions depend on: reused only when all of it is unchanged. The digest of the
    prompts themselves covers every task option that shapes them (e.g. how many results a feedback prompt
    shows), which the template name alone does not."""
    prompts = [task.messages(example, prompting.reasoning, prompting.template) for example in examples]
    return {
        "policy": policy.fingerprint,
        "task": task.name,
        "data": task.fingerprint,
        "split": split,
        "reasoning": prompting.reasoning,
        "template": prompting.template,
        "prompts": hashlib.sha256(json.dumps(prompts, sort_keys=True).encode()).hexdigest()[:16],
    }


def _columns(results: Sequence[EvalResult]) -> list[str]:
    columns: list[str] = []
    for result in results:
        columns += [key for key in result.metrics if key not in columns]
    return columns


def _cells(result: EvalResult, columns: Sequence[str], comparison: Comparison | None) -> list[str]:
    def value(metric: str) -> str:
        if metric not in result.metrics:
            return "-"
        mark = comparison.mark(result.policy, metric) if comparison else ""
        return f"{result.metrics[metric]:.4f}{mark}"

    return [value(metric) for metric in columns]


def format_table(results: Sequence[EvalResult], comparison: Comparison | None = None) -> str:
    """A plain-text table: one row per result, one column per metric (union, in first-seen order), the
    format-valid rate of models, the failed count when any; ``comparison`` adds significance marks and
    their footnote. Per-group rows (e.g. SQL hardness) follow."""
    columns = _columns(results)
    show_format = any(r.format_ok is not None for r in results)
    show_failed = any(r.failures for r in results)
    header = (
        ["policy", *columns] + (["format_ok"] if show_format else []) + (["failed"] if show_failed else [])
    )
    rows = [header]
    for r in results:
        row = [r.policy, *_cells(r, columns, comparison)]
        if show_format:
            row.append("-" if r.format_ok is None else f"{r.format_ok:.3f}")
        if show_failed:
            row.append(str(len(r.failures)))
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
    if comparison is not None and comparison.tests:
        lines.append(comparison.footer())
    return "\n".join(lines)


def markdown_report(
    results: Sequence[EvalResult], comparison: Comparison | None = None, command: str | None = None
) -> str:
    """The results as Markdown: the table (with significance marks), the p-values against the baseline,
    per-group tables, and the command that produced them."""
    first = results[0]
    columns = _columns(results)
    show_format = any(r.format_ok is not None for r in results)
    lines = [f"# {first.task} / {first.split}", ""]
    if command:
        lines += ["Produced by:", "", "```bash", command, "```", ""]
    header = ["policy", *columns] + (["format-valid"] if show_format else []) + ["queries"]
    lines += [_md_row(header), _md_row(["---"] + ["---:"] * (len(header) - 1))]
    for r in results:
        row = [f"`{r.policy}`", *_cells(r, columns, comparison)]
        if show_format:
            row.append("–" if r.format_ok is None else f"{r.format_ok:.1%}")
        failed = f" ({len(r.failures)} failed)" if r.failures else ""
        lines.append(_md_row([*row, f"{len(r.per_query)}{failed}"]))
    if comparison is not None and comparison.tests:
        lines += [
            "",
            comparison.footer() + ".",
            "",
            f"Difference from `{comparison.baseline}` (p-value):",
            "",
        ]
        lines += [_md_row(["policy", *columns]), _md_row(["---"] + ["---:"] * len(columns))]
        for policy, tests in comparison.tests.items():
            cells = [
                f"{tests[m].delta:+.4f} (p={tests[m].p_value:.4f})" if m in tests else "-" for m in columns
            ]
            lines.append(_md_row([f"`{policy}`", *cells]))
    for r in results:
        if r.groups:
            lines += ["", f"`{r.policy}` by group:", "", _md_row(["group", "n", *columns])]
            lines.append(_md_row(["---"] + ["---:"] * (len(columns) + 1)))
            for group, values in r.groups.items():
                cells = [f"{values.get(c, 0):.4f}" for c in columns]
                lines.append(_md_row([group, str(int(values["count"])), *cells]))
    prompting = [
        f"`{r.policy}`: reasoning {'on' if r.reasoning else 'off'}, "
        f"{f'template {r.template}' if r.template else 'the task template'}, query mode {r.query_mode}"
        for r in results
        if r.format_ok is not None
    ]
    if prompting:
        lines += ["", "Prompting: " + "; ".join(prompting) + "."]
    return "\n".join(lines) + "\n"


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"
