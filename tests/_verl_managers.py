"""Run deepretrieval's verl reward through verl's OWN code, in a process that can import verl (verl pins
libraries that conflict with TRL's, so it is never imported by the test process itself).

    python tests/_verl_managers.py JOB.json      (with verl and src/ on PYTHONPATH)

JOB names the exported parquet, the completions with the parquet row each answers, a tokenizer folder, the
reward file (``integrations/verl.py``) and the output file. The script reads the parquet with verl's
``RLHFDataset``, builds a ``DataProto`` as a rollout would (chat-templated prompt ids, response ids ending
with EOS, the attention mask), loads the reward function with verl's ``get_custom_reward_fn`` (the
``custom_reward_function.path/name`` mechanism), and scores the batch with the legacy
``BatchRewardManager`` and ``NaiveRewardManager`` and with the reward loop's ``RewardLoopWorker`` (the
default path of verl >= 0.7). It writes each manager's reward per sample, read where verl puts it.
"""

from __future__ import annotations

import json
import sys
import tempfile

import numpy as np
import torch
from omegaconf import OmegaConf
from transformers import AutoTokenizer
from verl import DataProto
from verl.experimental.reward_loop.reward_loop import RewardLoopWorker
from verl.trainer.ppo.reward import get_custom_reward_fn
from verl.utils.dataset.rl_dataset import RLHFDataset
from verl.workers.reward_manager import BatchRewardManager, NaiveRewardManager


def reward_config(job: dict, name: str) -> OmegaConf:
    return OmegaConf.create(
        {
            "actor_rollout_ref": {"model": {"path": job["tokenizer"], "tokenizer_path": None}},
            "reward": {
                "custom_reward_function": {"path": job["reward_file"], "name": name, "reward_kwargs": {}},
                "reward_manager": {
                    "source": "register",
                    "name": "naive",
                    "module": {"path": None, "name": "x"},
                },
                "reward_model": {"enable": False, "model_path": None},
                "sandbox_fusion": None,
            },
        }
    )


def rollout_batch(job: dict, tokenizer, rows: list[dict]) -> tuple[DataProto, list[int]]:
    """The DataProto a rollout of ``job``'s completions would give the reward."""
    prompts = [
        tokenizer.apply_chat_template(rows[r]["raw_prompt"], add_generation_prompt=True)["input_ids"]
        for r in job["rows"]
    ]
    responses = [
        tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        for text in job["completions"]
    ]
    width_p, width_r, pad = max(map(len, prompts)), max(map(len, responses)), tokenizer.pad_token_id
    prompt_ids = torch.tensor([[pad] * (width_p - len(p)) + p for p in prompts])
    response_ids = torch.tensor([r + [pad] * (width_r - len(r)) for r in responses])
    mask = torch.tensor(
        [
            [0] * (width_p - len(p)) + [1] * len(p) + [1] * len(r) + [0] * (width_r - len(r))
            for p, r in zip(prompts, responses)
        ]
    )
    picked = [rows[r] for r in job["rows"]]
    data = DataProto.from_dict(
        tensors={
            "prompts": prompt_ids,
            "responses": response_ids,
            "input_ids": torch.cat([prompt_ids, response_ids], dim=1),
            "attention_mask": mask,
        },
        non_tensors={
            "data_source": np.array([row["data_source"] for row in picked], dtype=object),
            "reward_model": np.array([row["reward_model"] for row in picked], dtype=object),
            "extra_info": np.array([dict(row["extra_info"]) for row in picked], dtype=object),
        },
    )
    return data, [len(r) for r in responses]


def main(job_file: str) -> None:
    with open(job_file) as handle:
        job = json.load(handle)
    tokenizer = AutoTokenizer.from_pretrained(job["tokenizer"])
    with tempfile.TemporaryDirectory() as cache:
        dataset = RLHFDataset(
            job["parquet"],
            tokenizer,
            OmegaConf.create({"cache_dir": cache, "max_prompt_length": 4096}),
            max_samples=-1,
        )
        rows = [dataset[i] for i in range(len(dataset))]
    data, lengths = rollout_batch(job, tokenizer, rows)
    out: dict = {"raw_prompts": [list(map(dict, rows[r]["raw_prompt"])) for r in sorted(set(job["rows"]))]}

    batch = BatchRewardManager(tokenizer, 0, get_custom_reward_fn(reward_config(job, "compute_score_batch")))
    tensor = batch(data, return_dict=True)["reward_tensor"]
    out["batch"] = [tensor[i, n - 1].item() for i, n in enumerate(lengths)]

    naive = NaiveRewardManager(tokenizer, 0, get_custom_reward_fn(reward_config(job, "compute_score")))
    answer = naive(data, return_dict=True)
    out["naive"] = [answer["reward_tensor"][i, n - 1].item() for i, n in enumerate(lengths)]
    out["naive_extra_keys"] = sorted(answer["reward_extra_info"])

    worker = RewardLoopWorker(reward_config(job, "compute_score"))
    scored = worker.loop.run_until_complete(worker.compute_score_batch(data))
    out["reward_loop"] = [item["reward_score"] for item in scored]
    out["reward_loop_metric"] = [item["reward_extra_info"]["metric"] for item in scored]
    with open(job["out"], "w") as handle:
        json.dump(out, handle)


if __name__ == "__main__":
    main(sys.argv[1])
