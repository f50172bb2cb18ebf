"""The retrieval service over real indexes and real HTTP on loopback: answers equal to the in-process
index, coalesced concurrent searches, clear 4xx refusals, a service that does not get stuck (clients that
leave, deadlines, half-sent bodies), and the ``serve-retriever`` command."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from _serve_helpers import raw_request, read_answer, until
from _service_helpers import LiveService
from deepretrieval.batching import Batcher
from deepretrieval.retrievers.bm25 import BM25Retriever
from deepretrieval.retrievers.corpus import Corpus
from deepretrieval.retrievers.storage.index_store import BadIndexError
from deepretrieval.serve.retrieval_service import IndexSpec, RetrievalService, ServiceLimits
from deepretrieval.tasks.beir import read_queries

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(scope="module")
def claims(scifact_dir: Path) -> list[str]:
    return list(read_queries(scifact_dir / "queries.jsonl").values())


@pytest.fixture(scope="module")
def live(scifact_bm25: BM25Retriever):
    with LiveService([IndexSpec("scifact", scifact_bm25.index_dir)]) as service:
        yield service


@pytest.fixture(scope="module")
def tiny_index(tmp_path_factory: pytest.TempPathFactory) -> BM25Retriever:
    corpus = Corpus(["t1", "t2", "t3"], ["fever and pyrexia", "a flat tyre", "laptop battery fails"])
    return BM25Retriever.build(corpus, tmp_path_factory.mktemp("tiny"), show_progress=False)


# --------------------------------------------------------------------------- index arguments


def test_index_spec_forms(tmp_path: Path) -> None:
    assert IndexSpec.parse(str(tmp_path / "scifact-bm25")) == IndexSpec(
        "scifact-bm25", tmp_path / "scifact-bm25"
    )
    assert IndexSpec.parse("sf=runs/x") == IndexSpec("sf", Path("runs/x"))
    assert IndexSpec.parse("sf=bm25:runs/x") == IndexSpec("sf", Path("runs/x"), "bm25")
    assert IndexSpec.parse("sf=c:/data/x") == IndexSpec("sf", Path("c:/data/x"))  # not a kind
    with pytest.raises(ValueError, match="index name 'a b'.*--index NAME=DIR"):
        IndexSpec.parse("a b=runs/x")


def test_service_refuses_bad_indexes(tmp_path: Path, tiny_index: BM25Retriever) -> None:
    with pytest.raises(BadIndexError, match="holds no deepretrieval index .*deepretrieval index build"):
        RetrievalService([IndexSpec("x", tmp_path)])
    with pytest.raises(ValueError, match="two indexes are named 'x'"):
        RetrievalService([IndexSpec("x", tiny_index.index_dir), IndexSpec("x", tiny_index.index_dir)])
    with pytest.raises(ValueError, match="serve at least one index"):
        RetrievalService([])
    with pytest.raises(BadIndexError, match="it is a bm25 index, not dense"):
        RetrievalService([IndexSpec("x", tiny_index.index_dir, "dense")])


# --------------------------------------------------------------------------- answers


def test_search_answers_equal_the_in_process_index(live: LiveService, scifact_bm25, claims) -> None:
    queries = claims[:40] + ["", "the of and", claims[0]]  # empty, stop words only, a repeat
    expected = scifact_bm25.search(queries, 25)
    hits = httpx.post(f"{live.url}/search", json={"queries": queries, "k": 25}).json()
    columns = httpx.post(f"{live.url}/search", json={"queries": queries, "k": 25, "columns": True}).json()
    assert hits["index"] == "scifact" and hits["fingerprint"] == scifact_bm25.fingerprint
    for ranking, by_hit, by_column in zip(expected, hits["results"], columns["results"], strict=True):
        assert [h["doc_id"] for h in by_hit["hits"]] == ranking.doc_ids == by_column["doc_ids"]
        assert [h["score"] for h in by_hit["hits"]] == ranking.scores.tolist() == by_column["scores"]
        assert by_hit["total"] is None and by_column["total"] is None
    assert hits["results"][-3]["hits"] == [] and hits["results"][-2]["hits"] == []

    with_text = httpx.post(f"{live.url}/search", json={"queries": claims[:2], "k": 3, "text": True}).json()
    for result in with_text["results"]:
        assert [h["text"] for h in result["hits"]] == [scifact_bm25.text(h["doc_id"]) for h in result["hits"]]


def test_texts_analyze_indexes_and_health(live: LiveService, scifact_bm25) -> None:
    ids = scifact_bm25.docs.ids[:5]
    assert httpx.post(f"{live.url}/texts", json={"ids": ids}).json()["texts"] == [
        scifact_bm25.text(i) for i in ids
    ]
    missing = httpx.post(f"{live.url}/texts", json={"ids": [ids[0], "no-such-doc"]})
    assert missing.status_code == 404 and "unknown document id 'no-such-doc'" in missing.json()["detail"]
    texts = ["Running dogs ran", "the of and", "", "Ünïcode naïve café, résumé"]
    terms = httpx.post(f"{live.url}/analyze", json={"texts": texts}).json()["terms"]
    assert terms == [scifact_bm25.analyze(text) for text in texts]

    described = httpx.get(f"{live.url}/indexes").json()
    (info,) = described["indexes"]
    on_disk = json.loads((scifact_bm25.index_dir / "index.json").read_text())
    assert info["name"] == "scifact" and info["kind"] == "bm25" and info["analyzer"] == "local"
    assert info["fingerprint"] == scifact_bm25.fingerprint
    assert info["corpus_fingerprint"] == scifact_bm25.corpus_fingerprint
    assert info["documents"] == len(scifact_bm25) == 5183
    version = scifact_bm25.index_dir / on_disk["version"]
    assert info["bytes"] == sum(p.stat().st_size for p in version.iterdir()) > 0
    assert info["settings"] == scifact_bm25.settings.model_dump()
    assert described["limits"]["max_k"] == 10_000
    assert httpx.get(f"{live.url}/health").json() == {"status": "ok", "indexes": ["scifact"]}


def test_concurrent_requests_are_coalesced_into_one_search(scifact_bm25, claims) -> None:
    """16 clients x 4 queries, with a batch window far longer than the test: the worker waits until the
    64 queries are there (max_batch_queries) and answers all 16 requests with ONE deduplicated search."""
    limits = ServiceLimits(batch_window_ms=600_000, max_batch_queries=64)
    batches = [claims[4 * i : 4 * i + 4] for i in range(15)] + [claims[:4]]  # the last repeats the first
    with LiveService([IndexSpec("scifact", scifact_bm25.index_dir)], limits) as live:
        with ThreadPoolExecutor(16) as pool:
            answers = list(
                pool.map(
                    lambda qs: httpx.post(f"{live.url}/search", json={"queries": qs, "k": 10}, timeout=60),
                    batches,
                )
            )
        assert live.service.indexes["scifact"].searcher.stats()["batches"] == 1
    for queries, answer in zip(batches, answers):
        expected = scifact_bm25.search(queries, 10)
        assert [r["hits"] for r in answer.json()["results"]] == [
            [{"doc_id": d, "score": s} for d, s in zip(r.doc_ids, r.scores.tolist())] for r in expected
        ]


def test_several_indexes_are_served_by_name(scifact_bm25, tiny_index) -> None:
    specs = [IndexSpec("scifact", scifact_bm25.index_dir), IndexSpec("tiny", tiny_index.index_dir)]
    with LiveService(specs) as live:
        unnamed = httpx.post(f"{live.url}/search", json={"queries": ["fever"], "k": 2})
        assert unnamed.status_code == 400 and "serves 'scifact', 'tiny': name one" in unnamed.json()["detail"]
        tiny = httpx.post(f"{live.url}/search", json={"queries": ["fever"], "k": 2, "index": "tiny"}).json()
        assert tiny["fingerprint"] == tiny_index.fingerprint
        assert [h["doc_id"] for h in tiny["results"][0]["hits"]] == ["t1"]
        assert [i["name"] for i in httpx.get(f"{live.url}/indexes").json()["indexes"]] == ["scifact", "tiny"]


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"queries": ["a"], "k": 0}, 400, "k must be an integer from 1 to 10000, got 0"),
        ({"queries": ["a"], "k": 10_001}, 400, "k must be an integer from 1 to 10000"),
        ({"queries": ["a"], "k": True}, 400, "k must be an integer"),
        ({"queries": ["a"], "k": "5"}, 400, "k must be an integer"),
        ({"queries": ["a"]}, 400, "k must be an integer"),
        ({"queries": "a", "k": 5}, 400, "'queries' must be a list of strings"),
        ({"queries": ["a", 3], "k": 5}, 400, "'queries' must be a list of strings"),
        ({"queries": ["a"] * 9, "k": 5}, 413, "9 queries in one request; the limit is 8"),
        ({"queries": ["a" * 101], "k": 5}, 413, "an entry of 'queries' has 101 characters; the limit is 100"),
        (
            {"queries": ["a"], "k": 5, "index": "nope"},
            404,
            "unknown index 'nope'; this service serves 'scifact'",
        ),
        ({"queries": ["a"], "k": 5, "top_k": 3}, 400, "unknown field 'top_k'; fields: queries, k, index"),
        ({"queries": ["a"], "k": 5, "text": "yes"}, 400, "'text' must be true or false"),
        ({"queries": ["a", "b"], "k": 5, "dates": [None]}, 400, "one entry (null or a range) per query (2)"),
        ({"queries": ["a"], "k": 5, "dates": [{"from": "2001"}]}, 400, "a date range is null or"),
        (
            {"queries": ["a"], "k": 5, "dates": [{"end": "2001/01/01"}]},
            400,
            "bm25 retriever cannot filter by",
        ),
        ([1, 2], 400, "request body must be a JSON object, got list"),
    ],
)
def test_bad_search_requests_get_a_clear_4xx(scifact_bm25, body, status, message, limited) -> None:
    answer = httpx.post(f"{limited.url}/search", json=body)
    assert answer.status_code == status
    detail = answer.json()["detail"]
    assert message in detail and "\n" not in detail


@pytest.fixture(scope="module")
def limited(scifact_bm25):
    limits = ServiceLimits(max_queries=8, max_query_chars=100, max_body_bytes=4096)
    with LiveService([IndexSpec("scifact", scifact_bm25.index_dir)], limits) as service:
        yield service


def test_oversized_and_malformed_bodies_are_refused_before_parsing(limited: LiveService) -> None:
    huge = b"{" + b"x" * 10_000  # not JSON either: a 413, not a 400, shows it was never parsed
    declared = httpx.post(f"{limited.url}/search", content=huge)
    assert declared.status_code == 413 and "over the limit of 4096 bytes" in declared.json()["detail"]
    streamed = httpx.post(f"{limited.url}/search", content=iter([huge[:3000], huge[3000:]]))  # chunked
    assert streamed.status_code == 413 and "over the limit of 4096 bytes" in streamed.json()["detail"]
    broken = httpx.post(f"{limited.url}/search", content=b'{"queries": ["a"], "k": ')
    assert broken.status_code == 400 and "request body is not valid JSON" in broken.json()["detail"]
    assert httpx.post(f"{limited.url}/texts", json={"ids": "x"}).status_code == 400
    assert httpx.post(f"{limited.url}/analyze", json={"texts": ["a"], "x": 1}).status_code == 400


def test_a_full_queue_answers_503(scifact_bm25) -> None:
    with LiveService(
        [IndexSpec("scifact", scifact_bm25.index_dir)], ServiceLimits(max_pending_queries=0)
    ) as live:
        busy = httpx.post(f"{live.url}/search", json={"queries": ["fever"], "k": 3})
        assert (
            busy.status_code == 503 and "too many queued searches (0 queries); retry" in busy.json()["detail"]
        )
        assert busy.headers["retry-after"] == "1"  # nothing measured yet: come back in a second
        assert httpx.post(f"{live.url}/search", json={"queries": [], "k": 3}).json()["results"] == []


class _GatedRetriever:
    """A real index whose searches wait until the test opens the gate (the worker is busy meanwhile);
    records how many queries each search had."""

    def __init__(self, retriever: BM25Retriever) -> None:
        self.retriever = retriever
        self.entered, self.opened = threading.Event(), threading.Event()
        self.searched: list[int] = []

    def search(self, queries, k, **options):
        self.entered.set()
        assert self.opened.wait(120), "the test never opened the gate"
        self.searched.append(len(queries))
        return self.retriever.search(queries, k, **options)

    def __getattr__(self, name: str):
        return getattr(self.retriever, name)


def _gated(live: LiveService) -> tuple[_GatedRetriever, Batcher]:
    served = live.service.indexes["scifact"]
    served.retriever = _GatedRetriever(served.retriever)  # type: ignore[assignment]
    return served.retriever, served.searcher  # type: ignore[return-value]


def test_searches_of_clients_that_left_are_dropped(scifact_bm25, claims, caplog) -> None:
    with LiveService([IndexSpec("scifact", scifact_bm25.index_dir)]) as live:
        gate, searcher = _gated(live)
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(
                httpx.post, f"{live.url}/search", json={"queries": claims[:1], "k": 5}, timeout=120
            )
            assert gate.entered.wait(120)
            body = json.dumps({"queries": (claims * 3)[:2000], "k": 1000}).encode()
            leaving = []
            for i in range(5):  # 5 clients send 2,000 queries each, then hang up without reading
                leaving.append(raw_request(live.url, "/search", body))
                until(lambda i=i: searcher.pending == 2000 * (i + 1), f"{i + 1} queued searches")
            for sock in leaving:
                sock.close()
            until(lambda: searcher.pending == 0, "the searches of the clients that left to be dropped", 30)
            gate.opened.set()
            assert first.result().status_code == 200
        later = httpx.post(f"{live.url}/search", json={"queries": claims[1:2], "k": 5}, timeout=120)
        assert later.status_code == 200
        batching = httpx.get(f"{live.url}/indexes").json()["indexes"][0]["batching"]
    assert gate.searched == [1, 1] and batching["abandoned"] == 5 and batching["queued"] == 0
    gc.collect()  # an asyncio future nobody awaited is reported when it is collected
    assert not [record.getMessage() for record in caplog.records if record.name == "asyncio"]


def test_a_search_not_taken_up_by_its_deadline_gets_504(scifact_bm25, claims) -> None:
    limits = ServiceLimits(request_timeout_s=0.5)
    with LiveService([IndexSpec("scifact", scifact_bm25.index_dir)], limits) as live:
        gate, _ = _gated(live)
        with ThreadPoolExecutor(1) as pool:
            search = {"queries": claims[:1], "k": 5}
            first = pool.submit(httpx.post, f"{live.url}/search", json=search, timeout=120)
            assert gate.entered.wait(120)  # under way: waited for, however long it takes
            late = httpx.post(f"{live.url}/search", json={"queries": claims[1:2], "k": 5}, timeout=120)
            gate.opened.set()
            assert first.result().status_code == 200
    assert late.status_code == 504 and int(late.headers["retry-after"]) >= 1
    assert "not taken up within the service's 0.5 s deadline" in late.json()["detail"]
    assert gate.searched == [1]


# --------------------------------------------------------------------------- the command


def test_serve_retriever_command(scifact_bm25, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    command = [sys.executable, "-m", "deepretrieval.cli", "serve-retriever", "--port", "0"]
    server = subprocess.Popen(
        [*command, "--index", f"sf=bm25:{scifact_bm25.index_dir}", "--max-k", "50"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = server.stdout.readline()
        assert line.startswith("retrieval service on http://127.0.0.1:") and "serving sf (bm25)" in line
        url = line.split()[3]
        answer = httpx.post(
            f"{url}/search", json={"queries": ["vitamin D deficiency"], "k": 5}, timeout=60
        ).json()
        expected = scifact_bm25.search(["vitamin D deficiency"], 5)[0]
        assert [h["doc_id"] for h in answer["results"][0]["hits"]] == expected.doc_ids
        assert httpx.get(f"{url}/indexes").json()["limits"]["max_k"] == 50
    finally:
        server.terminate()
        server.wait(timeout=60)
    bad = subprocess.run(
        [*command, "--index", str(tmp_path)], check=False, capture_output=True, text=True, env=env
    )
    assert (
        bad.returncode == 2
        and bad.stderr.startswith("error: ")
        and "holds no deepretrieval index" in bad.stderr
    )
    assert len(bad.stderr.strip().splitlines()) == 1


def test_serve_retriever_times_out_half_sent_bodies_and_logs_one_line_per_dropped_client(
    scifact_bm25, tmp_path: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    server = subprocess.Popen(
        [sys.executable, "-m", "deepretrieval.cli", "serve-retriever", "--port", "0", "--body-timeout-s", "1",
         "--index", f"sf={scifact_bm25.index_dir}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    logged: list[str] = []
    reader = threading.Thread(target=lambda: logged.extend(server.stderr), daemon=True)
    reader.start()
    try:
        url = server.stdout.readline().split()[3]
        body = json.dumps({"queries": ["vitamin D deficiency"] * 50, "k": 10}).encode()
        short = raw_request(url, "/search", body[:40], declared=len(body))  # then nothing more
        status, headers, answer = read_answer(short, timeout_s=30)
        short.close()
        for _ in range(3):  # clients that hang up halfway through their body
            raw_request(url, "/search", body[:40], declared=len(body)).close()
        until(lambda: sum("disconnected while sending its request body" in line for line in logged) == 3,
              "three log lines")  # fmt: skip
        assert httpx.post(f"{url}/search", json={"queries": ["fever"], "k": 3}).status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=60)
        reader.join(30)
    assert status == 408 and headers["connection"] == "close"
    assert (
        json.loads(answer)["detail"] == "the request body stopped arriving (nothing for 1 s); send it whole"
    )
    assert "Traceback" not in "".join(logged) and len(logged) == 3, "".join(logged)
