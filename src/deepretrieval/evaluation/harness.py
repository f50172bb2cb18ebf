"""The evaluation harness: a fixed policy answers a task's split; the task's judge scores the answers.

Answers go through the same parse-and-guard path as in training (:class:`deepretrieval.answers.AnswerParser`),
so an answer that training would call malformed (e.g. over the length cap) retrieves nothing here either.
A model is prompted as ``prompting.resolve`` decides: explicit choices, else its policy card, else the
defaults.
A model's completions can be logged as they are generated (:class:`GenerationLog`), so an interrupted
evaluation resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from tqdm.auto import tqdm

from deepretrieval.answers import AnswerParser, Guards, judged_queries
from deepretrieval.config import PromptingConfig
from deepretrieval.generation_log import GenerationLog
from deepretrieval.policies.base import AnswerPolicy, CompletionPolicy, GenerationFailure, Policy
from deepretrieval.prompting import Prompting, QueryMode, check_query_mode, resolve
from deepretrieval.retrievers.base import Ranking
from deepretrieval.tasks.base import Example, Failure, Judgment, Outcome, Task

JUDGE_BATCH = 512
RUN_DEPTH = 1000
"""Documents kept per query for run files: TREC's submission depth. The judge may read deeper (an evidence
question 3,000 passages, a Boolean query its whole result set); SQuAD's 10,570 questions at 3,000 each
would be a 1.4 GB run file per policy, held in memory until written."""


@dataclass(frozen=True)
class Answered:
    """What a policy said for one example: the answer sent to the judge, and for a model its raw
    completion and the parser's verdict (``reason``, ``"ok"`` when well-formed; ``invalid_query`` with the
    judge's message in ``detail`` when the judge cannot read the query). ``failure`` is set when no
    completion could be had (the example is then neither judged nor counted). ``prompt`` is a model's
    input: the exact text for raw prompting (the seed's), else the chat messages the policy renders."""

    answer: str
    completion: str | None = None
    reason: str = "ok"
    failure: str | None = None
    detail: str = ""
    prompt: str | list[dict[str, str]] | None = None


@dataclass
class EvalResult:
    """Mean metrics, per-example values, optional per-group means, and what the policy answered.

    ``failures`` maps the examples that could not be scored (a generation or a search API that kept
    failing) to the reason; they are left out of the means and of ``format_ok``, and a metric over no
    judged example is ``None``, never 0. ``completions`` and ``reasons`` (the parser's verdict) are
    filled for models only, and ``prompting`` is how a model was prompted (None for a baseline);
    ``query_mode`` how the answers reached the judge. ``rankings`` holds the ranking each judged example
    was scored on, when the evaluation was asked to keep them (for TREC run files)."""

    task: str
    split: str
    policy: str
    metrics: dict[str, float | None]
    per_query: dict[str, dict[str, float]]
    groups: dict[str, dict[str, float]] = field(default_factory=dict)
    format_ok: float | None = None
    answers: dict[str, str] = field(default_factory=dict)
    completions: dict[str, str] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    invalid: dict[str, str] = field(default_factory=dict)
    prompts: dict[str, str | list[dict[str, str]]] = field(default_factory=dict)
    prompting: Prompting | None = None
    query_mode: QueryMode = "rewrite"
    failures: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    rankings: dict[str, Ranking] = field(default_factory=dict, repr=False)

    @property
    def failed_ids(self) -> list[str]:
        return list(self.failures)

    @property
    def judged(self) -> int:
        """How many examples the judge scored."""
        return len(self.per_query)

    @property
    def total(self) -> int:
        """How many examples were asked."""
        return len(self.answers)

    def to_json(self) -> dict:
        """The result as JSON-ready data, rankings left out."""
        return asdict(replace(self, rankings={}))


def _mean(outcomes: Sequence[Outcome], keys: Sequence[str]) -> dict[str, float | None]:
    """Mean of each key over the outcomes; ``None`` over no outcome (nothing was judged)."""
    if not outcomes:
        return dict.fromkeys(keys)
    return {key: sum(o.get(key, 0.0) for o in outcomes) / len(outcomes) for key in keys}


def answer(
    task: Task,
    policy: Policy,
    examples: Sequence[Example],
    *,
    split_examples: Sequence[Example] | None = None,
    prompting: Prompting | None,
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
    if prompting is None:
        raise TypeError(f"policy {policy.name} is a model: answer() needs its prompting")
    parse = AnswerParser(prompting, answer_key=task.answer_key, guards=guards)
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
        prompts = [task.messages(example, prompting) for example in batch]
        outputs = policy.complete(prompts, prompting)
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
        prompt = _input(prompting, task.messages(example, prompting))
        if isinstance(output, GenerationFailure):
            answered.append(Answered("", reason="generation_failed", failure=output.reason, prompt=prompt))
            continue
        parsed = parse(output)
        answered.append(Answered(parsed.answer, output, parsed.reason, prompt=prompt))
    return answered


def _input(prompting: Prompting, messages: list[dict[str, str]]) -> str | list[dict[str, str]]:
    """What a model is given: the exact text of a raw prompt, else the chat messages (rendered by the
    policy's own chat template)."""
    return prompting.render(None, messages) if prompting.rendering == "raw" else messages


def evaluate(
    task: Task,
    policy: Policy,
    split: str | None = None,
    *,
    prompting: PromptingConfig | None = None,
    guards: Guards | None = None,
    limit: int | None = None,
    batch_size: int = 64,
    group_by: str | None = "hardness",
    progress: bool = True,
    label: str | None = None,
    log_path: str | Path | None = None,
    keep_rankings: bool = False,
) -> EvalResult:
    """Run ``policy`` on ``split`` (default: the task's) and score every answer with the task's judge.

    ``prompting`` holds the explicit choices (see :func:`policy_prompting`). ``label`` names the result
    (default: the policy's name). ``log_path``: a model's completions are logged there and reused by a
    later call with the same policy, task, split, examples and prompts. ``keep_rankings``: the result
    holds the ranking behind each judged example (memory: an evidence task ranks 3,000 deep)."""
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
    prompted = policy_prompting(policy, task, prompting)
    query_mode = prompted.query_mode if prompted else answer_query_mode(policy, task, prompting)
    log = None
    if log_path is not None and isinstance(policy, CompletionPolicy):
        log = GenerationLog(log_path, _log_key(task, policy, split, prompted, examples))
    try:
        answered = answer(
            task,
            policy,
            examples,
            split_examples=split_examples,
            prompting=prompted,
            guards=guards,
            batch_size=batch_size,
            progress=progress,
            log=log,
            label=label,
        )
    finally:
        if log is not None:
            log.close()
    answered = refuse_unreadable(task, examples, answered, query_mode)
    failures = {ex.id: f"generation failed: {a.failure}" for ex, a in zip(examples, answered) if a.failure}
    to_judge = [(ex, a) for ex, a in zip(examples, answered) if a.failure is None]
    judgments = _judge(task, to_judge, query_mode, progress, keep_rankings)
    failures |= {
        ex.id: j.outcome.reason for (ex, _), j in zip(to_judge, judgments) if isinstance(j.outcome, Failure)
    }
    keys = list(task.metrics)
    judged = [
        (ex, j.outcome) for (ex, _), j in zip(to_judge, judgments) if not isinstance(j.outcome, Failure)
    ]
    is_model = isinstance(policy, CompletionPolicy)
    generated = [a for a in answered if a.failure is None]
    return EvalResult(
        task=task.name,
        split=split,
        policy=label or policy.name,
        metrics=_mean([o for _, o in judged], keys),
        per_query={ex.id: {k: o[k] for k in keys} for ex, o in judged},
        groups=_group_means(judged, keys, group_by),
        format_ok=sum(a.reason == "ok" for a in generated) / len(generated)
        if is_model and generated
        else None,
        answers={ex.id: a.answer for ex, a in zip(examples, answered)},
        completions={ex.id: a.completion for ex, a in zip(examples, answered) if a.completion is not None},
        reasons={ex.id: a.reason for ex, a in zip(examples, answered)} if is_model else {},
        invalid={ex.id: a.detail for ex, a in zip(examples, answered) if a.reason == "invalid_query"},
        prompts={ex.id: a.prompt for ex, a in zip(examples, answered) if a.prompt is not None},
        prompting=prompted,
        query_mode=query_mode,
        failures=failures,
        seconds=time.perf_counter() - started,
        rankings={ex.id: j.ranking for (ex, _), j in zip(to_judge, judgments) if j.ranking is not None},
    )


def refuse_unreadable(
    task: Task, examples: Sequence[Example], answered: list[Answered], mode: QueryMode
) -> list[Answered]:
    """Answers whose query the judge cannot read (``task.query_errors``: a Boolean query that does not
    parse) turned invalid, with the judge's message: they answer the empty string, as a malformed
    completion does, and are never judged as an empty result of a valid query."""
    readable = [i for i, a in enumerate(answered) if a.failure is None and a.reason == "ok"]
    queries = judged_queries([answered[i].answer for i in readable], [examples[i] for i in readable], mode)
    checked = list(answered)
    for i, error in zip(readable, task.query_errors(queries)):
        if error is not None:
            checked[i] = replace(answered[i], answer="", reason="invalid_query", detail=error)
    return checked


def _group_means(
    judged: Sequence[tuple[Example, Outcome]], keys: Sequence[str], group_by: str | None
) -> dict[str, dict[str, float | None]]:
    """Mean outcomes per value of ``example.meta[group_by]`` (e.g. SQL hardness), with their ``count``."""
    grouped: dict[str, list[Outcome]] = defaultdict(list)
    for example, outcome in judged:
        if group_by and group_by in example.meta:
            grouped[str(example.meta[group_by])].append(outcome)
    return {
        group: _mean(items, keys) | {"count": float(len(items))} for group, items in sorted(grouped.items())
    }


def policy_prompting(policy: Policy, task: Task, explicit: PromptingConfig | None = None) -> Prompting | None:
    """How a model is prompted on ``task``: ``explicit`` choices, else its card, else the defaults
    (``prompting.resolve``). None for a baseline, which writes its answers without a prompt."""
    if not isinstance(policy, CompletionPolicy):
        return None
    return resolve(explicit, policy.card.prompting if policy.card else None, task)


def answer_query_mode(policy: Policy, task: Task, explicit: PromptingConfig | None = None) -> QueryMode:
    """How a baseline's answers reach the judge: the explicit choice, else the baseline's own mode."""
    mode = explicit.query_mode if explicit is not None and explicit.query_mode else policy.query_mode
    check_query_mode(mode, task)
    return mode


def _judge(
    task: Task, items: Sequence[tuple[Example, Answered]], mode: QueryMode, progress: bool, keep: bool
) -> list[Judgment]:
    """The judge's verdict on every (example, answer), in batches of :data:`JUDGE_BATCH`; with ``keep``,
    each with the ranking behind it."""
    examples = [ex for ex, _ in items]
    queries = judged_queries([a.answer for _, a in items], examples, mode)
    judgments: list[Judgment] = []
    bar = tqdm(total=len(items), desc="judging", disable=not progress, unit="ex")
    for start in range(0, len(items), JUDGE_BATCH):
        batch = queries[start : start + JUDGE_BATCH], examples[start : start + JUDGE_BATCH]
        judgments += _top(task.judge(*batch)) if keep else [Judgment(o) for o in task.measure(*batch)]
        bar.update(min(JUDGE_BATCH, len(items) - start))
    bar.close()
    return judgments


def _top(judgments: list[Judgment]) -> list[Judgment]:
    """``judgments`` with their rankings cut to :data:`RUN_DEPTH` (the metrics were computed on the whole)."""
    return [
        replace(j, ranking=_first(j.ranking, RUN_DEPTH))
        if j.ranking is not None and len(j.ranking) > RUN_DEPTH
        else j
        for j in judgments
    ]


def _first(ranking: Ranking, n: int) -> Ranking:
    return Ranking(ranking.doc_ids[:n], ranking.scores[:n], total=ranking.total)


def _log_key(
    task: Task, policy: CompletionPolicy, split: str, prompting: Prompting, examples: Sequence[Example]
) -> dict:
    """What a policy's completions depend on: reused only when all of it is unchanged. The digest of the
    prompts themselves covers every task option that shapes them, which the prompting alone does not."""
    prompts = [task.messages(example, prompting) for example in examples]
    return {
        "policy": policy.fingerprint,
        "task": task.name,
        "data": task.fingerprint,
        "split": split,
        "prompting": prompting.to_json(),
        "prompts": hashlib.sha256(json.dumps(prompts, sort_keys=True).encode()).hexdigest()[:16],
    }
