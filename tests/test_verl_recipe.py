"""The seed's recipe on verl: ``configs/verl/seed-*.yaml`` composed by verl's own Hydra config and checked
by its ``validate_config`` (PPO, GAE critic, the seed's hyperparameters), the pass-through chat template
feeding the seed's raw prompts unchanged, and our reward on rows in the seed's layout (our export's and the
seed's own files') equal to the TRL path's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from _seed_helpers import verl_row, write_seed_model, write_seed_parquet
from deepretrieval.cli import main
from deepretrieval.config import load_config
from deepretrieval.integrations import verl_reward
from deepretrieval.integrations.verl import compute_score, compute_score_batch
from deepretrieval.train.data import build_batch_reward, build_task
from test_seed_prompts import seed_scifact

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "verl"
RECIPES = ("seed-pubmed", "seed-nq", "seed-scifact", "seed-spider")
VERL_SITE = os.environ.get(
    "DEEPRETRIEVAL_VERL_SITE", str(Path(__file__).resolve().parents[1] / ".venv" / "verl-site")
)
COMPOSE = """
import json, sys
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from verl.trainer.ppo.utils import need_critic, need_reference_policy
from verl.utils.config import validate_config

job = json.loads(sys.argv[1])
out = {}
for name in job["recipes"]:
    with initialize_config_dir(config_dir=job["configs"], version_base=None):
        config = compose(config_name=name, overrides=job["overrides"])
    validate_config(config, use_reference_policy=need_reference_policy(config), use_critic=need_critic(config))
    out[name] = OmegaConf.to_container(config, resolve=True) | {"critic_used": need_critic(config)}
with initialize_config_dir(config_dir=job["configs"], version_base=None):
    seeds_own = compose(config_name="seed-scifact", overrides=job["overrides"] + ["actor_rollout_ref.actor.ppo_mini_batch_size=128"])
try:
    validate_config(seeds_own, use_reference_policy=True, use_critic=True)
    out["seeds_128"] = "accepted"
except (AssertionError, ValueError) as err:
    out["seeds_128"] = str(err)
print(json.dumps(out))
"""


def _hydra_importable() -> bool:
    probe = subprocess.run(
        [sys.executable, "-c", "import hydra, verl"],
        env={**os.environ, "PYTHONPATH": VERL_SITE},
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


@pytest.mark.skipif(
    not _hydra_importable(),
    reason=f"verl and hydra-core are not importable from {VERL_SITE} (see docs/verl.md)",
)
@pytest.mark.slow
def test_recipes_compose_and_validate_with_verls_own_config(tmp_path: Path) -> None:
    model = write_seed_model(tmp_path / "model")  # verl loads the model's config: a local one, offline
    job = {
        "configs": str(CONFIGS),
        "recipes": list(RECIPES),
        "overrides": [
            f"data.train_files={tmp_path}/train.parquet",
            f"data.val_files={tmp_path}/test.parquet",
            f"reward.custom_reward_function.path={tmp_path}/verl.py",
            f"actor_rollout_ref.model.path={model}",
        ],
    }
    run = subprocess.run(
        [sys.executable, "-c", COMPOSE, json.dumps(job)],
        env={**os.environ, "PYTHONPATH": VERL_SITE, "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    expected = {
        "seed-pubmed": (500, 500, 10, 1.0),
        "seed-nq": (256, 512, 5, 1.0),
        "seed-scifact": (256, 512, 100, 0.6),
        "seed-spider": (2048, 512, 5, 0.6),
    }
    for name, (prompt, response, epochs, temperature) in expected.items():
        config = out[name]
        algorithm, actor, rollout = (
            config["algorithm"],
            config["actor_rollout_ref"]["actor"],
            config["actor_rollout_ref"]["rollout"],
        )
        assert config["critic_used"] and algorithm["adv_estimator"] == "gae"
        assert (
            algorithm["use_kl_in_reward"]
            and algorithm["kl_ctrl"]["kl_coef"] == 0.001
            and not actor["use_kl_loss"]
        )
        assert actor["optim"]["lr"] == 1e-6 and config["critic"]["optim"]["lr"] == 1e-5
        assert actor["entropy_coeff"] == 0.001 and actor["clip_ratio"] == 0.2 and rollout["n"] == 1
        assert config["data"]["train_batch_size"] == 64 and config["critic"]["model"]["path"] == str(model)
        assert (config["data"]["max_prompt_length"], config["data"]["max_response_length"]) == (
            prompt,
            response,
        )
        assert config["trainer"]["total_epochs"] == epochs and rollout["temperature"] == temperature
        assert config["reward"]["custom_reward_function"]["name"] == "compute_score"
    assert "ppo_mini_batch_size" in out["seeds_128"]  # why the SciFact recipe uses 64 (see its comment)


def test_the_pass_through_template_feeds_the_seeds_raw_prompt(tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    template = yaml.safe_load((CONFIGS / "seed_ppo.yaml").read_text())["actor_rollout_ref"]["model"]
    tokenizer = AutoTokenizer.from_pretrained(write_seed_model(tmp_path / "model"))
    raw = seed_scifact("0-dimensional biomaterials show inductive properties.")
    messages = [{"role": "user", "content": raw}]
    kwargs = {"chat_template": template["custom_chat_template"], "add_generation_prompt": True}
    assert tokenizer.apply_chat_template(messages, tokenize=False, **kwargs) == raw
    ids = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, **kwargs)["input_ids"]
    assert list(ids) == tokenizer(raw, add_special_tokens=False)["input_ids"]  # as the seed's verl tokenised


COMPLETIONS = [
    'c</think>\n<answer>{"query": "%s"}</answer>',
    "c</think><answer>not json</answer>",
    "<think>twice</think><answer>{}</answer>",
]


def _samples(rows: list[dict], originals: list[str]) -> list[tuple]:
    return [
        (
            row["data_source"],
            completion % original if "%s" in completion else completion,
            row["reward_model"]["ground_truth"],
            row["extra_info"],
        )
        for row, original in zip(rows, originals)
        for completion in COMPLETIONS
    ]


def _trl_rewards(config_path: Path, samples: list[tuple], ids: list[str]) -> list[float]:
    config = load_config(config_path)
    from deepretrieval.prompting import run_prompting

    task = build_task(config)
    prompting = run_prompting(config, task)
    by_id = {e.id: e for split in task.splits for e in task.examples(split)}
    batch = build_batch_reward(config, task, prompting).score(
        [prompting.prefill + s[1] for s in samples], [by_id[i] for i in ids]
    )
    return [float(r) for r in batch.rewards]


def test_our_reward_on_the_seeds_layout(scifact_dir: Path, tmp_path: Path, monkeypatch) -> None:
    import pyarrow.parquet as pq

    monkeypatch.setenv("DEEPRETRIEVAL_CACHE", str(tmp_path / "cache"))
    verl_reward._judges.clear()
    exported = tmp_path / "seed" / "test.parquet"
    args = [
        "data",
        "export-verl",
        "--task",
        "beir",
        "--data",
        str(scifact_dir),
        "--split",
        "test",
        "--limit",
        "12",
    ]
    assert main([*args, "--recipe", "seed", "--prompting", "seed:scifact", "--out", str(exported)]) == 0
    rows = pq.read_table(exported).to_pylist()
    spec = json.loads(rows[0]["extra_info"]["deepretrieval"])
    corpus = str(scifact_dir.resolve())  # the export records resolved paths (../shared may be a link)
    assert spec["task"] == {"name": "parquet", "data": str(exported), "options": {"corpus": corpus}}
    samples = _samples(rows, [r["extra_info"]["original"] for r in rows])
    assert rows and all(r["data_source"] == "scifact_test" for r in rows)
    # the rows name their own spec (here the task's default reward); the seed's own files carry none and
    # are scored with the run config $DEEPRETRIEVAL_VERL_SPEC names (here the seed's reward), below
    batch = compute_score_batch(*zip(*samples))
    ids = [s[3]["example_id"] for s in samples]
    spec_config = tmp_path / "spec.yaml"
    spec_config.write_text(yaml.safe_dump(spec))
    assert [b["score"] for b in batch] == _trl_rewards(spec_config, samples, ids)

    seeds_own = write_seed_parquet(
        [
            {"query": r["extra_info"]["original"], "target": r["reward_model"]["ground_truth"]["target"]}
            for r in rows
        ],
        lambda r, i: verl_row(
            "scifact_test", seed_scifact(r["query"]), r["target"], "test", i, "literature_mining"
        ),
        tmp_path / "own" / "test.parquet",
    )
    own_rows = pq.read_table(seeds_own).to_pylist()
    own_config = tmp_path / "own.yaml"
    own_config.write_text(
        yaml.safe_dump(
            {
                "task": {"name": "parquet", "data": str(seeds_own), "options": {"corpus": str(scifact_dir)}},
                "reward": {"scheme": "seed"},
                "prompting": "seed:scifact",
            }
        )
    )
    monkeypatch.setenv(verl_reward.SPEC_ENV, str(own_config))
    own_samples = _samples(own_rows, [r["query"] for r in own_rows])
    scores = [compute_score(*s)["score"] for s in own_samples]
    own_ids = [f"scifact-test-{s[3]['index']}" for s in own_samples]
    expected = _trl_rewards(own_config, own_samples, own_ids)
    assert scores == expected
    assert set(expected[1::3]) == {-2.0} and set(expected[2::3]) == {-2.0}  # the seed's format penalty
    assert all(score == 0.0 or score > 0.1 for score in expected[0::3])  # gated: 0.1 + NDCG@50, or 0
