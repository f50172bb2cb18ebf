"""The OpenAI-compatible chat endpoint says ``finish_reason: "length"`` when generation stopped at the
client's ``max_tokens``, and ``"stop"`` when the model ended its turn (a real uvicorn server, the tiny model)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from _serve_helpers import running
from _train_helpers import write_tiny_model
from deepretrieval.policies.card import PolicyCard
from deepretrieval.policies.hf import HFPolicy
from deepretrieval.prompting import Prompting
from deepretrieval.serve.rewrite import Rewriter, create_app

MESSAGES = [{"role": "user", "content": "Request: fever medicine"}]


def _policy(folder: Path, **biases: float | bool) -> HFPolicy:
    write_tiny_model(folder, **biases)
    PolicyCard(Prompting("classic_ir", reasoning=False), task="beir").write(folder)
    return HFPolicy(str(folder))


def _finish(policy: HFPolicy, max_tokens: int) -> tuple[str, str]:
    with running(create_app(Rewriter(policy), model_name="tiny")) as url:
        reply = httpx.post(
            f"{url}/v1/chat/completions", json={"messages": MESSAGES, "max_tokens": max_tokens}, timeout=60
        )
    assert reply.status_code == 200, reply.text
    choice = reply.json()["choices"][0]
    return choice["finish_reason"], choice["message"]["content"]


def test_a_completion_cut_at_max_tokens_finishes_with_length(tmp_path: Path) -> None:
    policy = _policy(tmp_path / "words", eos_bias=-50.0)  # never ends its turn on its own
    reason, content = _finish(policy, 3)
    assert reason == "length"
    assert len(policy.tokenizer(content, add_special_tokens=False)["input_ids"]) >= 3


def test_a_completion_that_ends_its_turn_finishes_with_stop(tmp_path: Path) -> None:
    policy = _policy(tmp_path / "stops", eos_bias=50.0)  # ends its turn at once
    assert _finish(policy, 8) == ("stop", "")


@pytest.mark.parametrize(
    "biases, max_new_tokens, capped",
    [
        ({"eos_bias": -50.0, "close_bias": -50.0}, 2, True),  # only words: runs to the cap
        ({"close_bias": 6.0, "stop_at_close": True}, 64, False),  # stops at </answer> long before
    ],
)
def test_the_policy_reports_each_completion_that_hit_the_cap(
    tmp_path: Path, biases: dict, max_new_tokens: int, capped: bool
) -> None:
    policy = _policy(tmp_path / "model", **biases)
    completions = policy.complete(
        [MESSAGES, MESSAGES], Prompting("classic_ir", max_new_tokens=max_new_tokens)
    )
    assert [c.truncated for c in completions] == [capped, capped]
