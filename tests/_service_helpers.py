"""A real retrieval service for tests: uvicorn on a free loopback port, in a background thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Sequence
from typing import Self

from deepretrieval.serve.retrieval_service import IndexSpec, RetrievalService, ServiceLimits, create_app


class LiveService:
    """``with LiveService([IndexSpec(...)]) as live: live.url``; the indexes are closed on exit."""

    def __init__(self, specs: Sequence[IndexSpec], limits: ServiceLimits | None = None, port: int = 0):
        self.service = RetrievalService(specs, limits)
        self._socket = socket.socket()
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", port))
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"

    def __enter__(self) -> Self:
        import uvicorn

        config = uvicorn.Config(create_app(self.service), log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the retrieval service did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=30)
        self._socket.close()
