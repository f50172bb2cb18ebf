"""Batching: items submitted one at a time from many threads, handled together by one worker thread.

The rewrite server gathers concurrent requests into one generation call (never mixing sampling settings:
``key``), the retrieval service gathers concurrent HTTP requests into one batched search (``size``: the
queries of a request), and the verl reward gathers concurrent per-sample calls into one batched reward.

A server must not get stuck behind work nobody waits for, so the queue is bounded (``max_pending``:
:class:`QueueFull`, with an estimate of when to come back), every item has a deadline to be taken up by
the worker (``timeout_s``: :class:`DeadlineExceeded`), an item whose caller has gone (its future
cancelled) is dropped before it is batched, and a long ``handle`` can ask :meth:`Batcher.stopping`
whether anyone still waits for its batch. The deadline bounds the wait in the queue, not the work: a
batch that has started is waited for, so an overloaded server still finishes what it takes up.
``close(abort=True)`` (a server shutting down) fails what is queued and running with :class:`Stopped`.

Hand-written (about 250 lines) rather than taken from a serving framework: what is needed is a queue, a
short wait window, a cap, cancellation and fork safety; the frameworks that batch (Ray Serve, Triton, TGI)
each bring their own server and model runtime.
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
import time
import weakref
from collections import Counter, deque
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import CancelledError, Future
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class QueueFull(RuntimeError):
    """The queue holds ``max_pending`` already; ``retry_after_s`` estimates when it will have room."""

    def __init__(self, message: str, retry_after_s: float):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class DeadlineExceeded(TimeoutError):
    """The worker did not take the item up within the batcher's ``timeout_s``."""


class Stopped(RuntimeError):
    """The batcher was closed (aborted) before the item was handled."""


class _Ticket(Future):
    """A future whose caller may leave while its batch is being handled: ``cancel()`` cannot take a running
    item back, so it marks it abandoned (``Batcher.stopping`` reads the mark). ``asyncio.wrap_future``
    calls ``cancel()`` when the awaiting task is cancelled, so a client that disconnects reaches here."""

    abandoned = False

    def cancel(self) -> bool:
        if super().cancel():
            return True
        if self.running():
            self.abandoned = True
        return False


@dataclass
class _Entry(Generic[T]):
    item: T
    key: Hashable
    size: int
    deadline: float
    arrived: float = field(default_factory=time.monotonic)
    future: _Ticket = field(default_factory=_Ticket)


class Batcher(Generic[T, R]):
    """One worker thread that calls ``handle(items)`` on batches of the submitted items.

    The worker takes the oldest pending item and waits until it has been pending ``window_s`` seconds (or
    until the pending items of its ``key`` reach ``max_size``, counted by ``size(item)``) so that concurrent
    callers can join; then it hands over the pending items of that key, oldest first, up to ``max_size``
    (always at least one item). Items of other keys wait for their own batch. An item that waited while
    the worker was busy goes out at once. ``handle`` returns one result per item, in order; a result that
    is an exception is raised to that item's caller only, and an exception raised by ``handle`` reaches
    every caller of the batch. A cancelled item leaves the queue at once; one past its deadline is failed
    instead of handled. Nothing is kept once a batch is answered.

    ``max_pending``: the most summed size that may wait (None: no bound); ``timeout_s``: how long an
    item may wait before its batch starts, counted from its submission (None: as long as it takes).

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
        max_pending: int | None = None,
        timeout_s: float | None = None,
    ):
        if window_s < 0 or max_size < 1:
            raise ValueError(f"a batcher needs window_s >= 0 and max_size >= 1, got {window_s}, {max_size}")
        if (max_pending is not None and max_pending < 0) or (timeout_s is not None and timeout_s <= 0):
            raise ValueError(
                f"a batcher needs max_pending >= 0 and timeout_s > 0, got {max_pending}, {timeout_s}"
            )
        self._handle = handle
        self.window_s = window_s
        self.max_size = max_size
        self.max_pending = max_pending
        self.timeout_s = timeout_s
        self._size = size
        self._key = key
        self._name = name
        self._closed = False
        self._aborted = False
        self._batch_sizes: Counter[int] = Counter()
        self._counts: Counter[str] = Counter()  # handled size, abandoned, expired, refused, stopped batches
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
        self._current: list[_Entry[T]] = []
        self._told_to_stop = False

    @property
    def pending(self) -> int:
        """The summed size of the items waiting for the worker."""
        return sum(self._pending_size.values())

    def submit(self, item: T) -> Future[R]:
        """Queue ``item``; the future is resolved when its batch has been handled. Cancelling the future
        drops the item (or, once its batch is being handled, marks it abandoned)."""
        return self.submit_many([item])[0]

    def submit_many(self, items: Sequence[T]) -> list[Future[R]]:
        """Queue ``items`` together: all of them, or none (:class:`QueueFull`, :class:`Stopped`)."""
        now = time.monotonic()
        deadline = now + self.timeout_s if self.timeout_s is not None else math.inf
        entries = [_Entry(item, self._key(item), self._size(item), deadline, now) for item in items]
        with self._ready:
            if self._closed:
                raise Stopped(f"{self._name} is closed")
            pending, adding = self.pending, sum(entry.size for entry in entries)
            if self.max_pending is not None and pending + adding > self.max_pending:
                self._counts["refused"] += len(entries)
                raise QueueFull(
                    f"{self._name} has {pending} queued, at most {self.max_pending}", self._drain_s(pending)
                )
            if self._worker is None:
                self._worker = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._worker.start()
            for entry in entries:
                self._pending.append(entry)
                self._pending_size[entry.key] += entry.size
            self._ready.notify()
        for entry in entries:  # outside the lock: a future cancelled at once calls back into _forget
            entry.future.add_done_callback(lambda future, entry=entry: self._forget(entry, future))
        return [entry.future for entry in entries]

    def __call__(self, item: T) -> R:
        """Submit ``item`` and wait for its result (:class:`DeadlineExceeded` when its batch has not
        started by its deadline)."""
        future = self.submit(item)
        try:
            return future.result(self.timeout_s)
        except TimeoutError:
            if future.done() or future.running():  # a result, its own DeadlineExceeded, or under way
                return future.result()
            future.cancel()
            raise self._late() from None

    async def gather(self, items: Sequence[T]) -> list[R]:
        """Submit ``items`` together and await their results, in order. When the awaiting task is
        cancelled (a client that disconnected), or a result fails, or some item is still queued at the
        deadline (:class:`DeadlineExceeded`), the items still queued are dropped and running ones
        abandoned."""
        futures = self.submit_many(items)
        waiting = [asyncio.wrap_future(future) for future in futures]
        results = asyncio.gather(*waiting)
        results.add_done_callback(_retrieved)  # left unawaited when the caller is cancelled or late
        try:
            if self.timeout_s is not None:
                await asyncio.wait({results}, timeout=self.timeout_s)
                if not results.done() and any(not (f.running() or f.done()) for f in futures):
                    raise self._late()
            return await results
        finally:
            for future in waiting:
                future.cancel()  # chained to the batcher's future; a no-op on those already resolved

    def stopping(self) -> bool:
        """For a long ``handle`` to poll between steps (called from the worker): True once nobody waits
        for the batch it is handling (every caller cancelled) or the batcher was aborted. A batch told so
        is answered with those reasons, whatever ``handle`` returns."""
        stop = self._aborted or all(entry.future.abandoned for entry in self._current)
        self._told_to_stop = self._told_to_stop or stop
        return stop

    def stats(self) -> dict[str, Any]:
        """Batches handled so far: how many, of which sizes (in items), items served, time spent in
        ``handle``; items dropped because their caller left (``abandoned``), their deadline passed
        (``expired``) or the queue was full (``refused``); batches stopped early; items being handled
        and queued now; the limits."""
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
                "abandoned": self._counts["abandoned"],
                "expired": self._counts["expired"],
                "refused": self._counts["refused"],
                "stopped_batches": self._counts["stopped"],
                "running": len(self._current),
                "queued": len(self._pending),
                "max_size": self.max_size,
                "window_ms": self.window_s * 1000,
                "max_pending": self.max_pending,
                "timeout_s": self.timeout_s,
            }

    def close(self, timeout_s: float | None = None, *, abort: bool = False) -> None:
        """Refuse new items; handle what is pending (``abort``: fail it with :class:`Stopped`, and tell
        the running batch to stop), then stop the worker, waiting at most ``timeout_s`` for it."""
        with self._ready:
            self._closed = True
            dropped: list[_Entry[T]] = []
            if abort:
                self._aborted = True
                dropped = list(self._pending)
                self._pending.clear()
                self._pending_size.clear()
            self._ready.notify()
        for entry in dropped:
            self._fail(entry, Stopped(f"{self._name} stopped before this item was handled"))
        if self._worker is not None and self._worker is not threading.current_thread():
            self._worker.join(timeout_s)

    def drain_s(self) -> float:
        """About how long the worker needs for what is queued now (at the rate measured so far), at least
        a second: what a server tells a client to wait before it comes back (Retry-After)."""
        with self._ready:
            return self._drain_s(self.pending)

    def _drain_s(self, pending: int) -> float:
        handled = self._counts["handled"]
        rate = handled / self._busy_s if handled and self._busy_s > 0 else None
        estimate = pending / rate if rate else 1.0
        return max(1.0, min(estimate, self.timeout_s or math.inf))

    def _forget(self, entry: _Entry[T], future: Future) -> None:
        """A cancelled item leaves the queue (its room is free at once)."""
        if not future.cancelled():
            return
        with self._ready:
            try:
                self._pending.remove(entry)
            except ValueError:
                return  # taken by the worker meanwhile (left out of its batch there)
            self._pending_size[entry.key] -= entry.size
            if not self._pending_size[entry.key]:
                del self._pending_size[entry.key]
            self._counts["abandoned"] += 1

    def _fail(self, entry: _Entry[T], error: BaseException) -> None:
        if entry.future.set_running_or_notify_cancel():
            entry.future.set_exception(error)

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
        now, kept, dropped = time.monotonic(), [], Counter()
        for entry in batch:
            if entry.deadline <= now:
                dropped["expired"] += 1
                self._fail(entry, self._late())
            elif entry.future.set_running_or_notify_cancel():
                kept.append(entry)
            else:
                dropped["abandoned"] += 1
        if dropped:
            with self._ready:
                self._counts.update(dropped)
        return kept

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            if not batch:
                continue
            self._current, self._told_to_stop = batch, False
            started = time.perf_counter()
            try:
                results = list(self._handle([entry.item for entry in batch]))
                if len(results) != len(batch):
                    raise RuntimeError(f"{self._name}: {len(results)} results for {len(batch)} items")
            except Exception as err:  # noqa: BLE001 - the batch's callers get it; the worker lives on
                results = [err] * len(batch)
            stopped = self._told_to_stop
            if stopped:
                results = [self._why_stopped() for _ in batch]
            with self._ready:  # counted before the callers hear back, so they see their batch in stats()
                self._batch_sizes[len(batch)] += 1
                self._busy_s += time.perf_counter() - started
                self._counts["handled"] += sum(entry.size for entry in batch)
                self._counts["stopped"] += stopped
                self._current = []
            for entry, result in zip(batch, results):
                if isinstance(result, BaseException):
                    entry.future.set_exception(result)
                else:
                    entry.future.set_result(result)

    def _why_stopped(self) -> BaseException:
        if self._aborted:
            return Stopped(f"{self._name} stopped while this item was being handled")
        return CancelledError()  # nobody waits for it

    def _late(self) -> DeadlineExceeded:
        return DeadlineExceeded(f"{self._name}: not taken up within {self.timeout_s:g} s")


def _retrieved(future: asyncio.Future) -> None:
    """Marks an outcome nobody awaits as seen (asyncio would log it as never retrieved)."""
    if not future.cancelled():
        future.exception()


_LIVE: weakref.WeakSet[Batcher] = weakref.WeakSet()
os.register_at_fork(after_in_child=lambda: [batcher._start_over() for batcher in list(_LIVE)])
