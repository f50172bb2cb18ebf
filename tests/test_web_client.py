"""The one retry loop of the package (``retrievers.web.client``) against a scripted server on loopback: what is
retried, Retry-After, the backoff budget, refusals, attempts counted, secrets kept out of errors and logs.
Pauses are recorded, never slept (no test here depends on timing)."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from deepretrieval.retrievers.web import client as client_module
from deepretrieval.retrievers.web.client import GaveUp, HttpClient, RequestFailed, Retry, retryable

SECRET = "key-5f2a-never-shown"


class Script:
    """A server answering each request with the next (status, headers) of ``replies`` (200 once spent)."""

    def __init__(self) -> None:
        self.replies: list[tuple[int, dict[str, str]]] = []
        self.requests = 0
        script = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                script.requests += 1
                status, headers = script.replies.pop(0) if script.replies else (200, {})
                body = f'{{"status": {status}, "echo": "{SECRET}"}}'.encode()
                self.send_response(status)
                for name, value in {"content-type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def script() -> Iterator[Script]:
    served = Script()
    yield served
    served.server.shutdown()


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    recorded: list[float] = []
    monkeypatch.setattr(client_module.time, "sleep", recorded.append)
    return recorded


def read(response: httpx.Response) -> int:
    """As an engine reads: 429 / 5xx are worth asking again for, other 4xx are refusals."""
    if response.status_code == 429 or response.status_code >= 500:
        raise retryable(response, f"HTTP {response.status_code}")
    if response.status_code >= 400:
        raise RequestFailed(f"refused (HTTP {response.status_code})")
    return response.json()["status"]


def test_transient_answers_are_retried_honouring_retry_after(script: Script, pauses: list[float]) -> None:
    script.replies = [(503, {}), (429, {"Retry-After": "7"}), (500, {})]
    client = HttpClient("test", Retry(attempts=4, backoff_s=0.5, backoff_cap_s=1.0), timeout_s=5)
    assert client.request("GET", script.url, read) == 200
    assert script.requests == 4 and client.stats.requests == 4 and client.stats.retries == 3
    assert len(pauses) == 3 and 0 <= pauses[0] <= 0.5 and pauses[1] == 7 and 0 <= pauses[2] <= 1.0
    client.close()


def test_the_last_problem_is_reported_when_the_attempts_run_out(script: Script, pauses: list[float]) -> None:
    script.replies = [(502, {})] * 3
    client = HttpClient("test", Retry(attempts=3, backoff_s=0.1, backoff_cap_s=1.0), timeout_s=5)
    with pytest.raises(GaveUp, match="^test: HTTP 502; gave up after 3 attempts$") as caught:
        client.request("GET", script.url, read)
    assert (caught.value.problem, caught.value.attempts, len(pauses)) == ("HTTP 502", 3, 2)


def test_a_retry_after_beyond_the_budget_gives_up_at_once(script: Script, pauses: list[float]) -> None:
    script.replies = [(429, {"Retry-After": "60"})]
    client = HttpClient(
        "test", Retry(attempts=5, backoff_s=0.1, backoff_cap_s=1.0, max_wait_s=10), timeout_s=5
    )
    with pytest.raises(GaveUp, match=r"HTTP 429; gave up \(backoff budget of 10 s\)") as caught:
        client.request("GET", script.url, read)
    assert caught.value.attempts == 1 and pauses == [] and script.requests == 1


def test_a_refusal_is_not_retried_and_counts_its_attempt(script: Script, pauses: list[float]) -> None:
    script.replies = [(503, {}), (404, {})]
    client = HttpClient("test", Retry(attempts=5, backoff_s=0.1, backoff_cap_s=1.0), timeout_s=5)
    with pytest.raises(RequestFailed) as caught:
        client.request("GET", script.url, read)
    assert not isinstance(caught.value, GaveUp)
    assert (str(caught.value), caught.value.attempts, script.requests) == ("refused (HTTP 404)", 2, 2)


def test_connection_failures_are_retried(pauses: list[float]) -> None:
    with socket.socket() as unused:  # a port nothing listens on: every connection is refused
        unused.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{unused.getsockname()[1]}/"
    client = HttpClient("test", Retry(attempts=2, backoff_s=0.1, backoff_cap_s=1.0), timeout_s=5)
    with pytest.raises(GaveUp, match=r"connection failed \(ConnectError\); gave up after 2 attempts"):
        client.request("GET", url, read)
    assert len(pauses) == 1 and client.stats.requests == 2


def test_the_secret_never_reaches_an_error_or_a_log_line(
    script: Script, pauses: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    script.replies = [(503, {})] * 2

    def read_echo(response: httpx.Response) -> str:
        raise retryable(response, f"answer {response.text}")  # the server echoes the key back

    client = HttpClient(
        "test", Retry(attempts=2, backoff_s=0.1, backoff_cap_s=1.0), timeout_s=5, secret=SECRET
    )
    with caplog.at_level(logging.WARNING), pytest.raises(GaveUp) as caught:
        client.request("GET", script.url, read_echo)
    assert '"echo": "***"' in str(caught.value) and '"echo": "***"' in caplog.text
    assert SECRET not in str(caught.value) + caught.value.problem + caplog.text
