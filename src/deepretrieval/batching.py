"""Batching: items submitted one at a time from many threads, handled together by one worker thread.

The rewrite server gathers concurrent requests into one generation call (never mixing sampling settings:
``key``), the retrieval service gathers concurrent HTTP requests into one batched search (``size``: the
queries of a request), and the verl reward gathers concurrent per-sample calls into one batched reward.

Hand-written (about 150 lines) rather than taken from a serving framework: what is needed is a queue, a
short wait window, a cap and fork safety; the frameworks that batch (Ray Serve, Triton, TGI) each bring
their own server and model runtime.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections import Counter, deque
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class _Entry(Generic[T]):
    item: T
    key: Hashable
    size: int
    arrived: float = field(default_factory=time.monotonic)
    future: Future = field(default_factory=Future)


class Batcher(Generic[T, R]):
    """One worker thread that calls ``handle(items)`` on batches of the submitted items.

    The worker takes the oldest pending item and waits until it has been pending ``window_s`` seconds (or
    until the pending items of its ``key`` reach ``max_size``, counted by ``size(item)``) so that concurrent
    callers can join; then it hands over the pending items of that key, oldest first, up to ``max_size``
    (always at least one item). Items of other keys wait for their own batch. An item that waited while
    the worker was busy goes out at once. ``handle`` returns one result per item, in order; a result that
    is an exception is raised to that item's caller only, and an exception raised by ``handle`` reaches
    every caller of the batch. A cancelled item is left out. Nothing is kept once a batch is answered.

    The worker starts on the first ``submit``; a forked child starts afresh (the parent's worker and
    callers do not exist there)."""

    def __init__(
        self,
        handle: Callable[[list[T]], Sequence[R | BaseException]],
        *,
        window_s: float,
        max_size: int,
        size: Callable[[T], int] = lambda _: 1,
        key: Callable[[T], Hashable] = lambda _: None,
        name: str = "batcher",
    ):
        if window_s < 0 or max_size < 1:
            raise ValueError(f"a batcher needs window_s >= 0 and max_size >= 1, got {window_s}, {max_size}")
        self._handle = handle
        self.window_s = window_s
        self.max_size = max_size
        self._size = size
        self._key = key
        self._name = name
        self._closed = False
        self._batch_sizes: Counter[int] = Counter()
        self._busy_s = 0.0
        self._start_over()
        _LIVE.add(self)

    def _start_over(self) -> None:
        """An empty queue and no worker yet (also in a forked child, where the parent's lock may have been
        held at the fork)."""
        self._pending: deque[_Entry[T]] = deque()
        self._pending_size: Counter[Hashable] = Counter()
        self._ready = threading.Condition()
        self._worker: threading.Thread | None = None

    @property
    def pending(self) -> int:
        """The summed size of the items waiting for the worker."""
        return sum(self._pending_size.values())

    def submit(self, item: T) -> Future[R]:
        """Queue ``item``; the future is resolved when its batch has been handled."""
        entry = _Entry(item, self._key(item), self._size(item))
        with self._ready:
            if self._closed:
                raise RuntimeError(f"{self._name} is closed")
            if self._worker is None:
                self._worker = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._worker.start()
            self._pending.append(entry)
            self._pending_size[entry.key] += entry.size
            self._ready.notify()
        return entry.future

    def __call__(self, item: T) -> R:
        """Submit ``item`` and wait for its result."""
        return self.submit(item).result()

    def stats(self) -> dict[str, Any]:
        """Batches handled so far: how many, of which sizes (in items), items served, time spent in
        ``handle``; items queued now; the limits."""
        with self._ready:
            sizes = dict(sorted(self._batch_sizes.items()))
            batches = sum(sizes.values())
            items = sum(size * count for size, count in sizes.items())
            return {
                "batches": batches,
                "items": items,
                "mean_batch_size": items / batches if batches else 0.0,
                "max_batch_size": max(sizes, default=0),
                "batch_sizes": {str(size): count for size, count in sizes.items()},
                "busy_s": round(self._busy_s, 3),
                "queued": len(self._pending),
                "max_size": self.max_size,
                "window_ms": self.window_s * 1000,
            }

    def close(self, timeout_s: float | None = None) -> None:
        """Handle what is pending, then stop the worker."""
        with self._ready:
            self._closed = True
            self._ready.notify()
        if self._worker is not None:
            self._worker.join(timeout_s)

    def _next_batch(self) -> list[_Entry[T]] | None:
        """The next batch (None once closed and drained)."""
        with self._ready:
            while not self._pending and not self._closed:
                self._ready.wait()
            if not self._pending:
                return None
            oldest = self._pending[0]
            deadline = oldest.arrived + self.window_s
            while self._pending_size[oldest.key] < self.max_size and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._ready.wait(remaining)
            batch, others, taken = [], [], 0
            while self._pending:
                entry = self._pending.popleft()
                if entry.key != oldest.key:
                    others.append(entry)
                elif not batch or taken + entry.size <= self.max_size:
                    batch.append(entry)
                    taken += entry.size
                else:
                    self._pending.appendleft(entry)
                    break
            self._pending.extendleft(reversed(others))
            self._pending_size[oldest.key] -= taken
            if not self._pending_size[oldest.key]:
                del self._pending_size[oldest.key]
        return [entry for entry in batch if entry.future.set_running_or_notify_cancel()]

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            if not batch:
                continue
            started = time.perf_counter()
            try:
                results = list(self._handle([entry.item for entry in batch]))
                if len(results) != len(batch):
                    raise RuntimeError(f"{self._name}: {len(results)} results for {len(batch)} items")
            except Exception as err:  # noqa: BLE001 - the batch's callers get it; the worker lives on
                results = [err] * len(batch)
            with self._ready:  # counted before the callers hear back, so they see their batch in stats()
                self._batch_sizes[len(batch)] += 1
                self._busy_s += time.perf_counter() - started
            for entry, result in zip(batch, results):
                if isinstance(result, BaseException):
                    entry.future.set_exception(result)
                else:
                    entry.future.set_result(result)


_LIVE: weakref.WeakSet[Batcher] = weakref.WeakSet()
os.register_at_fork(after_in_child=lambda: [batcher._start_over() for batcher in list(_LIVE)])
