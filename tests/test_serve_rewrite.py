"""The query-rewriting API on a real uvicorn server on loopback, with the tiny policy: rewrites equal to the
policy's own, search hits, dynamic batching, input limits and 4xx errors, and the two commands."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from _index_helpers import task_index
from _serve_helpers import running, write_tiny_policy
from _train_helpers import write_tiny_beir
from deepretrieval.config import PromptingConfig
from deepretrieval.policies.hf import HFPolicy
from deepretrieval.prompting import Prompting
from deepretrieval.retrievers import open_retriever
from deepretrieval.serve.rewrite import Limits, Rewriter, create_app

QUERIES = ["fever medicine", "heart attack", "flat tyre"]
FOUR = PromptingConfig(max_new_tokens=4)  # the tiny policy writes nonsense: four tokens are enough


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("serve")
    beir = write_tiny_beir(root / "beir")
    model = write_tiny_policy(root / "model")
    index = root / "index"
    task_index("beir", beir, index)  # a given index folder is loaded, never built
    retriever = open_retriever("bm25", corpus=beir, index_dir=index, show_progress=False)
    policy = HFPolicy(str(model))
    return {"root": root, "model": model, "index": index, "retriever": retriever, "policy": policy}


def test_rewrite_returns_the_policys_parsed_answer_and_hits(tiny: dict) -> None:
    rewriter = Rewriter(tiny["policy"], FOUR)
    assert rewriter.describe() == Prompting("classic_ir", prefill="<answer>", max_new_tokens=4).to_json()
    expected = rewriter.rewrite(QUERIES)  # the same policy, called directly with the same batch
    app = create_app(rewriter, indexes={"tiny": tiny["retriever"]})
    with running(app) as url:
        one = httpx.post(f"{url}/rewrite", json={"query": QUERIES[0]}, timeout=60)
        assert one.status_code == 200, one.text
        single = rewriter.rewrite(QUERIES[:1])[0]
        assert one.json()["query"] == single.query and one.json()["original"] == QUERIES[0]
        assert one.json()["format_ok"] is single.format_ok
        many = httpx.post(
            f"{url}/rewrite", json={"queries": QUERIES, "search": {"index": "tiny", "k": 3}}, timeout=60
        )
        assert many.status_code == 200, many.text
        body = many.json()
        assert body["queries"] == [r.query for r in expected]
        rankings = tiny["retriever"].search(body["queries"], 3)
        for result, ranking in zip(body["results"], rankings):
            assert [h["id"] for h in result["hits"]] == [hit.doc_id for hit in ranking]
            for hit, found in zip(result["hits"], ranking):
                assert hit["score"] == pytest.approx(found.score, abs=1e-4)
                assert hit["text"].split()[:3] == tiny["retriever"].text(found.doc_id).split()[:3]
        health = httpx.get(f"{url}/health").json()
        assert health["status"] == "ok" and health["indexes"] == ["tiny"]
        assert health["batching"]["items"] == 4  # 1 + 3 queries generated


def test_a_malformed_completion_keeps_the_original_and_says_so(tiny: dict) -> None:
    # Prompted for reasoning, the tiny policy (trained without) never closes a </think>: malformed.
    rewriter = Rewriter(tiny["policy"], PromptingConfig(reasoning=True, max_new_tokens=4))
    with running(create_app(rewriter)) as url:
        reply = httpx.post(f"{url}/rewrite", json={"query": "short of breath"}, timeout=60).json()
    assert reply["query"] == "short of breath" and reply["format_ok"] is False
    assert reply["note"].startswith("malformed completion (") and reply["completion"].startswith("<answer>")


def test_requests_arriving_together_share_generation_calls(tiny: dict) -> None:
    app = create_app(Rewriter(tiny["policy"], FOUR), max_batch=8, max_wait_ms=50)

    async def burst(url: str) -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=120) as client:
            return await asyncio.gather(
                *(client.post(f"{url}/rewrite", json={"query": f"fever medicine {i}"}) for i in range(24))
            )

    with running(app) as url:
        replies = asyncio.run(burst(url))
        stats = httpx.get(f"{url}/health").json()["batching"]
    assert [r.status_code for r in replies] == [200] * 24
    assert stats["items"] == 24 and stats["batches"] < 24
    assert 1 < stats["max_batch_size"] <= 8
    assert sum(int(size) * count for size, count in stats["batch_sizes"].items()) == 24


@pytest.mark.parametrize(
    "body, status, message",
    [
        ({"query": "a", "queries": ["b"]}, 422, 'either "query"'),
        ({}, 422, 'either "query"'),
        ({"queries": ["a"] * 4}, 422, "at most 3"),
        ({"query": "x" * 101}, 422, "at most 100"),
        ({"queries": ["ok", "   "]}, 422, "queries[1]"),
        ({"query": "a", "search": {"index": "nope"}}, 404, "unknown index 'nope'"),
        ({"query": "a", "search": {"index": "tiny", "k": 0}}, 422, "search.k"),
        ({"query": "a", "colour": "red"}, 422, "colour"),
        ({"query": 5}, 422, "query"),
    ],
)
def test_bad_rewrite_bodies_get_clear_4xx(tiny: dict, body: dict, status: int, message: str) -> None:
    app = create_app(Rewriter(tiny["policy"], FOUR), limits=Limits(max_queries=3, max_query_chars=100))
    with running(app) as url:
        reply = httpx.post(f"{url}/rewrite", json=body, timeout=60)
    assert reply.status_code == status, reply.text
    assert message in reply.json()["error"]["message"]


def test_body_limits_malformed_json_and_bad_chat_requests(tiny: dict) -> None:
    app = create_app(Rewriter(tiny["policy"], FOUR), limits=Limits(max_body_bytes=200))
    with running(app) as url:
        declared = httpx.post(f"{url}/rewrite", json={"query": "y" * 500})
        streamed = httpx.post(f"{url}/rewrite", content=(b"x" * 100 for _ in range(5)))  # chunked, no length
        broken = httpx.post(
            f"{url}/rewrite", content=b'{"query": ', headers={"content-type": "application/json"}
        )
        chat = f"{url}/v1/chat/completions"
        two = httpx.post(chat, json={"messages": [{"role": "user", "content": "hi"}], "n": 2})
        stream = httpx.post(chat, json={"messages": [{"role": "user", "content": "hi"}], "stream": True})
        empty = httpx.post(chat, json={"messages": []})
        role = httpx.post(chat, json={"messages": [{"role": "wizard", "content": "hi"}]})
        wrong_method = httpx.get(f"{url}/rewrite")
    assert (
        declared.status_code == 413 and "over the limit of 200 bytes" in declared.json()["error"]["message"]
    )
    assert streamed.status_code == 413
    assert broken.status_code == 422 and "JSON" in broken.json()["error"]["message"]
    assert two.status_code == 422 and "n must be 1" in two.json()["error"]["message"]
    assert stream.status_code == 422 and "stream" in stream.json()["error"]["message"]
    assert empty.status_code == 422 and "messages" in empty.json()["error"]["message"]
    assert role.status_code == 422 and "role" in role.json()["error"]["message"]
    assert wrong_method.status_code == 405


def test_chat_completions_returns_the_policys_completion(tiny: dict) -> None:
    policy = tiny["policy"]
    messages = [{"role": "user", "content": "Request: fever medicine"}]
    rewriter = Rewriter(policy, FOUR)
    with running(create_app(rewriter, model_name="tiny")) as url:
        reply = httpx.post(
            f"{url}/v1/chat/completions",
            json={"model": "x", "messages": messages, "max_tokens": 3},
            timeout=60,
        )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["object"] == "chat.completion" and body["model"] == "tiny"
    assert body["choices"][0]["message"] == {
        "role": "assistant",
        "content": policy.complete([messages], replace(rewriter.prompting, max_new_tokens=3))[0],
    }


def _env(tmp: Path) -> dict:
    return {**os.environ, "DEEPRETRIEVAL_CACHE": str(tmp / "cache"), "PYTHONPATH": os.pathsep.join(sys.path)}


def test_rewrite_command_prints_the_query_and_hits(tiny: dict, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "deepretrieval.cli", "rewrite", "fever medicine", "--model", str(tiny["model"]),
         "--search", str(tiny["index"]), "--k", "3", "--max-new-tokens", "4"],
        capture_output=True, text=True, check=False, env=_env(tmp_path),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    expected = Rewriter(tiny["policy"], FOUR).rewrite(["fever medicine"])[0].query
    assert lines[0] == expected and len(lines) == 1 + len(tiny["retriever"].search([expected], 3)[0])
    for rank, line in enumerate(lines[1:], 1):
        assert line.split()[0] == str(rank)
    bad = subprocess.run(
        [sys.executable, "-m", "deepretrieval.cli", "rewrite", "x", "--search", str(tmp_path / "none")],
        capture_output=True, text=True, check=False, env=_env(tmp_path),
    )  # fmt: skip
    assert bad.returncode == 2 and "does not exist" in bad.stderr and "Traceback" not in bad.stderr


def test_serve_command_answers_health_and_rewrite(tiny: dict, tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "deepretrieval.cli", "serve", "--model", str(tiny["model"]), "--port", str(port),
         "--index", f"tiny={tiny['index']}", "--max-new-tokens", "4"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(tmp_path),
    )  # fmt: skip
    try:
        health = None
        deadline = time.monotonic() + 120
        while health is None and time.monotonic() < deadline and server.poll() is None:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health").json()
            except httpx.TransportError:
                time.sleep(0.2)
        assert health is not None, server.stderr.read() if server.poll() is not None else "no answer"
        assert health["model"] == "model" and health["indexes"] == ["tiny"]
        reply = httpx.post(
            f"http://127.0.0.1:{port}/rewrite",
            json={"query": "fever medicine", "search": {"index": "tiny", "k": 2}},
            timeout=60,
        )
        assert reply.status_code == 200 and len(reply.json()["hits"]) <= 2
        assert (
            json.loads(reply.text)["query"]
            == Rewriter(tiny["policy"], FOUR).rewrite(["fever medicine"])[0].query
        )
    finally:
        server.terminate()
        server.wait(30)


class _ScriptedFeedbackPolicy:
    """A completion policy whose card says it was trained with the top 2 results (3 words each) in its prompt."""

    name = "scripted-feedback"

    def __init__(self) -> None:
        from deepretrieval.policies.card import PolicyCard

        self.card = PolicyCard(Prompting("feedback_expansion", prefill="<answer>", query_mode="expand",
                                         feedback=2, feedback_words=3))  # fmt: skip
        self.prompts: list = []

    def complete(self, prompts, prompting):
        self.prompts += prompts
        return ["<answer>pyrexia</answer>" for _ in prompts]


def test_a_policy_trained_with_feedback_reads_the_results_of_the_given_index(tiny: dict) -> None:
    policy = _ScriptedFeedbackPolicy()
    with pytest.raises(ValueError, match="give an index to read them from"):
        Rewriter(policy)
    retriever = tiny["retriever"]
    (result,) = Rewriter(policy, feedback_from=retriever).rewrite(["fever medicine"])
    assert result.query == "fever medicine pyrexia" and result.format_ok  # expand mode, as the card says
    (ranking,) = retriever.search(["fever medicine"], 2)
    shown = [f"- {' '.join(retriever.text(doc).split()[:3])}" for doc in ranking.doc_ids]
    user = policy.prompts[0][1]["content"]
    assert user.startswith("Request: fever medicine\nTop results:\n" + "\n".join(shown) + "\n")
