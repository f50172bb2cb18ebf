"""Adapter from TRL's reward-function call to one ``BatchReward.score`` call per rollout batch."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import pstdev
from typing import Any

from deepretrieval.tasks.base import Example


@dataclass(frozen=True)
class Sample:
    """One scored completion: the example, what the user asked, the completion (prefill included), its
    reward (None: the judge could not score it) and the parser's verdict (``ok`` or what was wrong)."""

    example_id: str
    request: str
    completion: str
    reward: float | None
    format: str


def completion_text(completion: Any) -> str:
    """TRL passes plain strings for text prompts and ``[{"role": "assistant", "content": ...}]`` for chat."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):
        return str(completion[-1].get("content", ""))
    return str(completion)


def mean_group_std(rewards: Sequence[float | None], example_ids: Sequence[str]) -> float:
    """Mean over prompts of the reward std within each prompt's group of generations (0 = no signal);
    samples the judge could not score (``None``) are left out."""
    groups: dict[str, list[float]] = defaultdict(list)
    for reward, example_id in zip(rewards, example_ids):
        if reward is not None:
            groups[example_id].append(reward)
    stds = [pstdev(values) for values in groups.values() if len(values) > 1]
    return sum(stds) / len(stds) if stds else 0.0


class TRLBatchReward:
    """Callable with TRL's reward signature ``f(prompts, completions, completion_ids, **columns)``.

    Maps the ``example_id`` column back to :class:`Example` objects, prepends the assistant prefill the
    prompt ended with (so the parser sees the whole assistant turn), scores the batch with ONE
    ``BatchReward.score`` call and reports its summary through TRL's ``log_metric`` hook. A sample the
    judge could not score is returned as ``None``: TRL leaves it out of the group baseline and gives it
    no advantage, so a failing search API never teaches the policy anything.
    ``seconds`` accumulates the time spent scoring (for profiling); ``last_samples`` holds the batch scored
    last (for the sampled completions training shows).
    """

    def __init__(self, batch_reward: Any, examples: Sequence[Example], prefill: str = "") -> None:
        self.__name__ = "retrieval_reward"  # TRL names the logged reward after this
        self.batch_reward = batch_reward
        self.examples = {example.id: example for example in examples}
        self.prefill = prefill
        self.seconds = 0.0
        self.calls = 0
        self.last_samples: list[Sample] = []

    def __call__(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Any],
        completion_ids: Sequence[Any] | None = None,
        *,
        example_id: Sequence[str],
        log_metric: Callable[[str, float], None] | None = None,
        **_: Any,
    ) -> list[float | None]:
        start = time.perf_counter()
        try:
            examples = [self.examples[i] for i in example_id]
        except KeyError as exc:
            raise KeyError(f"reward got example_id {exc.args[0]!r} that is not in the training set") from None
        texts = [self.prefill + completion_text(c) for c in completions]
        batch = self.batch_reward.score(texts, examples)
        rewards = [None if r is None else float(r) for r in batch.rewards]
        self.last_samples = [
            Sample(example.id, example.original, text, reward, parsed.reason)
            for example, text, reward, parsed in zip(examples, texts, rewards, batch.parsed)
        ]
        if log_metric is not None:
            for name, value in batch.summary().items():
                log_metric(f"task/{name}", float(value))
            log_metric("task/reward_group_std", mean_group_std(rewards, example_id))
        self.seconds += time.perf_counter() - start
        self.calls += 1
        return rewards
