"""The distributed path: two CPU processes (gloo) run one real GRPO step together."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import yaml

from _train_helpers import tiny_run_config, write_tiny_beir, write_tiny_model


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_two_processes_complete_one_step(tmp_path):
    data, model = write_tiny_beir(tmp_path / "beir"), write_tiny_model(tmp_path / "model")
    run_dir = tmp_path / "run"
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(tiny_run_config(data, model, run_dir, max_steps=1)))
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        str(_free_port()),
        "-m",
        "deepretrieval.cli",
        "train",
        str(config),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(command, check=False, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]

    assert json.loads((run_dir / "manifest.json").read_text())["world_size"] == 2
    steps = [json.loads(line) for line in (run_dir / "logs" / "metrics.jsonl").read_text().splitlines()]
    assert [s["step"] for s in steps if "loss" in s] == [1]  # logged once, by the main process
    assert (run_dir / "final" / "model.safetensors").is_file()
