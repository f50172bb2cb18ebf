"""What both servers (``serve``, ``serve-retriever``) need so that no client can hold them.

* :class:`ClientWatch` (ASGI middleware): a request body that stops arriving is answered 408 after
  ``body_timeout_s`` without a byte; a client that disconnects after sending its request cancels the
  request's handler, so its queued work is dropped (``Batcher.gather``); a client that disconnects
  while sending its body costs one log line, not a traceback.
* :func:`listen` and :func:`run`: bind first (the address is known before serving), then uvicorn, which on
  SIGTERM / SIGINT calls ``on_shutdown`` before it closes connections (the servers abort their batchers
  there, so in-flight requests are answered 503 at once instead of being waited for) and waits at most
  ``grace_s`` for the answers.

Hand-written: neither Starlette nor uvicorn cancels a handler whose client has gone (Starlette does it for
streaming responses only) or bounds the wait for a request body.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

LOG = logging.getLogger("uvicorn.error")  # the server's own log: its format and --log-level


class ClientWatch:
    """ASGI middleware: a deadline between the parts of a request body (408), a handler cancelled when
    its client disconnects, and one log line per client that left."""

    def __init__(self, app: Any, body_timeout_s: float) -> None:
        if body_timeout_s <= 0:
            raise ValueError(f"body_timeout_s must be positive, got {body_timeout_s}")
        self.app = app
        self.body_timeout_s = body_timeout_s

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body_read, gone = asyncio.Event(), asyncio.Event()
        answered = False

        async def next_part() -> dict:
            if body_read.is_set():  # the body is in; only a disconnect is left to hear (from watch)
                await gone.wait()
                return {"type": "http.disconnect"}
            try:
                async with asyncio.timeout(self.body_timeout_s):
                    message = await receive()
            except TimeoutError:
                pause = f"{self.body_timeout_s:g} s"
                raise HTTPException(
                    408, f"the request body stopped arriving (nothing for {pause}); send it whole",
                    headers={"Connection": "close"},
                ) from None  # fmt: skip
            if message["type"] == "http.request" and not message.get("more_body", False):
                body_read.set()
            return message  # a disconnect reaches the app, which raises ClientDisconnect

        async def sent(message: dict) -> None:
            nonlocal answered
            await send(message)
            answered = answered or (message["type"] == "http.response.body" and not message.get("more_body"))

        async def watch() -> None:
            await body_read.wait()
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        handler = asyncio.ensure_future(self.app(scope, next_part, sent))
        watcher = asyncio.ensure_future(watch())
        try:
            await asyncio.wait({handler, watcher}, return_when=asyncio.FIRST_COMPLETED)
            left = not handler.done() and not answered
            if left:  # the client went away before its answer
                handler.cancel()
                _left(scope, "before its answer; its queued work was dropped")
            await asyncio.wait({handler})
        finally:
            watcher.cancel()
            handler.cancel()
        error = None if handler.cancelled() else handler.exception()
        if left:
            return  # whatever the cancelled handler ended with, nobody hears it
        if isinstance(error, ClientDisconnect):
            _left(scope, "while sending its request body")
        elif error is not None:
            raise error


def _left(scope: dict, when: str) -> None:
    client = "{}:{}".format(*scope["client"]) if scope.get("client") else "a client"
    LOG.warning("%s disconnected %s (%s %s)", client, when, scope["method"], scope["path"])


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (0: any free port), or an OSError that says what to change."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port} ({err.strerror}); choose another --port") from None
    sock.listen(2048)  # before the address is printed: a client that reads it may connect at once
    return sock


def run(
    app: Any,
    sock: socket.socket,
    *,
    on_shutdown: Callable[[], None],
    grace_s: float = 5.0,
    log_level: str = "warning",
) -> None:
    """Serve ``app`` on ``sock`` until SIGTERM or SIGINT; then ``on_shutdown()`` (fail in-flight work at
    once), and at most ``grace_s`` for the connections to get their answers."""
    import uvicorn

    class Server(uvicorn.Server):
        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            on_shutdown()
            await super().shutdown(sockets)

    config = uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=grace_s,  # type: ignore[arg-type]
    )
    Server(config).run(sockets=[sock])
