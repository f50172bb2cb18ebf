"""Coalescing: items submitted one at a time from many threads, handled together in batches by one worker.

The retrieval service gathers concurrent HTTP requests into one batched search, and the verl reward
gathers concurrent per-sample reward calls into one batched reward; both use :class:`Coalescer`.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Coalescer(Generic[T, R]):
    """One worker thread that calls ``handle(items)`` on batches of the submitted items.

    The worker takes the oldest pending item, waits until it has been pending ``window_s`` seconds (or
    until ``max_size`` is reached, counted by ``size(item)``) so that concurrent callers can join, then
    hands over everything pending up to ``max_size`` (always at least one item). An item that waited while
    the worker was busy goes out at once. ``handle`` returns one result per item, in order; a result that
    is an exception is raised to that item's caller only, and an exception raised by ``handle`` reaches
    every caller of the batch. Nothing is kept once a batch is answered."""

    def __init__(
        self,
        handle: Callable[[list[T]], Sequence[R | BaseException]],
        *,
        window_s: float,
        max_size: int,
        size: Callable[[T], int] = lambda _: 1,
        name: str = "coalescer",
    ):
        if window_s < 0 or max_size < 1:
            raise ValueError(f"a coalescer needs window_s >= 0 and max_size >= 1, got {window_s}, {max_size}")
        self._handle = handle
        self._window_s = window_s
        self._max_size = max_size
        self._size = size
        self._name = name
        self._closed = False
        self._start_over()
        self.batches = 0  # handled so far (for tests and benchmarks)
        _LIVE.add(self)

    def _start_over(self) -> None:
        """An empty queue and no worker yet (also in a forked child: the parent's worker thread and
        callers do not exist there, and its lock may have been held at the fork)."""
        self._pending: deque[tuple[T, Future, float]] = deque()
        self._pending_size = 0
        self._ready = threading.Condition()
        self._worker: threading.Thread | None = None

    @property
    def pending(self) -> int:
        """The summed size of the items waiting for the worker."""
        return self._pending_size

    def submit(self, item: T) -> Future[R]:
        """Queue ``item``; the future is resolved when its batch has been handled."""
        future: Future[R] = Future()
        with self._ready:
            if self._closed:
                raise RuntimeError(f"{self._name} is closed")
            if self._worker is None:
                self._worker = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._worker.start()
            self._pending.append((item, future, time.monotonic()))
            self._pending_size += self._size(item)
            self._ready.notify()
        return future

    def __call__(self, item: T) -> R:
        """Submit ``item`` and wait for its result."""
        return self.submit(item).result()

    def close(self) -> None:
        """Handle what is pending, then stop the worker."""
        with self._ready:
            self._closed = True
            self._ready.notify()
        if self._worker is not None:
            self._worker.join()

    def _next_batch(self) -> list[tuple[T, Future, float]] | None:
        with self._ready:
            while not self._pending and not self._closed:
                self._ready.wait()
            if not self._pending:
                return None
            deadline = self._pending[0][2] + self._window_s
            while self._pending_size < self._max_size and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._ready.wait(remaining)
            batch = [self._pending.popleft()]
            taken = self._size(batch[0][0])
            while self._pending and taken + self._size(self._pending[0][0]) <= self._max_size:
                batch.append(self._pending.popleft())
                taken += self._size(batch[-1][0])
            self._pending_size -= taken
            return batch

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            futures = [future for _, future, _ in batch]
            try:
                results = list(self._handle([item for item, _, _ in batch]))
                if len(results) != len(batch):
                    raise RuntimeError(f"{self._name}: {len(results)} results for {len(batch)} items")
            except Exception as err:  # noqa: BLE001 - the batch's callers get it; the worker lives on
                results = [err] * len(batch)
            self.batches += 1
            for future, result in zip(futures, results):
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)


_LIVE: weakref.WeakSet[Coalescer] = weakref.WeakSet()
os.register_at_fork(after_in_child=lambda: [coalescer._start_over() for coalescer in list(_LIVE)])
