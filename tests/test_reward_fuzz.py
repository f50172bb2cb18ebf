"""10,000+ generated malformed completions through the batch reward: all finite, none raises."""

from __future__ import annotations

import math
import random

from deepretrieval.prompting import Prompting
from deepretrieval.rewards import BatchReward, MetricReward

PIECES = [
    "<think>",
    "</think>",
    "<answer>",
    "</answer>",
    "<think",
    "answer>",
    "{",
    "}",
    '{"query": ',
    '"',
    "[",
    "]",
    "```json\n",
    "```",
    "\n",
    " ",
    "\x00",
    "\ud800",
    "é",
    "😀",
    "query",
    "vitamin",
    "OR",
    "AND",
    "(",
    ")",
    "null",
    "true",
    '{"sql": "x"}',
    "\\",
    "\u202e",
    "<|im_end|>",
    "<answer></answer>",
    "<think></think>",
]


def _generate(rng: random.Random) -> object:
    roll = rng.random()
    if roll < 0.02:
        return rng.randbytes(rng.randint(0, 64))  # arbitrary bytes, mostly not UTF-8
    if roll < 0.03:
        return rng.choice([None, 3, 2.5, ["<answer>q</answer>"], {"content": "x"}])
    if roll < 0.05:
        return (
            "<think>a</think><answer>"
            + rng.choice(["q ", "{", "[", "a OR "]) * rng.randint(1000, 60_000)
            + "</answer>"
        )
    parts = [rng.choice(PIECES) for _ in range(rng.randint(0, 40))]
    if rng.random() < 0.3:  # start from a valid completion and corrupt it
        parts = ["<think>x</think><answer>", "cell biology", "</answer>"] + parts
        rng.shuffle(parts)
    return "".join(parts)


def test_fuzzed_completions_get_finite_rewards(scifact_task) -> None:
    rng = random.Random(1234)
    reward = BatchReward(scifact_task, MetricReward(), prompting=Prompting("classic_ir", reasoning=True))
    examples = scifact_task.examples("train")
    total = 0
    reasons = set()
    for _ in range(20):
        completions = [_generate(rng) for _ in range(512)]
        batch = reward.score(completions, [rng.choice(examples) for _ in completions])
        assert len(batch.rewards) == len(completions)
        assert all(math.isfinite(r) for r in batch.rewards)
        reasons |= set(batch.reasons)
        total += len(completions)
    assert total >= 10_000
    # the generator really exercises many failure paths, and some valid ones
    assert {"ok", "not_utf8", "not_text", "no_answer", "repeated_tags"} <= reasons and len(reasons) >= 8
