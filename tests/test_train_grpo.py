"""GRPO training for real on a tiny random-init Llama and a tiny real BM25 index (seconds per test)."""

from __future__ import annotations

import json
import os
import signal
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainerCallback

from _index_helpers import task_index
from _train_helpers import tiny_run_config, write_tiny_beir, write_tiny_model
from deepretrieval.config import ConfigError, RetrieverConfig, load_config, parse_config
from deepretrieval.policies.card import PolicyCard
from deepretrieval.policies.hf import HFPolicy
from deepretrieval.prompting import Prompting
from deepretrieval.report import plot_run
from deepretrieval.rewards import BatchReward, task_scheme
from deepretrieval.tasks import load_task
from deepretrieval.train.grpo import build_trainer, train
from deepretrieval.train.rewards_adapter import TRLBatchReward


@pytest.fixture(scope="module")
def pieces(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("grpo")
    return write_tiny_beir(root / "beir"), write_tiny_model(root / "model")


def _steps_logged(run_dir: Path) -> list[int]:
    lines = (run_dir / "logs" / "metrics.jsonl").read_text().splitlines()
    return [record["step"] for record in map(json.loads, lines) if "loss" in record]


def test_a_grpo_step_changes_the_weights_and_logs_the_task_metrics(pieces, tmp_path):
    data, model = pieces
    config = parse_config(tiny_run_config(data, model, tmp_path / "run", max_steps=1))
    run_dir = train(config)

    before, after = load_file(model / "model.safetensors"), load_file(run_dir / "final" / "model.safetensors")
    changed = [name for name in before if not torch.equal(before[name], after[name])]
    assert changed, "one GRPO step with a non-zero reward spread must move some weights"

    record = json.loads((run_dir / "logs" / "metrics.jsonl").read_text().splitlines()[0])
    for key in (
        "reward",
        "task/ndcg@10",
        "task/format_ok",
        "task/think_len",
        "task/query_len",
        "task/reward_group_std",
        "time/generation_s",
        "time/reward_s",
    ):
        assert key in record, key
    assert record["task/reward_group_std"] > 0
    assert list((run_dir / "logs").glob("events.out.tfevents.*")), "TensorBoard is the default logger"
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["seed"] == 0 and manifest["judge_fingerprint"] and manifest["packages"]["trl"]
    assert load_config(run_dir / "config.yaml") == config
    card = PolicyCard.read(run_dir / "final")
    prompting = Prompting("classic_ir", reasoning=False, prefill="<answer>", max_new_tokens=8)
    assert card == PolicyCard(prompting, task="beir", base_model=str(model))
    assert PolicyCard.read(run_dir / "checkpoints" / "checkpoint-1") == card
    assert plot_run(run_dir).read_bytes().startswith(b"\x89PNG")

    policy = HFPolicy(str(run_dir / "final"))
    assert policy.card == card
    rendered = card.prompting.render(policy.tokenizer, [{"role": "user", "content": "fever"}])
    assert rendered.endswith("<|im_start|>assistant\n<answer>")
    [completion] = policy.complete([[{"role": "user", "content": "fever"}]], card.prompting)
    assert completion.startswith("<answer>")


@pytest.mark.parametrize("shared", [True, False])
def test_generation_prefills_each_distinct_prompt_once_when_shared(pieces, tmp_path, shared):
    """rl.share_prompt_forward reaches generation: a training step's first forward is the prefill of the
    step's 2 distinct prompts (TRL alone prefills all 8 rows), then every row decodes from its cache."""
    data, model = pieces
    raw = tiny_run_config(data, model, tmp_path / "run", max_steps=1)
    raw["rl"]["share_prompt_forward"] = shared
    config = parse_config(raw)
    trainer = build_trainer(config, tmp_path / "run")[0]
    seen: list[tuple[int, ...]] = []
    embed = trainer.model.get_input_embeddings()
    hook = embed.register_forward_hook(lambda _, args, __: seen.append(tuple(args[0].shape)))
    try:
        trainer.train()
    finally:
        hook.remove()
    rows, prompts = 8, 2
    assert seen[0][0] == (prompts if shared else rows)
    assert seen[1] == (rows, 1)


def test_the_trl_adapter_scores_the_whole_batch_with_the_real_batch_reward(pieces, tmp_path):
    data, _ = pieces
    task = load_task(
        "beir",
        data,
        retriever=RetrieverConfig(index=task_index("beir", data, tmp_path / "index")),
        metrics=["ndcg@10"],
    )
    adapter = TRLBatchReward(BatchReward(task, task_scheme(task)), task.examples("train"), "<answer>")
    logged: dict[str, float] = {}
    completions = [
        [
            {"role": "assistant", "content": " pyrexia fever </answer>"}
        ],  # chat-style completion, relevant doc first
        " notebook </answer>",  # well-formed, retrieves only an irrelevant document
        " no closing tag",
    ]
    rewards = adapter(
        ["p"] * 3, completions, None, example_id=["q1", "q1", "q1"], log_metric=logged.__setitem__
    )
    assert rewards[0] == pytest.approx(0.1 + 1.0) and rewards[1] == 0.0 and rewards[2] == -2.0
    assert logged["task/format_ok"] == pytest.approx(2 / 3) and logged["task/reward_group_std"] > 0
    assert adapter.calls == 1
    with pytest.raises(KeyError, match="not in the training set"):
        adapter(["p"], [" x </answer>"], None, example_id=["q5"])


def test_resume_continues_the_step_count(pieces, tmp_path):
    data, model = pieces
    raw = tiny_run_config(data, model, tmp_path / "run", max_steps=2)
    run_dir = train(parse_config(raw))
    assert _steps_logged(run_dir) == [1, 2]

    with pytest.raises(FileExistsError, match="--resume"):
        train(parse_config(raw))
    raw["rl"]["max_steps"] = 3
    train(parse_config(raw), resume=True)
    assert _steps_logged(run_dir) == [1, 2, 3]
    state = json.loads((run_dir / "checkpoints" / "checkpoint-3" / "trainer_state.json").read_text())
    assert state["global_step"] == 3


class _InterruptAt(TrainerCallback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_begin(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_saves_a_checkpoint_then_stops(pieces, tmp_path, python_sigint):
    data, model = pieces
    raw = tiny_run_config(data, model, tmp_path / "run", max_steps=5)
    raw["checkpointing"]["save_steps"] = 100
    with pytest.raises(KeyboardInterrupt):
        train(parse_config(raw), callbacks=[_InterruptAt(1)])
    assert [p.name for p in (tmp_path / "run" / "checkpoints").glob("checkpoint-*")] == ["checkpoint-2"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_invalid_config_names_the_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("task: {name: demo}\nrl:\n  num_generatons: 4\n  learning_rate: fast\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert "rl.num_generatons: unknown key (did you mean num_generations?)" in message
    assert "rl.learning_rate:" in message and "'fast'" in message


def test_lora_training_merges_into_a_plain_model_on_request(pieces, tmp_path):
    data, model = pieces
    raw = tiny_run_config(
        data, model, tmp_path / "run", max_steps=1, lora={"r": 4, "alpha": 8, "merge": True}
    )
    run_dir = train(parse_config(raw))
    final = load_file(run_dir / "final" / "model.safetensors")
    assert not any("lora" in name for name in final), "merged weights carry no adapter tensors"
    base = load_file(model / "model.safetensors")
    assert any(not torch.equal(base[name], final[name]) for name in base if name in final)


def test_an_unmerged_lora_policy_loads_over_its_base_model(pieces, tmp_path):
    data, model = pieces
    raw = tiny_run_config(data, model, tmp_path / "run", max_steps=1, lora={"r": 4, "alpha": 8})
    final = train(parse_config(raw)) / "final"
    assert (final / "adapter_config.json").is_file()
    policy = HFPolicy(str(final))
    assert policy.model_path == str(model) and policy.card.prompting.prefill == "<answer>"
    prompting = replace(policy.card.prompting, max_new_tokens=3)
    assert policy.complete([[{"role": "user", "content": "fever"}]], prompting)[0].startswith("<answer>")


def test_train_cli_refuses_an_output_dir_with_checkpoints_in_one_line(pieces, tmp_path):
    import subprocess
    import sys

    import yaml

    data, model = pieces
    run = tmp_path / "run"
    train(parse_config(tiny_run_config(data, model, run, max_steps=1)))
    config = tmp_path / "again.yaml"
    config.write_text(yaml.safe_dump(tiny_run_config(data, model, run, max_steps=1)))
    proc = subprocess.run(
        [sys.executable, "-m", "deepretrieval.cli", "train", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert [line for line in proc.stderr.splitlines() if line.startswith("error:")] == [
        f"error: {run} already holds checkpoints: pass --resume, or choose another output_dir"
    ]


@pytest.mark.parametrize("inside", [False, True])
def test_an_output_dir_that_is_a_file_is_one_line_before_any_work(pieces, tmp_path, inside):
    """It was a raw ``[Errno 17] File exists`` after the model and trainer were built."""
    import subprocess
    import sys

    import yaml

    data, model = pieces
    blocker = tmp_path / "taken"
    blocker.write_text("not a folder")
    run = blocker / "run" if inside else blocker
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(tiny_run_config(data, model, run, build_index=False, max_steps=1)))
    proc = subprocess.run(
        [sys.executable, "-m", "deepretrieval.cli", "train", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    where = f"is inside {blocker}, which is a file" if inside else "is a file"
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "Errno" not in proc.stderr
    assert [line for line in proc.stderr.splitlines() if line.startswith("error:")] == [
        f"error: output_dir {run} {where}; give a folder for the run (checkpoints, config, final policy)"
    ]
    assert not (tmp_path / "index").exists()  # nothing was built
