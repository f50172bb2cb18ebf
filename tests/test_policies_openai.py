"""The OpenAI-compatible policy against our own server on loopback (a real client, a real server): the
completions are the served policy's, 429/500/timeouts are retried, a rerun is served from the cache with
zero requests, a request that keeps failing becomes a reported failure, and `eval` scores it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from _index_helpers import task_index
from _serve_helpers import Faults, running, write_tiny_policy
from _train_helpers import write_tiny_beir
from deepretrieval.config import RetrieverConfig
from deepretrieval.evaluation import evaluate
from deepretrieval.policies import GenerationFailure, PolicyOptions, load_policy
from deepretrieval.policies.hf import HFPolicy
from deepretrieval.policies.openai import OpenAIError, OpenAIPolicy
from deepretrieval.prompting import Prompting
from deepretrieval.serve.rewrite import Rewriter, create_app
from deepretrieval.tasks import load_task

PROMPTS = [
    [{"role": "user", "content": "Request: fever medicine"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Request: heart attack"}],
    [{"role": "user", "content": "Request: flat tyre"}],
]
MAX_TOKENS = 4
ASK = Prompting("classic_ir", max_new_tokens=MAX_TOKENS)  # what a client asks for
SERVED = Prompting("classic_ir", prefill="<answer>", max_new_tokens=MAX_TOKENS)  # how the server prompts


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("openai")
    model = write_tiny_policy(root / "model")
    policy = HFPolicy(str(model))
    beir = write_tiny_beir(root / "beir")
    return {"root": root, "policy": policy, "beir": beir, "index": task_index("beir", beir, root / "idx")}


def _client(url: str, cache: Path, **options) -> OpenAIPolicy:
    settings = {"base_url": f"{url}/v1", "cache": cache, "backoff_s": 0.01}
    return OpenAIPolicy("tiny", **(settings | options))


def test_completions_come_from_the_server_and_a_rerun_costs_no_request(served: dict, tmp_path: Path) -> None:
    expected = served["policy"].complete(PROMPTS, SERVED)
    app = Faults(create_app(Rewriter(served["policy"])))
    with running(app) as url:
        first = _client(url, tmp_path / "cache", concurrency=3)
        assert first.complete(PROMPTS, ASK) == expected
        assert app.requests == 3 and first.stats["requests"] == 3 and first.stats["cache_hits"] == 0
        first.close()
        again = _client(url, tmp_path / "cache")
        assert again.complete(PROMPTS, ASK) == expected
        assert app.requests == 3  # zero requests the second time
        assert again.stats == {"requests": 0, "retries": 0, "cache_hits": 3, "failures": 0}
        again.complete(PROMPTS[:1], replace(ASK, max_new_tokens=2))  # another generation cap: no hit
        assert app.requests == 4
        again.close()


def test_429_500_and_timeouts_are_retried_with_backoff(served: dict, tmp_path: Path) -> None:
    expected = served["policy"].complete(PROMPTS[:1], SERVED)
    app = Faults(create_app(Rewriter(served["policy"])), plan=[429, 500, 503, "slow"])
    with running(app) as url:
        client = _client(url, tmp_path / "cache", timeout_s=2.0, concurrency=1)
        assert client.complete(PROMPTS[:1], ASK) == expected
        client.close()
    assert app.requests == 5 and client.stats["retries"] == 4 and client.stats["failures"] == 0


def test_a_request_that_keeps_failing_is_a_reported_failure_never_cached(
    served: dict, tmp_path: Path
) -> None:
    app = Faults(create_app(Rewriter(served["policy"])), always=500)
    with running(app) as url:
        client = _client(url, tmp_path / "cache", max_retries=2)
        (result,) = client.complete(PROMPTS[:1], ASK)
        assert result == GenerationFailure("HTTP 500 after 3 attempts")
        assert app.requests == 3
        client.complete(PROMPTS[:1], ASK)  # not cached: asked again
        assert app.requests == 6
        client.close()
        task = load_task(
            "beir",
            served["beir"],
            retriever=RetrieverConfig(index=served["index"]),
            metrics=["ndcg@10"],
        )
        broken = _client(url, tmp_path / "cache", max_retries=0)
        result = evaluate(task, broken, "train", progress=False)
        broken.close()
    assert result.failures == {
        ex.id: "generation failed: HTTP 500 after 1 attempts" for ex in task.examples("train")
    }
    assert result.per_query == {} and result.format_ok is None


def test_a_refused_key_is_an_error_and_the_key_is_never_stored(served: dict, tmp_path: Path) -> None:
    app = Faults(create_app(Rewriter(served["policy"])), plan=[401])
    with running(app) as url:
        refused = _client(url, tmp_path / "cache", api_key="sk-test-secret-1234")
        with pytest.raises(OpenAIError, match="401.*OPENAI_API_KEY"):
            refused.complete(PROMPTS[:1], ASK)
        refused.complete(PROMPTS[:1], ASK)  # the next request passes: now cached
        refused.close()
    stored = b"".join(p.read_bytes() for p in (tmp_path / "cache").rglob("*") if p.is_file())
    assert stored and b"sk-test-secret-1234" not in stored


def test_openai_spec_needs_a_key_for_the_public_api(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ValueError, match="needs OPENAI_API_KEY"):
        load_policy("openai:gpt-4o-mini")
    with pytest.raises(ValueError, match="must start with http"):
        load_policy("openai:gpt-4o-mini", PolicyOptions(openai={"base_url": "localhost:8000/v1"}))


def test_eval_command_scores_an_openai_policy_against_the_server(served: dict, tmp_path: Path) -> None:
    app = Faults(create_app(Rewriter(served["policy"])))
    env = {
        **os.environ,
        "DEEPRETRIEVAL_CACHE": str(tmp_path / "dr-cache"),
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    with running(app) as url:
        command = [
            sys.executable, "-m", "deepretrieval.cli", "eval", "--task", "beir", "--data", str(served["beir"]),
            "--split", "train", "--index", served["index"], "--policy", "original,openai:tiny@no-reasoning",
            "--openai-base-url", f"{url}/v1", "--openai-cache", str(tmp_path / "cache"),
            "--max-new-tokens", str(MAX_TOKENS), "--out", str(tmp_path / "out"),
        ]  # fmt: skip
        proc = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
        assert proc.returncode == 0, proc.stderr
        requests = app.requests
        rerun = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
        assert rerun.returncode == 0, rerun.stderr
    assert requests == 4 and app.requests == 4  # the rerun reused the logged generations: no request
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [p["policy"] for p in results["policies"]] == ["original", "openai:tiny@no-reasoning"]
    rows = [json.loads(line) for line in (tmp_path / "out" / results["policies"][1]["per_query"]).open()]
    task = load_task("beir", served["beir"], retriever=RetrieverConfig(index=served["index"]))
    examples = task.examples("train")
    prompts = [task.messages(ex, ASK) for ex in examples]
    # no-reasoning prompts, answered by the served policy (which adds its <answer> prefill)
    assert [row["completion"] for row in rows] == served["policy"].complete(prompts, SERVED)
    assert "openai:tiny@no-reasoning" in proc.stdout


def test_a_rejected_request_is_not_retried_and_says_why(served: dict, tmp_path: Path) -> None:
    app = Faults(create_app(Rewriter(served["policy"])), plan=[400])
    with running(app) as url:
        client = _client(url, tmp_path / "cache")
        (result,) = client.complete(PROMPTS[:1], ASK)
        client.close()
    assert result == GenerationFailure('HTTP 400 ({"error": {"message": "injected"}}) after 1 attempts')
    assert app.requests == 1
