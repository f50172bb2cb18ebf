"""The ``remote`` retriever against a real retrieval service on loopback: a drop-in replacement for the
in-process index (rankings, fingerprint, analysis, texts, tasks and ``deepretrieval eval``), with retries
and ``Ranking.failure`` when the service is gone."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import numpy as np
import pytest

from _service_helpers import LiveService
from _train_helpers import write_tiny_beir
from deepretrieval.cli import main
from deepretrieval.config import RetrieverConfig
from deepretrieval.registry import Registry
from deepretrieval.retrievers import DateRange, IndexMismatchError, open_retriever, register
from deepretrieval.retrievers import registry as registry_module
from deepretrieval.retrievers.bm25 import BM25Retriever
from deepretrieval.retrievers.corpus import Corpus
from deepretrieval.retrievers.web.remote import RemoteRetriever, ServiceUnavailable
from deepretrieval.serve.retrieval_service import IndexSpec, ServiceLimits
from deepretrieval.tasks import load_task
from deepretrieval.tasks.beir import read_queries


@pytest.fixture(scope="module")
def claims(scifact_dir: Path) -> list[str]:
    return list(read_queries(scifact_dir / "queries.jsonl").values())


@pytest.fixture(scope="module")
def live(scifact_bm25: BM25Retriever) -> Iterator[LiveService]:
    with LiveService([IndexSpec("scifact", scifact_bm25.index_dir)]) as service:
        yield service


@pytest.fixture
def remote(live: LiveService) -> Iterator[RemoteRetriever]:
    retriever = open_retriever("remote", endpoint=live.url)
    yield retriever
    retriever.close()


def _same(got, expected) -> None:
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        assert a.doc_ids == b.doc_ids and a.total == b.total and not a.failed
        assert a.scores.dtype == np.float32 and np.array_equal(a.scores, b.scores)


def test_remote_is_the_in_process_index(remote: RemoteRetriever, scifact_bm25, claims) -> None:
    assert isinstance(remote, RemoteRetriever) and remote.index == "scifact"
    assert remote.fingerprint == scifact_bm25.fingerprint
    assert remote.corpus_fingerprint == scifact_bm25.corpus_fingerprint
    assert remote.kind == "bm25" and len(remote) == len(scifact_bm25)
    odd = ["", "   ", "the of and", "fever fever fever fever", "x" * 3000, "naïve café Ünïcode", "a\x00b"]
    for k in (1, 10, 101):
        _same(remote.search(claims + odd, k), scifact_bm25.search(claims + odd, k))
    assert remote.search([], 10) == []
    texts = ["Penetrance of running dogs", "", "The of AND", "résumé café", claims[3], "a\udcffb"]
    assert [remote.analyze(t) for t in texts] == [scifact_bm25.analyze(t) for t in texts]
    ids = [*scifact_bm25.docs.ids[:3], scifact_bm25.docs.ids[-1]]
    assert remote.texts(ids) == [scifact_bm25.text(i) for i in ids]
    assert remote.text(ids[0]) == scifact_bm25.text(ids[0])
    with pytest.raises(KeyError, match="unknown document id 'nope'"):
        remote.text("nope")


def test_small_batches_and_service_limits(live: LiveService, scifact_bm25, claims) -> None:
    small = open_retriever("remote", endpoint=live.url, batch_size=7)
    _same(small.search(claims[:50], 20), scifact_bm25.search(claims[:50], 20))
    small.close()
    limits = ServiceLimits(max_queries=5, max_k=30, max_query_chars=200, max_body_bytes=1500)
    with LiveService([IndexSpec("scifact", scifact_bm25.index_dir)], limits) as tight:
        client = open_retriever("remote", endpoint=tight.url)
        assert client.batch_size == 5
        long_query = "vitamin " * 40  # 320 characters: over the service's limit
        got = client.search([*claims[:23], long_query, claims[24]], 30)
        _same(got[:23] + got[24:], scifact_bm25.search([*claims[:23], claims[24]], 30))
        assert got[23].failed and "over the retrieval service's limit of 200" in got[23].error
        with pytest.raises(ValueError, match="k=31 is over the retrieval service's limit of 30; restart it"):
            client.search(claims[:2], 31)
        client.close()


def test_surrogates_in_queries_behave_as_in_process(remote: RemoteRetriever, scifact_bm25) -> None:
    queries = ["vitamin \udcff deficiency", "\ud800"]
    _same(remote.search(queries, 10), scifact_bm25.search(queries, 10))


def test_bad_arguments_are_refused_as_in_process(remote: RemoteRetriever, scifact_bm25) -> None:
    with pytest.raises(ValueError, match="k must be >= 1"):
        remote.search(["a"], 0)
    with pytest.raises(TypeError, match="not one string"):
        remote.search("fever", 3)
    with pytest.raises(ValueError, match="bm25 retriever cannot filter by publication date"):
        scifact_bm25.search(["a"], 3, dates=[DateRange(end="2001/01/01")])
    with pytest.raises(ValueError, match="HTTP 400.*bm25 retriever cannot filter by publication date"):
        remote.search(["a"], 3, dates=[DateRange(end="2001/01/01")])
    _same(remote.search(["fever"], 3, dates=[None]), scifact_bm25.search(["fever"], 3, dates=[None]))


def test_options_are_checked(live: LiveService, scifact_bm25, tmp_path: Path) -> None:
    with pytest.raises(
        ValueError, match="unknown remote retriever option 'endpont'; options: endpoint, index"
    ):
        open_retriever("remote", endpont=live.url)
    with pytest.raises(ValueError, match="endpoint must be an http"):
        open_retriever("remote", endpoint="localhost:8000")
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1, got 0"):
        open_retriever("remote", endpoint=live.url, batch_size=0)
    with pytest.raises(ValueError, match="timeout_s must be a number > 0"):
        open_retriever("remote", endpoint=live.url, timeout_s=0)
    with pytest.raises(ValueError, match="serves no index 'wiki'; it serves 'scifact'"):
        open_retriever("remote", endpoint=live.url, index="wiki")
    with pytest.raises(ValueError, match="takes no corpus or index_dir"):
        open_retriever("remote", endpoint=live.url, index_dir=tmp_path)
    tiny = BM25Retriever.build(Corpus(["a"], ["fever"]), tmp_path / "tiny", show_progress=False)
    with LiveService(
        [IndexSpec("scifact", scifact_bm25.index_dir), IndexSpec("tiny", tiny.index_dir)]
    ) as two:
        with pytest.raises(ValueError, match="serves 'scifact', 'tiny': choose one"):
            open_retriever("remote", endpoint=two.url)
        named = open_retriever("remote", endpoint=two.url, index="tiny")
        assert named.fingerprint == tiny.fingerprint and named.search(["fever"], 1)[0].doc_ids == ["a"]
        named.close()


def test_unreachable_service_fails_clearly_then_gives_failures(scifact_bm25, claims) -> None:
    with LiveService([IndexSpec("scifact", scifact_bm25.index_dir)]) as live:
        client = open_retriever("remote", endpoint=live.url, retries=1, backoff_s=0)
        url = live.url
    got = client.search(claims[:3], 10)  # the service is gone: failures, never an empty "bad query"
    assert all(r.failed and "unavailable for POST /search after 2 attempts" in r.error for r in got)
    with pytest.raises(ServiceUnavailable, match="is `deepretrieval serve-retriever` running there"):
        client.text(scifact_bm25.docs.ids[0])
    with pytest.raises(ConnectionError, match=f"retrieval service {url} unavailable for GET /indexes"):
        open_retriever("remote", endpoint=url, retries=0)
    client.close()


def test_an_endpoint_that_is_not_a_retrieval_service_is_named() -> None:
    class Other(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            body = b'{"indexes": "none here"}'
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Other)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    with pytest.raises(ValueError, match="does not answer GET /indexes as a deepretrieval retrieval service"):
        open_retriever("remote", endpoint=url)
    server.shutdown()


class FlakyProxy:
    """Forwards to a service, answering the first ``failures`` searches with 503 (a busy service), or with
    the service's answer passed through ``garble`` when one is given."""

    def __init__(self, target: str, failures: int, garble: Callable[[dict], dict] | None = None):
        self.target, self.failures, self.searches, self.garble = target, failures, 0, garble
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self._forward(httpx.get(proxy.target + self.path))

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                proxy.searches += 1
                if proxy.searches <= proxy.failures and proxy.garble is not None:
                    answer = httpx.post(proxy.target + self.path, content=body).json()
                    self._forward(httpx.Response(200, json=proxy.garble(answer)))
                elif proxy.searches <= proxy.failures:
                    self._forward(httpx.Response(503, json={"detail": "busy"}))
                else:
                    self._forward(httpx.post(proxy.target + self.path, content=body))

            def _forward(self, response: httpx.Response) -> None:
                self.send_response(response.status_code)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(response.content)))
                self.end_headers()
                self.wfile.write(response.content)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_transient_failures_are_retried(live: LiveService, scifact_bm25, claims) -> None:
    proxy = FlakyProxy(live.url, failures=2)
    client = open_retriever("remote", endpoint=proxy.url, retries=2, backoff_s=0)
    _same(client.search(claims[:5], 10), scifact_bm25.search(claims[:5], 10))
    assert proxy.searches == 3  # two 503s, then the answer
    proxy.failures = proxy.searches + 3  # more failures than retries: the queries fail, nothing raises
    got = client.search(claims[:5], 10)
    assert all(r.failed and "HTTP 503: busy" in r.error for r in got)
    client.close()
    proxy.server.shutdown()


def _first(change: Callable[[dict], None]) -> Callable[[dict], dict]:
    def garble(answer: dict) -> dict:
        change(answer["results"][0])
        return answer

    return garble


@pytest.mark.parametrize(
    "garble, reason",
    [
        (lambda a: {**a, "results": a["results"][:-1]}, "4 results for 5 queries"),
        (_first(lambda r: r.update(doc_ids=[None, {"a": 1}], scores=[1.0, 0.5])), "ids that are not strings"),
        (_first(lambda r: r.update(total=-5)), "a total of -5"),
        (_first(lambda r: r.update(scores=r["scores"][:-1])), "not one finite number per id"),
        (
            _first(lambda r: r.update(doc_ids=r["doc_ids"] * 2, scores=r["scores"] * 2)),
            "20 ids (10 distinct)",
        ),
    ],
)
def test_inconsistent_answers_are_retried_then_fail_with_their_reason(
    live: LiveService, scifact_bm25, claims, garble, reason
) -> None:
    """It took them as they came: ids "None" and "{'a': 1}", a total of -5, ids beyond k."""
    proxy = FlakyProxy(live.url, failures=1, garble=garble)
    client = open_retriever("remote", endpoint=proxy.url, retries=2, backoff_s=0)
    _same(client.search(claims[:5], 10), scifact_bm25.search(claims[:5], 10))  # retried: the next answer
    assert proxy.searches == 2
    proxy.failures = proxy.searches + 3  # garbled every time: failed searches that say why
    got = client.search(claims[:5], 10)
    assert all(r.failed and "inconsistent answer: " in r.error and reason in r.error for r in got)
    client.close()
    proxy.server.shutdown()


def test_another_index_behind_the_same_name_is_refused(scifact_bm25, tmp_path: Path) -> None:
    other = BM25Retriever.build(Corpus(["a"], ["fever"]), tmp_path / "other", show_progress=False)
    with LiveService([IndexSpec("sf", scifact_bm25.index_dir)]) as first:
        port = int(first.url.rsplit(":", 1)[1])
        client = open_retriever("remote", endpoint=first.url, retries=0)
    with (
        LiveService([IndexSpec("sf", other.index_dir)], port=port),
        pytest.raises(IndexMismatchError, match="now serves another index as 'sf'.*open the retriever again"),
    ):
        client.search(["fever"], 3)
    client.close()


class WordsBM25(BM25Retriever):
    """An index kind that declares no local analyzer: its clients analyse through ``POST /analyze``."""

    kind = "bm25-words"
    local_analyzer = False


def test_kinds_without_a_local_analyzer_analyse_through_the_service(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(registry_module, "_KINDS", Registry("retriever", registry_module._BUILTIN))
    register("bm25-words", WordsBM25)
    index = WordsBM25.build(
        Corpus(["a", "b"], ["running dogs", "the cats"]), tmp_path / "w", show_progress=False
    )
    with LiveService([IndexSpec("w", index.index_dir)]) as live:
        assert httpx.get(f"{live.url}/indexes").json()["indexes"][0]["analyzer"] == "remote"
        client = open_retriever("remote", endpoint=live.url)
        assert client.kind == "bm25-words"
        for text in ["Running dogs", "the of", "", "x\udcffy"]:
            assert client.analyze(text) == index.analyze(
                text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
            )
        client.close()


# --------------------------------------------------------------------------- tasks and eval


def test_a_task_judged_remotely_equals_the_in_process_task(
    live: LiveService, scifact_dir: Path, scifact_task, tmp_path: Path
) -> None:
    remote_task = load_task(
        "beir",
        scifact_dir,
        retriever=RetrieverConfig(kind="remote", options={"endpoint": live.url}),
        metrics=["ndcg@10", "recall@100"],
    )
    examples = scifact_task.examples("test")
    answers = [e.original for e in examples]
    assert remote_task.fingerprint == scifact_task.fingerprint
    assert remote_task.measure(answers, examples) == scifact_task.measure(answers, examples)
    assert remote_task.analyze_many(answers[:20]) == scifact_task.analyze_many(answers[:20])
    remote_task.close()
    other = write_tiny_beir(tmp_path / "tiny")
    with pytest.raises(
        IndexMismatchError, match="was built from another corpus than .*serve an index of this corpus"
    ):
        load_task("beir", other, retriever=RetrieverConfig(kind="remote", options={"endpoint": live.url}))


def test_eval_through_the_service_equals_in_process(
    live: LiveService, scifact_dir: Path, scifact_bm25, tmp_path: Path
) -> None:
    local, remote = tmp_path / "local", tmp_path / "remote"
    common = ["eval", "--task", "beir", "--data", str(scifact_dir), "--metrics", "ndcg@10,recall@100"]
    assert main([*common, "--index", str(scifact_bm25.index_dir), "--out", str(local)]) == 0
    assert main([*common, "--endpoint", live.url, "--index", "scifact", "--out", str(remote)]) == 0
    by_service, in_process = (
        json.loads((out / "results.json").read_text())["policies"][0] for out in (remote, local)
    )
    assert by_service["metrics"] == in_process["metrics"]
    per_query = [
        (out / summary["per_query"]).read_text()
        for out, summary in ((remote, by_service), (local, in_process))
    ]
    assert per_query[0] == per_query[1]  # every query's metrics equal
    assert abs(by_service["metrics"]["ndcg@10"] - 0.6762) < 5e-4  # the README's figure
    assert main([*common, "--endpoint", live.url, "--retriever", "dense"]) == 2
