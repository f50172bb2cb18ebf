"""verl integration: the parquet export in verl's layout, and verl's reward functions returning exactly the
TRL path's rewards (same examples, completions and scheme) with retrieval through the service, called
in-process in verl's shapes and, where verl can be imported, through verl's own reward managers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import datasets
import numpy as np
import pytest

from _service_helpers import LiveService
from deepretrieval.cli import main
from deepretrieval.config import parse_config
from deepretrieval.integrations import verl_reward
from deepretrieval.integrations.verl import compute_score, compute_score_batch
from deepretrieval.integrations.verl_data import run_spec
from deepretrieval.prompting import Prompting, run_prompting
from deepretrieval.retrievers.web.remote import RemoteRetriever
from deepretrieval.serve.retrieval_service import IndexSpec
from deepretrieval.train.data import build_batch_reward, build_task
from deepretrieval.train.rewards_adapter import TRLBatchReward

TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src"
REWARD_FILE = SRC / "deepretrieval" / "integrations" / "verl.py"
VERL_SITE = Path(
    os.environ.get("DEEPRETRIEVAL_VERL_SITE", Path(__file__).resolve().parents[1] / ".venv" / "verl-site")
)
EXAMPLES = 50  # x 8 completions = 400 samples


@pytest.fixture(scope="module")
def live(scifact_bm25) -> Iterator[LiveService]:
    with LiveService([IndexSpec("scifact", scifact_bm25.index_dir)]) as service:
        yield service


@pytest.fixture(scope="module")
def exported(live: LiveService, scifact_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("verl") / "scifact-test.parquet"
    args = [
        "data",
        "export-verl",
        "--task",
        "beir",
        "--data",
        str(scifact_dir),
        "--split",
        "test",
        "--reasoning",
    ]
    assert main([*args, "--limit", str(EXAMPLES), "--endpoint", live.url, "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def rows(exported: Path) -> list[dict]:
    """The rows as verl reads them (``datasets.load_dataset("parquet")``, as RLHFDataset does)."""
    return list(datasets.load_dataset("parquet", data_files=str(exported))["train"])


def completions(claim: str, other: str) -> list[str]:
    """Eight answers to one claim, covering every branch of the reward: good, partial, another claim's,
    repeated terms (guard), stop words only, empty, malformed, and over the length cap."""
    words = claim.split()
    return [
        f"<think>the claim itself</think>\n<answer>{claim}</answer>",
        f"<think>fewer words</think><answer> {' '.join(words[: max(1, len(words) // 2)])} </answer>",
        f"<think>off topic</think><answer>{other}</answer>",
        f"<think>repeat</think><answer>{' '.join([words[-1]] * 12)} {claim}</answer>",
        "<think>stop words</think><answer>the of and to</answer>",
        "<think>nothing</think><answer></answer>",
        f"I think the query is {claim}",
        f"<think>long</think><answer>{claim * 200}</answer>",
    ]


@pytest.fixture(scope="module")
def samples(rows: list[dict]) -> tuple[list[int], list[str]]:
    """(row of each sample, completion text), 8 per exported example."""
    picks, texts = [], []
    for i, row in enumerate(rows):
        other = rows[(i + 7) % len(rows)]["extra_info"]["original"]
        for text in completions(row["extra_info"]["original"], other):
            picks.append(i)
            texts.append(text)
    return picks, texts


@pytest.fixture(scope="module")
def trl_rewards(scifact_dir: Path, scifact_bm25, rows, samples) -> list[float]:
    """The TRL path: the same run config, an in-process index, TRL's reward call."""
    config = parse_config(
        {
            "task": {"name": "beir", "data": str(scifact_dir), "split": "test"},
            "retriever": {"index": str(scifact_bm25.index_dir)},
            "prompting": {"reasoning": True},
        }
    )
    task = build_task(config)
    reward = TRLBatchReward(
        build_batch_reward(config, task, run_prompting(config, task)), task.examples("test")
    )
    picks, texts = samples
    ids = [rows[i]["extra_info"]["example_id"] for i in picks]
    rewards = reward([None] * len(texts), texts, None, example_id=ids)
    task.close()
    assert None not in rewards and len(set(rewards)) > 20  # every branch, many distinct values
    return rewards


def _verl_args(rows: list[dict], picks: list[int]) -> tuple[list, list, list]:
    chosen = [rows[i] for i in picks]
    return (
        [r["data_source"] for r in chosen],
        [r["reward_model"]["ground_truth"] for r in chosen],
        [dict(r["extra_info"]) for r in chosen],
    )


# --------------------------------------------------------------------------- the export


def test_export_writes_verls_layout(rows, exported: Path, scifact_task, live: LiveService) -> None:
    examples = scifact_task.examples("test")[:EXAMPLES]
    assert len(rows) == EXAMPLES
    for index, (row, example) in enumerate(zip(rows, examples, strict=True)):
        assert row["data_source"] == "scifact" and row["ability"] == "retrieval"
        assert row["prompt"] == scifact_task.messages(example, Prompting("classic_ir", reasoning=True))
        assert row["reward_model"] == {
            "style": "rule",
            "ground_truth": json.dumps(example.truth, sort_keys=True),
        }
        assert json.loads(row["reward_model"]["ground_truth"]) == example.truth
        info = row["extra_info"]
        assert (info["split"], info["index"], info["example_id"], info["original"]) == (
            "test",
            index,
            example.id,
            example.original,
        )
    spec = parse_config(json.loads(rows[0]["extra_info"]["deepretrieval"]))
    assert spec.task.name == "beir" and Path(spec.task.data).is_absolute()
    assert spec.retriever.kind == "remote" and spec.retriever.options == {"endpoint": live.url}


def test_export_refuses_what_verl_cannot_render(scifact_dir: Path, tmp_path: Path, capsys) -> None:
    config = parse_config(
        {"task": {"name": "beir", "data": str(scifact_dir)}, "prompting": {"prefill": "<answer>"}}
    )
    with pytest.raises(ValueError, match="cannot be exported; drop prompting.prefill"):
        run_spec(config)
    assert main(["data", "export-verl", "--data", str(scifact_dir)]) == 2
    assert "name the task: --task NAME --data PATH" in capsys.readouterr().err
    assert main(["data", "export-verl", "--task", "beir", "--data", str(scifact_dir), "--index", "x"]) == 2
    assert "give --endpoint too" in capsys.readouterr().err


def test_export_from_a_run_config(scifact_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "run.yaml"
    config.write_text(
        f"task: {{name: beir, data: {scifact_dir}}}\n"
        "reward: {overrides: {format_bonus: 0.2}}\nprompting: {reasoning: false, template: keywords}\n"
    )
    out = tmp_path / "train.parquet"
    assert main(["data", "export-verl", "--config", str(config), "--limit", "3", "--out", str(out)]) == 0
    row = datasets.load_dataset("parquet", data_files=str(out))["train"][0]
    assert row["extra_info"]["split"] == "train"  # the training split when the task has one
    spec = parse_config(json.loads(row["extra_info"]["deepretrieval"]))
    assert spec.prompting.reasoning is False and spec.reward.overrides == {"format_bonus": 0.2}
    assert spec.prompting.template == "keywords" and "<think>" not in row["prompt"][-1]["content"]
    assert row["prompt"][-1]["content"].startswith("Request: ")  # the keywords template


def test_sql_tasks_export_their_gold_sql(spider_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "spider.parquet"
    assert (
        main(
            [
                "data",
                "export-verl",
                "--task",
                "sql",
                "--data",
                str(spider_dir),
                "--split",
                "dev",
                "--limit",
                "5",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    row = datasets.load_dataset("parquet", data_files=str(out))["train"][0]
    assert row["ability"] == "sql" and row["data_source"] == "sql"
    assert json.loads(row["reward_model"]["ground_truth"]).upper().startswith("SELECT")
    assert row["extra_info"]["original"] in row["prompt"][-1]["content"]


# --------------------------------------------------------------------------- the reward, in verl's shapes


def test_batch_and_per_sample_rewards_equal_the_trl_path(rows, samples, trl_rewards) -> None:
    picks, texts = samples
    sources, truths, infos = _verl_args(rows, picks)
    batch = compute_score_batch(sources, texts, truths, infos)
    assert [r["score"] for r in batch] == trl_rewards
    assert all(set(r) == {"score", "metric", "format_ok", "judge_failed"} for r in batch)
    assert {r["format_ok"] for r in batch} == {0.0, 1.0} and {r["judge_failed"] for r in batch} == {0.0}
    assert all(0.0 <= r["metric"] <= 1.0 for r in batch) and max(r["metric"] for r in batch) == 1.0

    # verl's reward loop calls the per-sample function from a pool of threads: coalesced into batches
    with ThreadPoolExecutor(32) as pool:
        single = list(
            pool.map(lambda i: compute_score(sources[i], texts[i], truths[i], infos[i]), range(len(texts)))
        )
    assert single == batch


def test_one_task_per_process_and_the_service_shared(rows) -> None:
    spec = rows[0]["extra_info"]["deepretrieval"]
    judge = verl_reward.judge_for(spec)
    assert verl_reward.judge_for(spec) is judge
    assert isinstance(judge.task.retriever.inner, RemoteRetriever)


def test_the_environment_names_the_service(
    rows, samples, trl_rewards, live, scifact_dir, tmp_path, monkeypatch
) -> None:
    """Rows exported without a service (in-process BM25 in the spec) judged through the service that
    $DEEPRETRIEVAL_RETRIEVER names: no index is opened in this process, and the rewards are the same."""
    config = parse_config(
        {
            "task": {"name": "beir", "data": str(scifact_dir), "split": "test"},
            "prompting": {"reasoning": True},
        }
    )
    spec = run_spec(config)
    picks, texts = samples
    sources, truths, infos = _verl_args(rows, picks)
    infos = [{**info, "deepretrieval": spec} for info in infos]
    monkeypatch.setenv("DEEPRETRIEVAL_RETRIEVER", live.url)
    monkeypatch.setenv("DEEPRETRIEVAL_RETRIEVER_INDEX", "scifact")
    assert [r["score"] for r in compute_score_batch(sources, texts, truths, infos)] == trl_rewards
    judge = verl_reward.judge_for(spec)
    assert (
        isinstance(judge.task.retriever.inner, RemoteRetriever)
        and judge.task.retriever.inner.index == "scifact"
    )

    # a spec from the environment for rows that carry none
    run_config = tmp_path / "run.yaml"
    run_config.write_text(
        f"task: {{name: beir, data: {scifact_dir}, split: test}}\nprompting: {{reasoning: true}}\n"
    )
    monkeypatch.setenv("DEEPRETRIEVAL_VERL_SPEC", str(run_config))
    bare = [{k: v for k, v in info.items() if k != "deepretrieval"} for info in infos[:16]]
    assert [
        r["score"] for r in compute_score_batch(sources[:16], texts[:16], truths[:16], bare)
    ] == trl_rewards[:16]


def test_a_service_that_is_gone_scores_zero_and_says_so(
    scifact_bm25, rows, samples, tmp_path, monkeypatch
) -> None:
    with LiveService([IndexSpec("scifact", scifact_bm25.index_dir)]) as other:
        section = tmp_path / "retriever.yaml"
        section.write_text(f"retriever: {{kind: remote, options: {{endpoint: '{other.url}', retries: 0}}}}\n")
        monkeypatch.setenv("DEEPRETRIEVAL_RETRIEVER_CONFIG", str(section))
        picks, texts = samples
        sources, truths, infos = _verl_args(rows, picks[:8])
        verl_reward.judge_for(infos[0]["deepretrieval"])  # connected while the service is up
    scored = compute_score_batch(sources, texts[:8], truths, infos)
    valid = [r for r in scored if r["format_ok"]]
    assert valid and all(r["judge_failed"] == 1.0 and r["score"] == 0.0 for r in valid)


def test_rows_from_other_data_fail_loudly(rows, samples, monkeypatch) -> None:
    sources, truths, infos = _verl_args(rows, [0])
    text = samples[1][0]
    with pytest.raises(
        ValueError, match="ground truth of example .* differs from task 'scifact'.*export it again"
    ):
        compute_score_batch(sources, [text], ['{"1": 1}'], infos)
    with pytest.raises(ValueError, match="example 'nope' of split 'test' is not in task 'scifact'"):
        compute_score_batch(sources, [text], truths, [{**infos[0], "example_id": "nope"}])
    monkeypatch.delenv("DEEPRETRIEVAL_VERL_SPEC", raising=False)
    with pytest.raises(
        ValueError, match="carries no run spec .* export the data with `deepretrieval data export-verl`"
    ):
        compute_score(sources[0], text, truths[0], {"split": "test", "example_id": "1"})
    with pytest.raises(TypeError, match="names no split and example_id"):
        compute_score_batch(sources, [text], truths, [{"deepretrieval": infos[0]["deepretrieval"]}])


# --------------------------------------------------------------------------- through verl's own code


def _verl_importable() -> bool:
    if not (VERL_SITE / "verl").is_dir():
        return False
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import verl.workers.reward_manager, verl.experimental.reward_loop.reward_loop",
        ],
        env={**os.environ, "PYTHONPATH": f"{VERL_SITE}{os.pathsep}{SRC}"},
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(
    not _verl_importable(), reason=f"verl is not importable from {VERL_SITE} (see docs/verl.md)"
)
def test_verls_own_reward_managers_give_the_trl_rewards(
    exported, rows, samples, trl_rewards, tmp_path
) -> None:
    """verl 0.9.1's BatchRewardManager and NaiveRewardManager (legacy) and its reward loop's
    RewardLoopWorker score a rollout DataProto built from the parquet as verl's RLHFDataset reads it."""
    from transformers import AutoTokenizer

    from deepretrieval.default_model import gguf_path

    gguf = gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    tokenizer.save_pretrained(tmp_path / "tokenizer")
    picks, texts = samples
    # what a rollout hands the reward: the text decoded from the generated ids
    decoded = [
        tokenizer.decode(tokenizer(t, add_special_tokens=False)["input_ids"], skip_special_tokens=True)
        for t in texts
    ]
    assert decoded == texts
    job = {
        "parquet": str(exported),
        "rows": picks,
        "completions": texts,
        "tokenizer": str(tmp_path / "tokenizer"),
        "reward_file": str(REWARD_FILE),
        "out": str(tmp_path / "out.json"),
    }
    (tmp_path / "job.json").write_text(json.dumps(job))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(VERL_SITE), str(SRC)]),
        "TOKENIZERS_PARALLELISM": "false",
    }
    run = subprocess.run(
        [sys.executable, str(TESTS / "_verl_managers.py"), str(tmp_path / "job.json")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["raw_prompts"] == [row["prompt"] for row in rows]
    as_float32 = np.asarray(trl_rewards, dtype=np.float32).tolist()  # verl's reward tensor is float32
    assert out["batch"] == as_float32 and out["naive"] == as_float32
    assert out["reward_loop"] == trl_rewards  # the reward loop hands the float over as is
    assert out["naive_extra_keys"] == ["format_ok", "judge_failed", "metric", "score"]
