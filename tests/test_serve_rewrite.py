"""The query-rewriting API on a real uvicorn server on loopback, with the tiny policy: rewrites equal to the
policy's own, search hits, dynamic batching, input limits and 4xx errors, the two commands, and a server
that does not get stuck (clients that leave, a full queue, deadlines, half-sent bodies, signals)."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from _index_helpers import task_index
from _serve_helpers import raw_request, read_answer, running, until, write_tiny_policy
from _train_helpers import write_tiny_beir
from deepretrieval.config import PromptingConfig
from deepretrieval.policies.hf import GenerationStopped, HFPolicy
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


# --------------------------------------------------------------------------- a server that does not get stuck


class _Gate:
    """The tiny policy behind a gate: each call waits until the test opens it, so that the worker is busy
    while the test queues requests; records the size of each generation call that went through."""

    def __init__(self, policy: HFPolicy) -> None:
        self.policy, self.name, self.card = policy, policy.name, policy.card
        self.fingerprint = policy.fingerprint
        self.entered, self.opened = threading.Event(), threading.Event()
        self.generated: list[int] = []

    def complete(self, prompts, prompting, **options):
        self.entered.set()
        assert self.opened.wait(120), "the test never opened the gate"
        self.generated.append(len(prompts))
        return self.policy.complete(prompts, prompting, **options)


def _batching(url: str) -> dict:
    return httpx.get(f"{url}/health", timeout=30).json()["batching"]


def test_queries_of_clients_that_left_are_never_generated(tiny: dict, caplog) -> None:
    gate = _Gate(tiny["policy"])
    app = create_app(Rewriter(gate, FOUR), max_batch=8, max_wait_ms=0)
    with running(app) as url, ThreadPoolExecutor(1) as pool:
        first = pool.submit(httpx.post, f"{url}/rewrite", json={"query": "fever medicine"}, timeout=120)
        assert gate.entered.wait(120)  # the worker holds the first query; what comes next queues
        leaving = []
        for i in range(5):  # 5 clients send 8 queries each, then hang up without reading the answer
            body = json.dumps({"queries": [f"query {i} {j}" for j in range(8)]}).encode()
            leaving.append(raw_request(url, "/rewrite", body))
            until(lambda i=i: _batching(url)["queued"] == 8 * (i + 1), f"{8 * (i + 1)} queued queries")
        for sock in leaving:
            sock.close()
        until(lambda: _batching(url)["queued"] == 0, "the queries of the clients that left to be dropped", 30)
        gate.opened.set()
        assert first.result().status_code == 200, first.result().text
        assert httpx.post(f"{url}/rewrite", json={"query": "heart attack"}, timeout=120).status_code == 200
        stats = _batching(url)
    assert gate.generated == [1, 1]  # only the two clients that stayed were generated for
    assert (stats["items"], stats["abandoned"], stats["queued"]) == (2, 40, 0)
    gc.collect()  # an asyncio future nobody awaited is reported when it is collected
    assert not [record.getMessage() for record in caplog.records if record.name == "asyncio"]


def test_a_full_queue_answers_503_with_retry_after(tiny: dict) -> None:
    gate = _Gate(tiny["policy"])
    limits = Limits(max_queries=4)
    app = create_app(Rewriter(gate, FOUR), limits=limits, max_batch=2, max_wait_ms=0, max_queue=4)
    with running(app) as url, ThreadPoolExecutor(2) as pool:
        first = pool.submit(httpx.post, f"{url}/rewrite", json={"query": "fever medicine"}, timeout=120)
        assert gate.entered.wait(120)
        queued = pool.submit(httpx.post, f"{url}/rewrite", json={"queries": QUERIES + ["sore"]}, timeout=120)
        until(lambda: _batching(url)["queued"] == 4, "4 queued queries")
        full = httpx.post(f"{url}/rewrite", json={"query": "one too many"}, timeout=60)
        gate.opened.set()
        assert first.result().status_code == 200 and queued.result().status_code == 200
        stats = _batching(url)
    assert full.status_code == 503 and int(full.headers["retry-after"]) >= 1
    assert "the server is busy (4 of 4 queries queued): retry after" in full.json()["error"]["message"]
    assert stats["refused"] == 1 and stats["items"] == 5 and stats["max_queue"] == 4
    with pytest.raises(ValueError, match="could never take a request of 64: raise --max-queue"):
        create_app(Rewriter(gate, FOUR), max_queue=8)


def test_a_request_not_taken_up_by_its_deadline_gets_504_one_under_way_is_waited_for(tiny: dict) -> None:
    gate = _Gate(tiny["policy"])
    app = create_app(Rewriter(gate, FOUR), max_wait_ms=0, timeout_s=0.5)
    with running(app) as url, ThreadPoolExecutor(1) as pool:
        first = pool.submit(httpx.post, f"{url}/rewrite", json={"query": "fever medicine"}, timeout=120)
        assert gate.entered.wait(120)  # under way: it may take longer than the deadline
        late = httpx.post(f"{url}/rewrite", json={"query": "heart attack"}, timeout=120)  # still queued
        gate.opened.set()
        assert first.result().status_code == 200
        chat = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
        assert httpx.post(f"{url}/v1/chat/completions", json=chat, timeout=120).status_code == 200
    assert late.status_code == 504 and int(late.headers["retry-after"]) >= 1
    assert "not taken up within the server's 0.5 s deadline" in late.json()["error"]["message"]
    assert gate.generated == [1, 1]


@pytest.fixture(scope="module")
def endless(tiny: dict) -> HFPolicy:
    """A tiny policy that never writes an end of turn: every generation runs to its cap."""
    return HFPolicy(str(write_tiny_policy(tiny["root"] / "endless", eos_bias=-100.0)))


def test_generation_stops_between_tokens_when_asked(endless: HFPolicy) -> None:
    asked = []

    def should_stop() -> bool:
        asked.append(True)
        return len(asked) >= 3

    prompting = Prompting("classic_ir", prefill="<answer>", max_new_tokens=800)
    with pytest.raises(GenerationStopped):
        endless.complete([[{"role": "user", "content": "fever"}]] * 2, prompting, should_stop=should_stop)
    assert len(asked) == 3  # asked after each token: stopped after the third of 800
    (whole,) = endless.complete(
        [[{"role": "user", "content": "fever"}]], replace(prompting, max_new_tokens=5)
    )
    assert len(endless.tokenizer(whole.removeprefix("<answer>"), add_special_tokens=False)["input_ids"]) >= 5


def test_a_running_generation_stops_once_its_client_has_left(endless: HFPolicy) -> None:
    app = create_app(Rewriter(endless, PromptingConfig(max_new_tokens=800)), max_batch=4, max_wait_ms=0)
    with running(app) as url:
        client = raw_request(url, "/rewrite", json.dumps({"queries": QUERIES}).encode())
        until(lambda: _batching(url)["running"] == 3, "the generation to start")
        client.close()
        until(lambda: _batching(url)["stopped_batches"] == 1, "the generation to stop")
        stats = _batching(url)
    assert (stats["batches"], stats["items"], stats["running"]) == (1, 3, 0)


def test_a_body_that_stops_short_gets_408(tiny: dict) -> None:
    app = create_app(Rewriter(tiny["policy"], FOUR), limits=Limits(body_timeout_s=0.5))
    with running(app) as url:
        client = raw_request(url, "/rewrite", b'{"query": "fev', declared=100)
        status, headers, body = read_answer(client)
        client.close()
        assert httpx.post(f"{url}/rewrite", json={"query": "fever"}, timeout=60).status_code == 200
    assert status == 408 and headers["connection"] == "close"
    assert "the request body stopped arriving (nothing for 0.5 s)" in json.loads(body)["error"]["message"]


# `deepretrieval ...` with Python's own Ctrl-C handler: a job started in the background (a CI runner, nohup)
# inherits SIGINT ignored, and uvicorn re-raises the signal it caught under the handler it found (exit 0).
CTRL_C_AS_IN_A_TERMINAL = (
    "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "from deepretrieval.cli import main; sys.exit(main(sys.argv[1:]))"
)


@pytest.mark.parametrize(
    "signal_number, exit_code", [(signal.SIGTERM, -signal.SIGTERM), (signal.SIGINT, 130)]
)
def test_serve_answers_in_flight_requests_503_and_exits_on_a_signal(
    endless: HFPolicy, tmp_path: Path, signal_number: int, exit_code: int
) -> None:
    server = subprocess.Popen(
        [sys.executable, "-c", CTRL_C_AS_IN_A_TERMINAL, "serve", "--model", endless.model_path, "--port", "0",
         "--max-new-tokens", "800", "--max-batch", "2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=_env(tmp_path),
    )  # fmt: skip
    try:
        started = ""
        while not started.startswith("serving") and server.poll() is None:
            started = server.stderr.readline()  # after the model's loading messages
        assert started.startswith("serving endless on http://127.0.0.1:"), started + server.stderr.read()
        url = started.split()[3]
        with ThreadPoolExecutor(1) as pool:  # 8 queries: 4 generation calls of 800 tokens, one at a time
            reply = pool.submit(
                httpx.post, f"{url}/rewrite", json={"queries": QUERIES * 2 + ["a", "b"]}, timeout=600
            )
            until(lambda: _batching(url)["running"] == 2, "the generation to start", 120)
            server.send_signal(signal_number)
            answer = reply.result()
        assert server.wait(120) == exit_code
    finally:
        server.kill()
        server.wait(30)
    assert answer.status_code == 503 and answer.json()["error"]["message"] == "the server is shutting down"
    assert "Traceback" not in server.stderr.read()


def test_serve_caps_an_untrained_model_at_32_new_tokens(tiny: dict, tmp_path: Path) -> None:
    from _train_helpers import write_tiny_model
    from deepretrieval.cli import build_parser
    from deepretrieval.cli.serve import build_app

    untrained = str(write_tiny_model(tmp_path / "untrained"))  # no policy card
    cases = [
        ([untrained], 32),  # what the embedded SmolLM2 gets
        ([untrained, "--reasoning"], 256),  # room to think
        ([untrained, "--max-new-tokens", "7"], 7),
        ([str(tiny["model"])], 64),  # the card's (trained without reasoning: 64)
    ]
    for flags, expected in cases:
        app = build_app(build_parser().parse_args(["serve", "--model", *flags]))
        with running(app) as url:
            assert httpx.get(f"{url}/health").json()["prompting"]["max_new_tokens"] == expected, flags
