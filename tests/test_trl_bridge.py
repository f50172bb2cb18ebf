"""The bridge to TRL: every ``rl.*`` field reaches ``trl.GRPOConfig`` explicitly, and ``rl.trl`` passes any
other GRPOConfig argument through, validated against TRL's own fields."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from trl import GRPOConfig

from deepretrieval.config import ConfigError, RLConfig, parse_config
from deepretrieval.train.grpo import RL_HANDLED_HERE, RL_TO_TRL, grpo_args

# rl field -> (a value different from our default AND from TRL's default, {GRPOConfig attribute: expected})
NON_DEFAULTS: dict[str, tuple[object, dict[str, object]]] = {
    "num_generations": (4, {"num_generations": 4}),
    "temperature": (0.7, {"temperature": 0.7}),
    "top_p": (0.9, {"top_p": 0.9}),
    "max_completion_length": (33, {"max_completion_length": 33}),
    "learning_rate": (3e-5, {"learning_rate": 3e-5}),
    "lr_scheduler": ("cosine", {"lr_scheduler_type": "cosine"}),
    "warmup_steps": (7, {"warmup_steps": 7}),
    "beta": (0.04, {"beta": 0.04}),
    "max_steps": (11, {"max_steps": 11}),
    "epochs": (2.5, {"num_train_epochs": 2.5}),
    "per_device_train_batch_size": (16, {"per_device_train_batch_size": 16}),
    "gradient_accumulation_steps": (3, {"gradient_accumulation_steps": 3}),
    "num_iterations": (2, {"num_iterations": 2}),
    "max_grad_norm": (0.3, {"max_grad_norm": 0.3}),
    "precision": ("fp32", {"bf16": False, "fp16": False}),
    "gradient_checkpointing": (True, {"activation_checkpointing": True, "gradient_checkpointing": True}),
    "loss_type": ("dr_grpo", {"loss_type": "dr_grpo"}),
    "scale_rewards": ("none", {"scale_rewards": "none"}),
    "epsilon": (0.28, {"epsilon": 0.28}),
    "seed": (1234, {"seed": 1234, "data_seed": 1234}),
    "trl": ({"top_k": 17}, {"top_k": 17}),
}


def _args(tmp_path: Path, **rl: object) -> GRPOConfig:
    config = parse_config({"task": {"name": "demo"}, "logging": {"backend": "none"}, "rl": rl})
    return grpo_args(config, tmp_path, use_vllm=False)


def test_every_rl_field_is_mapped_or_handled_here() -> None:
    assert set(RL_TO_TRL) | set(RL_HANDLED_HERE) == set(RLConfig.model_fields)
    assert not set(RL_TO_TRL) & set(RL_HANDLED_HERE)
    assert set(NON_DEFAULTS) == set(RL_TO_TRL)
    trl_fields = {f.name for f in dataclasses.fields(GRPOConfig)}
    for target in RL_TO_TRL.values():
        if target != "(passed through)":
            assert set(target.split("/")) <= trl_fields, target


@pytest.mark.parametrize("field", sorted(NON_DEFAULTS))
def test_each_field_reaches_grpo_config(field: str, tmp_path: Path) -> None:
    value, expected = NON_DEFAULTS[field]
    extra = {"per_device_train_batch_size": 12} if field == "num_generations" else {}
    args = _args(tmp_path, **{field: value}, **extra)
    for attribute, wanted in expected.items():
        got = getattr(args, attribute)
        assert getattr(got, "value", got) == wanted, attribute


def test_our_false_defaults_are_sent_not_left_to_trl(tmp_path: Path) -> None:
    # TRL defaults gradient_checkpointing to True; ours is False and must arrive as False
    assert {f.name: f.default for f in dataclasses.fields(GRPOConfig)}["gradient_checkpointing"] is True
    args = _args(tmp_path)
    assert args.gradient_checkpointing is False and args.activation_checkpointing is False


def test_trl_passthrough_is_validated_by_trl(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"rl\.trl\.mask_truncated_completion: not an argument.*did you mean"
    ):
        _args(tmp_path, trl={"mask_truncated_completion": True})
    with pytest.raises(ConfigError, match=r"rl\.trl\.beta: set by rl\.beta"):
        _args(tmp_path, trl={"beta": 0.1})
    with pytest.raises(ConfigError, match="TRL rejected"):
        _args(tmp_path, trl={"generation_batch_size": 7})  # not a multiple of num_generations
    assert _args(tmp_path, trl={"mask_truncated_completions": True}).mask_truncated_completions is True
