"""Reward schemes (the seed's tables as defaults) and the batch reward function the RL trainer calls.

A scheme turns one parsed completion and its measured outcome into a number. Two ways of adding the
format term exist in the original recipes and both are kept:

- ``combine="sum"``   (literature search, evidence seeking): ``format term + answer term``
- ``combine="gated"`` (classic IR, SQL): ``format bonus + answer`` when the answer scores above 0,
  ``0`` when the format is valid but the answer scores 0, the format penalty otherwise.

``reward.scheme: seed`` is the paper's own reward for the dataset of the seed prompting in use
(:data:`SEED_REWARDS`, from its ``verl/utils/reward_score/*.py``): its k, tiers and format rules, including
the answer term it gives a well-tagged completion whose answer is not usable JSON (``answer_errors``).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from deepretrieval.answers import AnswerParser, Guards, judged_queries, max_term_repeats, refuse_invalid
from deepretrieval.parsing import ParsedCompletion
from deepretrieval.prompting import Prompting, check, resolve
from deepretrieval.registry import Registry
from deepretrieval.tasks.base import Example, Failure, Outcome, Task
from deepretrieval.tasks.prompts import RawTemplate, prompt_template


class _Scheme(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    format_bonus: float
    format_penalty: float
    combine: Literal["sum", "gated"]
    answer_errors: dict[str, float] = {}
    """The answer term of a completion whose tags are valid but whose answer cannot be used, by the parser's
    reason (``empty_answer``, ``invalid_json``...); reasons not listed get the format penalty."""

    @property
    def reads(self) -> tuple[str, ...]:
        """The outcome keys the scheme reads (checked against the task's before a run starts)."""
        return (self.metric,)

    def answer_reward(self, outcome: Outcome) -> float:
        raise NotImplementedError

    def reward(self, parsed: ParsedCompletion, outcome: Outcome | None) -> float:
        """Total reward of one completion (``outcome`` is None when the format was invalid)."""
        if not parsed.format_ok and parsed.reason in self.answer_errors:
            return self._combine(self.answer_errors[parsed.reason])
        if not parsed.format_ok or outcome is None:
            return self.format_penalty
        return self._combine(self.answer_reward(outcome))

    def _combine(self, answer: float) -> float:
        if self.combine == "sum":
            return self.format_bonus + answer
        return self.format_bonus + answer if answer > 0 else 0.0


class RecallTiers(_Scheme):
    """Literature search (PubMed, ClinicalTrials.gov): recall@K mapped to tiers."""

    kind: Literal["recall_tiers"] = "recall_tiers"
    metric: str = "recall@3000"
    tiers: list[tuple[float, float]] = [
        (0.7, 5.0),
        (0.5, 4.0),
        (0.4, 3.0),
        (0.3, 1.0),
        (0.1, 0.5),
        (0.05, 0.1),
    ]
    below: float = -3.5
    format_bonus: float = 1.0
    format_penalty: float = -4.0
    combine: Literal["sum", "gated"] = "sum"

    @model_validator(mode="after")
    def _tiers_descending(self) -> RecallTiers:
        thresholds = [t for t, _ in self.tiers]
        if thresholds != sorted(thresholds, reverse=True):
            raise ValueError(f"tiers must be listed from the highest threshold down, got {thresholds}")
        return self

    def answer_reward(self, outcome: Outcome) -> float:
        value = outcome[self.metric]
        for threshold, reward in self.tiers:
            if value >= threshold:
                return reward
        return self.below


class RankTiers(_Scheme):
    """Evidence seeking (NQ, TriviaQA, SQuAD): rank of the first answer-containing passage mapped to tiers.

    Defaults are the seed's ``nq_serini.py`` / ``triviaqa.py``: rank <= 5 -> 5, <= 20 -> 4, <= 50 -> 2,
    <= 100 -> 1, <= 1000 -> 0.5, <= 3000 -> 0.1, else -3.5 (SQuAD's recipe: -2.5), format +1 / -4."""

    kind: Literal["rank_tiers"] = "rank_tiers"
    metric: str = "rank"
    tiers: list[tuple[int, float]] = [(5, 5.0), (20, 4.0), (50, 2.0), (100, 1.0), (1000, 0.5), (3000, 0.1)]
    miss: float = -3.5
    format_bonus: float = 1.0
    format_penalty: float = -4.0
    combine: Literal["sum", "gated"] = "sum"

    @model_validator(mode="after")
    def _tiers_ascending(self) -> RankTiers:
        ranks = [r for r, _ in self.tiers]
        if ranks != sorted(ranks):
            raise ValueError(f"tiers must be listed from the best (smallest) rank up, got {ranks}")
        return self

    def answer_reward(self, outcome: Outcome) -> float:
        rank = outcome[self.metric]  # 0 = no answer-containing passage retrieved
        for max_rank, reward in self.tiers:
            if 1 <= rank <= max_rank:
                return reward
        return self.miss


class MetricReward(_Scheme):
    """Classic IR (BEIR): a metric such as NDCG@10, scaled, plus a small format bonus."""

    kind: Literal["metric"] = "metric"
    metric: str = "ndcg@10"
    scale: float = 1.0
    format_bonus: float = 0.1
    format_penalty: float = -2.0
    combine: Literal["sum", "gated"] = "gated"

    def answer_reward(self, outcome: Outcome) -> float:
        return self.scale * outcome[self.metric]


class SetReward(_Scheme):
    """Literature search on an engine that lists every match (the local Boolean engine): the whole result
    set is judged, so that ORing every word of the title (recall near 1, thousands of documents) does not
    pay as recall@K would.

    A query that matches nothing gets ``no_results``; one that matches more than ``max_retrieved``
    documents (a screening load no reviewer would take; default the seed's K) gets ``over_broad``; any other
    ``recall * (1 + precision_weight * p)``, where ``p = clip(1 + log10(precision) / decades, 0, 1)``: 1 at
    precision 1, 0 at ``10**-decades``. Precision counts only in proportion to the recall found, so a
    narrow query that finds nothing earns nothing for being narrow, and a well-formed query that finds no
    included study earns 0, no more (no format bonus: a policy would otherwise settle on any query that
    matches something). With the defaults, on the 8 CLEF TAR
    2017 test reviews (mean): the experts' strategies 1.93, the title as typed -0.60 (five of the eight
    titles match nothing), the title's words ORed -1.5 (11,000 to 21,000 documents each).
    """

    kind: Literal["set"] = "set"
    metric: str = "set_recall"
    precision_weight: float = Field(2.0, ge=0)
    decades: float = Field(4.0, gt=0)
    no_results: float = -1.0
    max_retrieved: int = Field(3000, gt=0)
    over_broad: float = -1.5
    format_bonus: float = 0.0
    format_penalty: float = -2.0
    combine: Literal["sum", "gated"] = "sum"

    @property
    def reads(self) -> tuple[str, ...]:
        return ("set_recall", "set_precision", "retrieved")

    def answer_reward(self, outcome: Outcome) -> float:
        retrieved = outcome["retrieved"]
        if retrieved <= 0:
            return self.no_results
        if retrieved > self.max_retrieved:
            return self.over_broad
        precision = max(outcome["set_precision"], 10.0**-self.decades)
        scaled = min(max(1.0 + math.log10(precision) / self.decades, 0.0), 1.0)
        return outcome["set_recall"] * (1.0 + self.precision_weight * scaled)


class ExecutionReward(_Scheme):
    """SQL: execution match. Spider's values by default; BIRD's recipe uses ``wrong=0.3``."""

    kind: Literal["execution"] = "execution"
    metric: str = "ex"
    correct: float = 1.0
    wrong: float = 0.0
    error: float = 0.0
    format_bonus: float = 0.1
    format_penalty: float = -2.0
    combine: Literal["sum", "gated"] = "gated"

    def answer_reward(self, outcome: Outcome) -> float:
        if outcome.get(self.metric, 0.0) >= 1.0:
            return self.correct
        return self.wrong if outcome.get("executed", 0.0) >= 1.0 else self.error


SCHEMES: Registry[type[_Scheme]] = Registry(
    "reward scheme",
    {
        "recall_tiers": RecallTiers,
        "rank_tiers": RankTiers,
        "metric": MetricReward,
        "execution": ExecutionReward,
        "set": SetReward,
    },
)
"""Reward schemes by name (``reward.scheme`` in a run config); a new scheme is one class and one line."""


def make_scheme(kind: str, **overrides: object) -> _Scheme:
    """Build a scheme by name with config overrides (unknown keys raise a clear pydantic error)."""
    return SCHEMES.get(kind)(**overrides)


# The seed's answer terms for a well-tagged completion with an unusable answer: an empty answer is not
# searched (0); JSON that fails or lacks the key raises inside its try (-4; SQuAD's recipe -3).
_LITERATURE_ERRORS = {
    "empty_answer": 0.0,
    "invalid_json": -4.0,
    "json_missing_key": -4.0,
    "json_not_text": -4.0,
}
_SQUAD_ERRORS = {"empty_answer": 0.0, "invalid_json": -3.0, "json_missing_key": -3.0, "json_not_text": -3.0}
# BEIR and SQL check the JSON with the format (-2 when it fails); a non-text value passes that check, then
# fails in the search or the executor: answer <= 0, so the gated total is 0.
_GATED_ERRORS = {"json_not_text": 0.0}
_RECALL = {"kind": "recall_tiers", "metric": "recall@3000", "answer_errors": _LITERATURE_ERRORS}
_BEIR = {"kind": "metric", "format_bonus": 0.1, "format_penalty": -2.0, "answer_errors": _GATED_ERRORS}
SEED_REWARDS: dict[str, dict[str, object]] = {
    # reward_score/pubmed.py, ctgov.py: recall of the top 3,000 in tiers, format +1 / -4, summed
    "pubmed": _RECALL,
    "pubmed_32": _RECALL,
    "ctgov": _RECALL,
    "ctgov_32": _RECALL,
    # reward_score/nq_serini.py, triviaqa.py, squad.py: rank of the first answer-bearing passage in tiers
    "nq": {"kind": "rank_tiers", "answer_errors": _LITERATURE_ERRORS},
    "triviaqa": {"kind": "rank_tiers", "answer_errors": _LITERATURE_ERRORS},
    "squad": {"kind": "rank_tiers", "miss": -2.5, "answer_errors": _SQUAD_ERRORS},
    # reward_score/scifact.py: one row per (claim, document): binary NDCG@50 of that document in training
    # (@10 on the test / val rows), format +0.1 / -2, gated
    "scifact": _BEIR | {"metric": "seed_pair_ndcg@50"},
    # fever.py, nfcorpus.py, fiqa.py, msmarco_beir.py: NDCG@1000 of the query's graded documents; hotpotqa.py @3000
    "fever": _BEIR | {"metric": "ndcg@1000"},
    "nfcorpus": _BEIR | {"metric": "ndcg@1000"},
    "fiqa": _BEIR | {"metric": "ndcg@1000"},
    "msmarco_beir": _BEIR | {"metric": "ndcg@1000"},
    "hotpotqa": _BEIR | {"metric": "ndcg@3000"},
    # reward_score_dense/*.py: @1000 in training; SciFact per pair again
    "scifact_dense": _BEIR | {"metric": "seed_pair_ndcg@1000"},
    "fever_dense": _BEIR | {"metric": "ndcg@1000"},
    "hotpotqa_dense": _BEIR | {"metric": "ndcg@1000"},
    "nfcorpus_dense": _BEIR | {"metric": "ndcg@1000"},
    "msmarco_beir_dense": _BEIR | {"metric": "ndcg@1000"},
    # spider.py: execution match 1 / 0, format +0.1 / -2, gated; bird.py gives 0.3 to SQL that runs but is wrong
    "spider": {"kind": "execution", "wrong": 0.0, "answer_errors": _GATED_ERRORS},
    "bird": {"kind": "execution", "wrong": 0.3, "answer_errors": _GATED_ERRORS},
}
"""The paper's reward per seed dataset (``reward.scheme: seed``), as scheme fields."""
SEED_SCHEME = "seed"


def seed_dataset(prompting: Prompting | None) -> str | None:
    """The seed dataset whose template ``prompting`` uses (None for our own templates)."""
    template = prompt_template(prompting.template) if prompting is not None else None
    return template.seed.name if isinstance(template, RawTemplate) else None


def task_scheme(
    task: Task, kind: str | None = None, *, prompting: Prompting | None = None, **overrides: object
) -> _Scheme:
    """The scheme a run uses: the task's own (its ``default_reward`` data) unless ``kind`` names another;
    ``overrides`` change single fields. Naming the task's own kind keeps its defaults (e.g. SQuAD's miss).
    ``seed`` is the paper's reward for the dataset of the seed prompting (``prompting``) in use."""
    default = dict(task.default_reward)
    if kind == SEED_SCHEME:
        dataset = seed_dataset(prompting)
        if dataset is None:
            raise ValueError(
                "reward.scheme seed is the paper's reward of one of its datasets: prompt with that "
                "dataset's seed prompting (prompting.preset seed:<dataset>) so it knows which"
            )
        base = dict(SEED_REWARDS[dataset])
    else:
        base = default if kind in (None, default["kind"]) else {"kind": kind}
    return make_scheme(**{**base, **overrides})


@dataclass
class RewardBatch:
    """Rewards of one rollout batch with what produced them."""

    rewards: list[float | None]
    parsed: list[ParsedCompletion]
    outcomes: list[Outcome | None]
    metric: str
    reasons: Counter = field(default_factory=Counter)
    failures: list[Failure | None] = field(default_factory=list)

    @property
    def failed(self) -> list[bool]:
        """Samples that could not be judged (the judge failed, not the answer): their reward is ``None``,
        so the trainer leaves them out of the update instead of scoring them as bad answers; ``failures``
        holds why (None for the others)."""
        return [reward is None for reward in self.rewards]

    def summary(self) -> dict[str, float]:
        """Batch means over the judged samples for logging. Malformed completions count as 0 for the task
        metric; lengths are in whitespace-separated words; ``unique_queries`` is distinct well-formed
        answers / completions; ``judge_failed`` the share of samples the judge could not score."""
        judged = [i for i, reward in enumerate(self.rewards) if reward is not None]
        n = max(len(judged), 1)
        total = max(len(self.rewards), 1)
        return {
            "reward": sum(self.rewards[i] for i in judged) / n,  # type: ignore[misc]
            "format_ok": sum(self.parsed[i].format_ok for i in judged) / n,
            self.metric: sum((self.outcomes[i] or {}).get(self.metric, 0.0) for i in judged) / n,
            "think_len": sum(len(p.think.split()) for p in self.parsed) / total,
            "query_len": sum(len(p.answer.split()) for p in self.parsed) / total,
            "unique_queries": len({p.answer for p in self.parsed if p.format_ok}) / total,
            "judge_failed": (len(self.rewards) - len(judged)) / total,
        }


class BatchReward:
    """The reward function of training: a whole rollout batch in, one reward per completion out.

    Parses every completion as ``prompting`` says (:class:`~deepretrieval.answers.AnswerParser`; default:
    the task's template without reasoning), applies the guards, and judges each distinct well-formed
    (answer, example) pair once, all in ONE batched ``task.measure`` call (the task's retriever caches).
    Never raises on completion text. A sample the judge could not score (``task.measure`` gave a
    :class:`~deepretrieval.tasks.base.Failure`: a search API that kept failing) gets reward ``None``, never
    the malformed penalty; ``outcomes`` holds ``None`` for it and ``failures`` the cause.
    """

    def __init__(
        self,
        task: Task,
        scheme: _Scheme,
        *,
        prompting: Prompting | None = None,
        guards: Guards | None = None,
    ):
        prompting = prompting or resolve(None, None, task)
        check(prompting, task)
        unread = [key for key in scheme.reads if key not in task.outcome_keys]
        if unread:
            raise ValueError(
                f"reward scheme {scheme.kind!r} reads {unread[0]!r} but task {task.name!r} measures "
                f"{', '.join(sorted(task.outcome_keys))}; pick one of those (reward.overrides.metric) "
                "or add it to the task's metrics"
            )
        self.task = task
        self.scheme = scheme
        self.parse = AnswerParser(prompting, answer_key=task.answer_key, guards=guards)
        self.guards = self.parse.guards
        self.query_mode = prompting.query_mode

    def score(self, completions: Sequence[object], examples: Sequence[Example]) -> RewardBatch:
        if len(completions) != len(examples):
            raise ValueError(f"{len(completions)} completions but {len(examples)} examples")
        parsed = [self.parse(c) for c in completions]
        valid = [i for i, p in enumerate(parsed) if p.format_ok]
        if valid:
            # a query the judge cannot read is an invalid answer (format penalty), never an empty result
            queries = judged_queries(
                [parsed[i].answer for i in valid], [examples[i] for i in valid], self.query_mode
            )
            for i, error in zip(valid, self.task.query_errors(queries)):
                parsed[i] = refuse_invalid(parsed[i], error)
            valid = [i for i in valid if parsed[i].format_ok]
        outcomes: list[Outcome | None] = [None] * len(parsed)
        failures: list[Failure | None] = [None] * len(parsed)
        # a group's samples repeat each other: each distinct (answer, example) pair is judged once
        pairs = {(parsed[i].answer, examples[i].id): i for i in valid}
        if pairs:
            firsts = list(pairs.values())
            pair_examples = [examples[i] for i in firsts]
            queries = judged_queries([parsed[i].answer for i in firsts], pair_examples, self.query_mode)
            measured = dict(zip(pairs, self.task.measure(queries, pair_examples)))
            for i in valid:
                outcome = measured[(parsed[i].answer, examples[i].id)]
                if isinstance(outcome, Failure):
                    failures[i] = outcome
                else:
                    outcomes[i] = outcome
        distinct = list({parsed[i].answer: None for i in valid})
        repeats = dict(zip(distinct, map(max_term_repeats, self.task.analyze_many(distinct))))
        rewards: list[float | None] = []
        for p, outcome, failure in zip(parsed, outcomes, failures):
            if failure is not None:
                rewards.append(None)
                continue
            reward = self.scheme.reward(p, outcome)
            if p.format_ok and repeats[p.answer] > self.guards.max_term_repeats:
                reward += self.guards.repetition_penalty
            rewards.append(reward if math.isfinite(reward) else self.scheme.format_penalty)
        return RewardBatch(
            rewards=rewards,
            parsed=parsed,
            outcomes=outcomes,
            metric=self.task.primary_metric,
            reasons=Counter(p.reason for p in parsed),
            failures=failures,
        )
