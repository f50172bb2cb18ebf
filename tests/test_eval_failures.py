"""An evaluation whose examples could not be judged never passes for a result: a search engine answering
500 / 429 / malformed JSON, an OpenAI endpoint that is down or answers garbage, a retrieval service that
went away. The metric over no judged example is null (never 0.0), the table shows ``-`` and
``judged/total``, each failure record keeps its cause, and eval exits 1 (``--max-failures`` for the rest).
All the failing servers are real HTTP servers on loopback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from _service_helpers import LiveService
from deepretrieval.evaluation import evaluate, format_table, markdown_report
from deepretrieval.evaluation.suite import SuiteResult
from deepretrieval.policies import load_policy
from deepretrieval.retrievers import open_retriever
from deepretrieval.retrievers.bm25 import BM25Retriever
from deepretrieval.retrievers.corpus import Corpus
from deepretrieval.rewards import BatchReward, MetricReward
from deepretrieval.serve.retrieval_service import IndexSpec
from deepretrieval.tasks import load_task
from standin import Fault, StandIn

DOCS = {"d1": "fever treated with antipyretic medicine", "d2": "a flat tyre loses air pressure"}
FAST_RETRIES = ["--set", "retriever.options.attempts=2", "--set", "retriever.options.backoff_s=0.01"]


def _cli(args: list[str], cache: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("NCBI_API_KEY", "DEEPRETRIEVAL_OFFLINE")}
    return subprocess.run(
        [sys.executable, "-m", "deepretrieval.cli", "eval", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**env, "DEEPRETRIEVAL_CACHE": str(cache), "OPENAI_API_KEY": "test-key"},
    )


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def _results(out: Path) -> tuple[list[dict], list[list[dict]]]:
    summaries = json.loads((out / "results.json").read_text())["policies"]
    rows = [[json.loads(line) for line in (out / s["per_query"]).read_text().splitlines()] for s in summaries]
    return summaries, rows


@pytest.mark.parametrize(
    "fault, cause",
    [
        ("500", "server error (HTTP 500)"),
        ("429", "rate limited (HTTP 429)"),
        ("malformed", "a body that is not JSON"),
    ],
)
def test_a_search_engine_that_always_fails_is_no_result(
    literature: Path, tmp_path: Path, fault: str, cause: str
) -> None:
    out = tmp_path / "out"
    with StandIn("pubmed", literature / "clef-tar-2017", faults=[Fault(fault)], limits=None) as server:
        proc = _cli(
            ["--task", "literature", "--data", str(literature / "pubmed-pico"), "--split", "test"]
            + ["--engine", "pubmed", "--engine-url", server.engine_url, "--limit", "3", "--out", str(out)]
            + FAST_RETRIES,
            tmp_path / "cache",
        )
    assert proc.returncode == 1, proc.stderr
    (error,) = _errors(proc.stderr)
    assert "original: none of the 3 examples could be judged; first: search failed: pubmed:" in error
    assert cause in error and "Traceback" not in proc.stderr
    header, _, row = proc.stdout.splitlines()[:3]
    assert header.split()[-1] == "judged" and row.split()[1:] == ["-", "-", "-", "0/3"]
    (summary,), (records,) = _results(out)
    assert summary["metrics"] == {"recall@3000": None, "precision": None, "retrieved": None}
    assert (summary["queries"], summary["judged"], summary["failures"]) == (3, 0, 3)
    assert all(r["metrics"] is None and cause in r["failure"] for r in records)
    assert "| `original` | - | - | - | 0/3 |" in (out / "results.md").read_text()


def test_some_failures_are_counted_and_max_failures_decides(literature: Path, tmp_path: Path) -> None:
    """One topic of three keeps failing (its term holds 'melasma'): a mean over two, shown as 2/3; exit 0
    without a limit, 1 over ``--max-failures 0``."""
    args = [
        "--task",
        "literature",
        "--data",
        str(literature / "pubmed-pico"),
        "--split",
        "test",
        "--limit",
        "3",
    ]
    faults = [Fault("500", match="melasma")]
    with StandIn("pubmed", literature / "clef-tar-2017", faults=faults, limits=None) as server:
        args += ["--engine", "pubmed", "--engine-url", server.engine_url, *FAST_RETRIES]
        lenient = _cli([*args, "--out", str(tmp_path / "lenient")], tmp_path / "cache")
        strict = _cli([*args, "--max-failures", "0"], tmp_path / "cache")
        tolerant = _cli([*args, "--max-failures", "1"], tmp_path / "cache")
    assert lenient.returncode == 0, lenient.stderr
    assert "warning: original: 1 of 3 examples could not be judged; first: search failed:" in lenient.stderr
    assert lenient.stdout.splitlines()[2].split()[-1] == "2/3"
    (summary,), (records,) = _results(tmp_path / "lenient")
    assert summary["judged"] == 2 and "HTTP 500" in summary["first_failure"]
    failed = [r for r in records if "failure" in r]
    assert len(failed) == 1 and failed[0]["id"] == "pubmed-test-0" and failed[0]["metrics"] is None
    judged = [r["metrics"]["recall@3000"] for r in records if r["metrics"]]
    assert summary["metrics"]["recall@3000"] == pytest.approx(sum(judged) / 2)
    assert strict.returncode == 1 and strict.stdout == lenient.stdout  # the table is shown all the same
    (error,) = _errors(strict.stderr)
    assert (
        "original: 1 of 3 examples could not be judged, over --max-failures 0; first: search failed" in error
    )
    assert tolerant.returncode == 0, tolerant.stderr


class ChatEndpoint(BaseHTTPRequestHandler):
    """An OpenAI-compatible endpoint that answers every chat completion with ``reply`` (status, body)."""

    reply: tuple[int, bytes] = (500, b'{"error": {"message": "overloaded"}}')

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        status, body = self.reply
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def tiny_beir(tmp_path: Path) -> Path:
    folder = tmp_path / "beir"
    (folder / "qrels").mkdir(parents=True)
    queries = {"q1": "fever medicine", "q2": "flat tyre"}
    (folder / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": k, "text": v}) + "\n" for k, v in DOCS.items())
    )
    (folder / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": k, "text": v}) + "\n" for k, v in queries.items())
    )
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\n")
    return folder


@pytest.fixture
def chat_endpoint() -> Iterator[type[ChatEndpoint]]:
    handler = type("Endpoint", (ChatEndpoint,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    handler.url = f"http://127.0.0.1:{server.server_address[1]}/v1"  # type: ignore[attr-defined]
    yield handler
    server.shutdown()
    server.server_close()


def _dead_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


@pytest.mark.parametrize(
    "reply, cause",
    [
        ((500, b'{"error": {"message": "overloaded"}}'), "HTTP 500 after 2 attempts"),
        ((200, b'{"not": "a completion"}'), "the endpoint's answer is not a chat.completion object"),
        (None, "after 2 attempts"),  # nothing listens on the port
    ],
)
def test_an_openai_endpoint_that_fails_is_no_result(
    tiny_beir: Path, chat_endpoint, tmp_path: Path, reply, cause: str
) -> None:
    if reply is not None:
        chat_endpoint.reply = reply
    url = chat_endpoint.url if reply is not None else _dead_port()
    out = tmp_path / "out"
    proc = _cli(
        [
            "--task",
            "beir",
            "--data",
            str(tiny_beir),
            "--policy",
            "original,openai:m",
            "--openai-base-url",
            url,
        ]
        + ["--openai-retries", "1", "--out", str(out)],
        tmp_path / "cache",
    )
    assert proc.returncode == 1, proc.stderr
    (error,) = _errors(proc.stderr)
    assert error.startswith(
        "error: openai:m: none of the 2 examples could be judged; first: generation failed:"
    )
    assert cause in error
    summaries, (_, records) = _results(out)
    assert summaries[0]["metrics"]["ndcg@10"] > 0 and summaries[1]["metrics"] == {
        "ndcg@10": None,
        "recall@100": None,
    }
    assert all(cause in r["failure"] and r["metrics"] is None for r in records)
    markdown = (out / "results.md").read_text()
    assert "| `openai:m` | - | - | 0/2 |" in markdown and "p=nan" not in markdown


def test_a_retrieval_service_that_went_away_gives_failures_with_their_cause(
    tiny_beir: Path, tmp_path: Path
) -> None:
    index = BM25Retriever.build(
        Corpus(list(DOCS), list(DOCS.values())),
        tmp_path / "index",
        show_progress=False,
    )
    with LiveService([IndexSpec("tiny", index.index_dir)]) as live:
        remote = open_retriever("remote", endpoint=live.url, retries=1, backoff_s=0)
        task = load_task("beir", tiny_beir, retriever=remote)
        before = evaluate(task, load_policy("original"), "test", progress=False)
    later = tmp_path / "later.txt"
    later.write_text("fever\ntyre\n")  # queries not yet searched (the task caches what it searched)
    after = evaluate(task, load_policy(f"predictions:{later}"), "test", progress=False)
    # training: a sample the judge could not score has no reward (left out of the update), cause kept
    batch = BatchReward(task, MetricReward()).score(
        ["<answer>antipyretic</answer>", "no answer here"], task.examples("test")
    )
    task.close()
    assert batch.rewards[0] is None and batch.failed == [True, False] and batch.rewards[1] == -2.0
    assert "unavailable for POST /search" in batch.failures[0].reason and batch.failures[1] is None
    assert before.metrics["ndcg@10"] == 1.0 and not before.failures
    assert after.metrics == {"ndcg@10": None, "recall@100": None} and after.judged == 0
    assert set(after.failures) == {"q1", "q2"}
    assert all(
        "search failed: " in f and "unavailable for POST /search" in f for f in after.failures.values()
    )
    suite = SuiteResult([before, after], None, before.policy, task.examples("test"))
    assert (
        suite.failure_problem()
        == f"{after.policy}: none of the 2 examples could be judged; first: {after.failures['q1']}"
    )
    assert format_table([after]).splitlines()[2].split()[1:] == ["-", "-", "0/2"]
    assert "| `predictions:later.txt` | - | - | 0/2 |" in markdown_report([after])
