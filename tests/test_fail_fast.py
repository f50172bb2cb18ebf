"""Commands check their arguments before heavy work: a training run whose final evaluation could only fail
after training refuses to start, and ``serve`` refuses a bad port before it loads an index or a model."""

from __future__ import annotations

from pathlib import Path

import pytest

from _train_helpers import tiny_run_config, write_tiny_beir, write_tiny_model
from deepretrieval.cli import main
from deepretrieval.config import ConfigError, parse_config
from deepretrieval.train.grpo import train


@pytest.fixture(scope="module")
def pieces(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("fail-fast")
    return write_tiny_beir(root / "beir"), write_tiny_model(root / "model")


@pytest.mark.parametrize(
    "change, message",
    [
        ({"eval": {"baseline": "untrained"}}, "eval.baseline 'untrained' is not evaluated after training"),
        ({"task": {"eval_split": "dev"}}, "task.eval_split: beir has no split 'dev' (it has test, train)"),
        ({"eval": {"policies": ["original", "/no/such/model"]}}, "/no/such/model"),
    ],
)
def test_a_final_evaluation_that_cannot_run_stops_training_before_it_starts(
    pieces, tmp_path: Path, change: dict, message: str
) -> None:
    raw = tiny_run_config(*pieces, tmp_path / "run", max_steps=1)
    for section, values in change.items():
        raw[section] = {**raw.get(section, {}), **values}
    with pytest.raises(
        (ConfigError, FileNotFoundError, OSError, ValueError),
        match=message.replace("(", r"\(").replace(")", r"\)"),
    ):
        train(parse_config(raw))
    assert not (tmp_path / "run" / "logs" / "metrics.jsonl").exists()  # not one step was trained
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_serve_refuses_a_bad_port_before_loading_anything(tmp_path: Path, capsys) -> None:
    # the model folder does not exist: an error about it would mean the model was looked for first
    assert main(["serve", "--model", str(tmp_path / "absent"), "--port", "70000"]) == 2
    assert capsys.readouterr().err == "error: --port must be 0..65535, got 70000\n"
    assert main(["serve", "--model", str(tmp_path / "absent"), "--index", "x=a", "--index", "bad"]) == 2
    assert "--index expects NAME=DIR, got 'bad'" in capsys.readouterr().err  # before index x is opened
