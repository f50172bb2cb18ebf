"""Dynamic batching: requests that arrive together share ONE generation call, on ONE thread that owns the
model.

Hand-written (about 80 lines) rather than taken from a serving framework: what is needed is a queue, a
short wait window and a cap, with items of different sampling settings never mixed in one call; the
frameworks that do this (Ray Serve, Triton, TGI) each bring their own server and model runtime.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any


@dataclass
class _Item:
    value: Any
    key: Hashable
    future: Future = field(default_factory=Future)


class DynamicBatcher:
    """``submit(item, key)`` returns a future; a worker thread runs ``run(items, key)`` on batches.

    A batch starts with the oldest waiting item and takes every waiting item with the same ``key`` (the
    sampling settings), up to ``max_batch``; when fewer are waiting it waits up to ``max_wait_s`` for more.
    While a batch generates, new requests queue up and form the next batch, so under load batches fill
    without any waiting. ``stats()`` reports the batch sizes formed.
    """

    def __init__(
        self,
        run: Callable[[Sequence[Any], Hashable], Sequence[Any]],
        *,
        max_batch: int = 32,
        max_wait_s: float = 0.01,
        name: str = "generation",
    ) -> None:
        if max_batch < 1 or max_wait_s < 0:
            raise ValueError(f"max_batch must be >= 1 and max_wait_s >= 0, got {max_batch}, {max_wait_s}")
        self._run = run
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._queue: deque[_Item] = deque()
        self._ready = threading.Condition()
        self._closed = False
        self._sizes: Counter[int] = Counter()
        self._busy_s = 0.0
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, value: Any, key: Hashable = ()) -> Future:
        item = _Item(value, key)
        with self._ready:
            if self._closed:
                raise RuntimeError("the batcher is closed")
            self._queue.append(item)
            self._ready.notify()
        return item.future

    def _take(self) -> list[_Item] | None:
        """The next batch (None once closed and drained)."""
        with self._ready:
            while not self._queue:
                if self._closed:
                    return None
                self._ready.wait()
            key = self._queue[0].key
            deadline = time.monotonic() + self.max_wait_s
            while sum(item.key == key for item in self._queue) < self.max_batch and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._ready.wait(left)
            batch, rest = [], deque()
            for item in self._queue:
                (batch if item.key == key and len(batch) < self.max_batch else rest).append(item)
            self._queue = rest
        return [item for item in batch if item.future.set_running_or_notify_cancel()]

    def _loop(self) -> None:
        while (batch := self._take()) is not None:
            if not batch:
                continue
            started = time.perf_counter()
            try:
                results = self._run([item.value for item in batch], batch[0].key)
                if len(results) != len(batch):
                    raise RuntimeError(f"generation returned {len(results)} results for {len(batch)} inputs")
            except Exception as err:  # noqa: BLE001 - every waiting request must hear about it
                for item in batch:
                    item.future.set_exception(err)
            else:
                for item, result in zip(batch, results):
                    item.future.set_result(result)
            with self._ready:
                self._sizes[len(batch)] += 1
                self._busy_s += time.perf_counter() - started

    def stats(self) -> dict[str, Any]:
        """Batches formed so far: how many, of which sizes, items served, and time spent generating."""
        with self._ready:
            sizes = dict(sorted(self._sizes.items()))
            batches = sum(sizes.values())
            items = sum(size * count for size, count in sizes.items())
            return {
                "batches": batches,
                "items": items,
                "mean_batch_size": items / batches if batches else 0.0,
                "max_batch_size": max(sizes, default=0),
                "batch_sizes": {str(size): count for size, count in sizes.items()},
                "generation_s": round(self._busy_s, 3),
                "queued": len(self._queue),
                "max_batch": self.max_batch,
                "max_wait_ms": self.max_wait_s * 1000,
            }

    def close(self, timeout_s: float | None = None) -> None:
        """Serve what is queued, then stop the worker."""
        with self._ready:
            self._closed = True
            self._ready.notify_all()
        self._thread.join(timeout_s)
