"""Shared pieces for the server tests: a real uvicorn server on a loopback port, in a thread, a tiny
policy folder whose card says how it was trained (no reasoning, ``<answer>`` prefill), and raw socket
clients (half-sent bodies, clients that leave)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from _train_helpers import write_tiny_model
from deepretrieval.policies.card import PolicyCard
from deepretrieval.prompting import Prompting


def write_tiny_policy(folder: Path, **model: Any) -> Path:
    """The tiny random-init model of the training tests plus a policy card (a 'trained' checkpoint);
    ``model``: options of ``write_tiny_model`` (``eos_bias=-100``: a model that never stops by itself)."""
    write_tiny_model(folder, **model)
    PolicyCard(Prompting("classic_ir", reasoning=False, prefill="<answer>"), task="beir").write(folder)
    return folder


@contextlib.contextmanager
def running(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1 (a free port) until the block ends; yields the base URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


class Faults:
    """ASGI middleware a test installs on the app: counts the requests that reach the server and answers
    the first ones with the scripted faults (an HTTP status, or ``"slow"`` for a reply after 4 s)."""

    def __init__(self, app: Any, plan: list[int | str] | None = None, always: int | None = None) -> None:
        self.app = app
        self.plan = list(plan or [])
        self.always = always
        self.requests = 0

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/v1/chat/completions":
            await self.app(scope, receive, send)
            return
        self.requests += 1
        fault = self.plan.pop(0) if self.plan else self.always
        if fault == "slow":
            import asyncio

            await asyncio.sleep(4.0)
        elif fault is not None:
            headers = [(b"content-type", b"application/json")]
            if fault == 429:
                headers.append((b"retry-after", b"0"))
            await send({"type": "http.response.start", "status": fault, "headers": headers})
            await send({"type": "http.response.body", "body": b'{"error": {"message": "injected"}}'})
            return
        await self.app(scope, receive, send)


def until(check: Callable[[], bool], what: str, timeout_s: float = 60) -> None:
    """Wait until ``check()`` holds (a server changes its state on its own threads); fail naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def raw_request(url: str, path: str, body: bytes, declared: int | None = None) -> socket.socket:
    """A raw client that sends ``POST path`` with ``body`` (announcing ``declared`` bytes: more than it
    sends is a body that stops short) and keeps the connection open; closing it is a client that left."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body) if declared is None else declared}\r\n\r\n"
    )
    sock.sendall(head.encode() + body)
    return sock


def read_answer(sock: socket.socket, timeout_s: float = 60) -> tuple[int, dict[str, str], str]:
    """The status, headers (lower-case names) and body a raw client got."""
    import http.client

    sock.settimeout(timeout_s)
    answer = http.client.HTTPResponse(sock)
    answer.begin()
    headers = {name.lower(): value for name, value in answer.getheaders()}
    return answer.status, headers, answer.read().decode()
