"""Literature search end to end: the CLEF TAR collection on the local Boolean engine, PubMed through the
real client against the stand-in server on loopback, and a few GRPO steps against the local engine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from _index_helpers import task_index
from _literature_helpers import files_containing
from _train_helpers import tiny_run_config, write_tiny_model
from deepretrieval.config import parse_config
from standin import StandIn, peak_rate


def _eval(args: list[str], cache: Path, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in ("NCBI_API_KEY", "DEEPRETRIEVAL_OFFLINE")}
    environment.update(DEEPRETRIEVAL_CACHE=str(cache), **env)
    return subprocess.run(
        [sys.executable, "-m", "deepretrieval.cli", "eval", "--task", "literature", *args],
        capture_output=True,
        text=True,
        check=False,
        env=environment,
    )


def test_clef_test_topics_original_and_expert_on_the_local_engine(literature: Path, tmp_path: Path) -> None:
    results = {}
    for policy in ("original", "expert"):
        out = tmp_path / policy
        data = str(literature / "clef-tar-2017")
        args = ["--data", data, "--split", "test", "--engine", "local", "--policy", policy, "--out", str(out)]
        proc = _eval([*args, "--metrics", "recall@3000,precision,retrieved"], tmp_path / "cache")
        assert proc.returncode == 0, proc.stderr
        assert "recall@3000" in proc.stdout and "precision" in proc.stdout and "retrieved" in proc.stdout
        summary = json.loads((out / "results.json").read_text())["policies"][0]
        rows = [json.loads(line) for line in (out / summary["per_query"]).read_text().splitlines()]
        results[policy] = {"metrics": summary["metrics"], "per_query": {r["id"]: r["metrics"] for r in rows}}
        assert summary["failures"] == 0
    for result in results.values():
        assert len(result["per_query"]) == 8
    expert, original = results["expert"]["metrics"], results["original"]["metrics"]
    # every expert strategy (PubMed or Ovid syntax) parses and finds most included studies; the review
    # titles, read as PubMed queries (implicit AND), match almost nothing
    assert expert["recall@3000"] > 0.85 and original["recall@3000"] < 0.1
    assert all(q["retrieved"] > 0 for q in results["expert"]["per_query"].values())
    assert expert["retrieved"] > 10 * original["retrieved"]


def test_pubmed_evaluation_is_polite_secret_and_cached(literature: Path, tmp_path: Path) -> None:
    data = str(literature / "pubmed-pico")
    secret = "k3y-" + os.urandom(8).hex()
    with StandIn("pubmed", literature / "clef-tar-2017") as server:  # answers like NCBI, 429 above its limits
        args = ["--data", data, "--split", "test", "--engine", "pubmed", "--engine-url", server.engine_url]
        args += ["--policy", "original", "--limit", "30", "--out", str(tmp_path / "out")]
        first = _eval(args, tmp_path / "cache-nokey")
        assert first.returncode == 0, first.stderr
        without_key = list(server.requests)
        assert len(without_key) == 30 and peak_rate(r["t"] for r in without_key) <= 3
        assert not any(r["key_sent"] for r in without_key)

        again = _eval(args, tmp_path / "cache-nokey")
        assert again.returncode == 0 and len(server.requests) == 30  # every answer from the cache

        keyed = _eval(args, tmp_path / "cache-key", NCBI_API_KEY=secret)
        assert keyed.returncode == 0, keyed.stderr
        with_key = server.requests[30:]
        assert (
            len(with_key) == 30
            and all(r["key_sent"] for r in with_key)
            and peak_rate(r["t"] for r in with_key) <= 10
        )
    for proc in (first, again, keyed):
        assert secret not in proc.stdout + proc.stderr
    assert not files_containing(tmp_path, secret)
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["policies"][0]["metrics"].keys() == {
        "recall@3000",
        "precision",
        "retrieved",
    }


def test_a_few_grpo_steps_against_the_local_engine(literature: Path, tmp_path: Path) -> None:
    from deepretrieval.train.grpo import train

    model = write_tiny_model(tmp_path / "model")
    clef = literature / "clef-tar-2017"
    raw = tiny_run_config(clef, model, tmp_path / "run", build_index=False, max_steps=2)
    raw["task"] = {"name": "literature", "data": str(clef), "options": {"k": 500}}
    index = task_index("literature", clef, tmp_path / "index", kind="boolean", task_options={"k": 500})
    raw["retriever"] = {"kind": "boolean", "index": index}
    raw["rl"]["max_prompt_length"] = 1024
    run_dir = train(parse_config(raw))
    records = [json.loads(line) for line in (run_dir / "logs" / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if "loss" in r]
    assert [r["step"] for r in steps] == [1, 2]
    assert all(
        "task/f3" in r and "task/judge_failed" in r for r in steps
    )  # set judgement on the local engine
