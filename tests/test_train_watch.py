"""``train`` is watchable: a header (model, examples, steps, output folder, one prompt as the model sees it),
a few sampled completions with their rewards every N steps (console, logs/samples.jsonl, TensorBoard), how
training ended (``training.json``: steps done and planned, why it stopped), and an evaluation of the final
policy on the eval split written into the run folder. Real GRPO on the tiny model and BM25 index."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from _train_helpers import tiny_run_config, write_tiny_beir, write_tiny_model
from deepretrieval.cli import main
from deepretrieval.config import parse_config
from deepretrieval.rewards import BatchReward, task_scheme
from deepretrieval.tasks import load_task
from deepretrieval.train.grpo import train
from deepretrieval.train.summary import TrainingSummary


@pytest.fixture(scope="module")
def pieces(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("watch")
    return write_tiny_beir(root / "beir"), write_tiny_model(root / "model")


def _config(pieces, out: Path, **rl):
    raw = tiny_run_config(*pieces, out, **rl)
    raw["logging"] |= {"samples": 2, "samples_every": 1}
    return raw


def test_a_run_shows_its_header_samples_ending_and_final_evaluation(pieces, tmp_path, capsys) -> None:
    data, model = pieces
    run_dir = train(parse_config(_config(pieces, tmp_path / "run", max_steps=2)))
    captured = capsys.readouterr()

    header = captured.err
    assert f"GRPO training of {model} on beir (train: 4 examples)" in header
    assert "steps planned: 2 (2 prompts x 4 samples a step)" in header
    assert f"output: {run_dir}" in header and "reward: metric on ndcg@10" in header
    assert (
        "  | <|im_start|>user" in header and "  | <answer>" in header
    )  # the rendered prompt, prefill included
    assert "step 1: 2 of 8 sampled completions" in header and "step 2: 2 of 8 sampled completions" in header

    samples = [json.loads(line) for line in (run_dir / "logs" / "samples.jsonl").read_text().splitlines()]
    assert [s["step"] for s in samples] == [1, 1, 2, 2]
    assert samples[0]["reward"] >= samples[1]["reward"]  # best first
    task = load_task(
        "beir", data, retriever=parse_config(_config(pieces, tmp_path)).retriever, metrics=["ndcg@10"]
    )
    reward = BatchReward(task, task_scheme(task))
    examples = {ex.id: ex for ex in task.examples("train")}
    rescored = reward.score([s["completion"] for s in samples], [examples[s["example_id"]] for s in samples])
    assert rescored.rewards == pytest.approx([s["reward"] for s in samples])  # each shown with its own reward
    assert [p.reason for p in rescored.parsed] == [s["format"] for s in samples]

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "logs"), size_guidance={"tensors": 0})
    events.Reload()
    assert "samples/text_summary" in events.Tags()["tensors"]
    assert [event.step for event in events.Tensors("samples/text_summary")] == [1, 2]

    summary = TrainingSummary.read(run_dir)
    assert (summary.steps, summary.steps_planned, summary.stopped_by) == (2, 2, "max_steps")
    assert summary.complete and summary.warning() is None
    assert "trained: 2 of 2 planned GRPO steps" in captured.out

    results = json.loads((run_dir / "eval" / "results.json").read_text())
    assert results["split"] == "test" and [p["policy"] for p in results["policies"]] == [
        "original",
        "trained",
    ]
    assert results["significance"]["baseline"] == "original"
    lines = captured.out.splitlines()
    table = lines[next(i for i, line in enumerate(lines) if line.startswith("policy ")) :]
    assert table[0].split()[:2] == ["policy", "ndcg@10"] and table[3].startswith("trained")
    # the command in results.json reproduces the table
    out = tmp_path / "again"
    assert main([*shlex.split(results["command"])[1:], "--out", str(out)]) == 0
    again = json.loads((out / "results.json").read_text())
    assert [p["metrics"] for p in again["policies"]] == [p["metrics"] for p in results["policies"]]


def test_a_run_cut_short_by_its_budget_says_so(pieces, tmp_path, capsys) -> None:
    raw = _config(pieces, tmp_path / "run", max_steps=3, time_budget_s=0.001)
    raw["eval"] = {"after_training": False}
    run_dir = train(parse_config(raw))
    summary = TrainingSummary.read(run_dir)
    assert (summary.steps, summary.steps_planned, summary.stopped_by) == (1, 3, "time_budget")
    assert not summary.complete
    err = capsys.readouterr().err
    assert "warning: UNDER-TRAINED: training stopped at step 1 of 3: its time budget of 0.001 s" in err
    assert "--set rl.time_budget_s=0.002" in err  # says how to give it more time
    assert not (run_dir / "eval").exists()  # the final evaluation can be turned off
