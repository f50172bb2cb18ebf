"""The one batcher of the package: items from many threads handled in batches by one worker, grouped by
key (the rewrite server's sampling settings), counted by size (the retrieval service's queries), in forked
children too (the verl reward)."""

from __future__ import annotations

import asyncio
import multiprocessing
import sys
import threading
from collections.abc import Callable

import pytest

from deepretrieval.batching import Batcher, DeadlineExceeded, QueueFull, Stopped


def test_batcher_batches_by_size_and_answers_each_caller() -> None:
    seen: list[list[int]] = []

    def square(items: list[int]) -> list[int | Exception]:
        seen.append(items)
        return [ValueError(f"no {n}") if n == 13 else n * n for n in items]

    # A window far longer than the test: batches leave only because they reach max_size (or at close).
    batcher: Batcher[int, int] = Batcher(square, window_s=600, max_size=10)
    futures = [batcher.submit(n) for n in range(30)]
    assert [f.result() for f in futures if not f.exception()] == [n * n for n in range(30) if n != 13]
    with pytest.raises(ValueError, match="no 13"):
        futures[13].result()
    assert [len(batch) for batch in seen] == [10, 10, 10] and batcher.stats()["batches"] == 3
    tail = batcher.submit(7)
    batcher.close()  # flushes what is pending without waiting out the window
    assert tail.result() == 49 and seen[-1] == [7]
    with pytest.raises(RuntimeError, match="closed"):
        batcher.submit(1)


def test_batcher_sizes_items_and_reports_handler_failures() -> None:
    def fail(items: list[list[int]]) -> list[int]:
        if any(9 in item for item in items):
            raise RuntimeError("handler broke")
        return [sum(item) for item in items]

    batcher: Batcher[list[int], int] = Batcher(fail, window_s=600, max_size=6, size=len)
    first = [batcher.submit([1, 2, 3]), batcher.submit([4, 5, 6])]  # 3 + 3 = 6: one batch
    assert [f.result() for f in first] == [6, 15] and batcher.stats()["batches"] == 1
    big = batcher.submit(list(range(8)))  # larger than max_size: goes alone
    assert big.result() == 28 and batcher.stats()["batches"] == 2
    broken = [batcher.submit([9]), batcher.submit([1] * 5)]
    for future in broken:
        with pytest.raises(RuntimeError, match="handler broke"):
            future.result()
    later = batcher.submit([2, 2])  # the worker lives on after a failed batch
    batcher.close()
    assert later.result() == 4
    with pytest.raises(ValueError, match="window_s >= 0 and max_size >= 1"):
        Batcher(fail, window_s=0, max_size=0)


def test_batcher_works_in_a_forked_child() -> None:
    """A process forked while the worker runs (a data loader, a pool) gets a fresh queue and worker."""
    batcher: Batcher[int, int] = Batcher(lambda items: [n * n for n in items], window_s=0, max_size=4)
    assert batcher(3) == 9  # the parent's worker thread is running now

    def child() -> None:
        sys.exit(0 if batcher(4) == 16 else 1)

    process = multiprocessing.get_context("fork").Process(target=child)
    process.start()
    process.join(timeout=60)
    if process.is_alive():
        process.kill()
    assert process.exitcode == 0
    assert batcher(5) == 25
    batcher.close()


def test_the_batcher_never_mixes_sampling_settings_and_reports_failures() -> None:
    seen: list[tuple[object, list[int]]] = []

    def run(items: list[tuple[int, str]]) -> list[int]:
        key = items[0][1]
        seen.append((key, [v for v, _ in items]))
        if key == "broken":
            raise RuntimeError("out of memory")
        return [v * v for v, _ in items]

    batcher: Batcher[tuple[int, str], int] = Batcher(run, window_s=0.2, max_size=4, key=lambda item: item[1])
    futures = [batcher.submit((i, "a" if i % 2 else "b")) for i in range(10)]
    failing = batcher.submit((99, "broken"))
    assert [f.result(timeout=30) for f in futures] == [i * i for i in range(10)]
    with pytest.raises(RuntimeError, match="out of memory"):
        failing.result(timeout=30)
    batcher.close()
    assert all(len(values) <= 4 for _, values in seen)
    for key, values in seen:
        assert all(("a" if v % 2 else "b") == key for v in values) or key == "broken"
    assert batcher.stats()["items"] == 11 and batcher.stats()["max_batch_size"] == 4
    with pytest.raises(RuntimeError, match="closed"):
        batcher.submit((1, "a"))


def test_a_cancelled_item_is_left_out_and_stats_count_what_was_handled() -> None:
    busy, release = threading.Event(), threading.Event()
    seen: list[list[int]] = []

    def slow(items: list[int]) -> list[int]:
        busy.set()
        release.wait(30)
        seen.append(items)
        return items

    batcher: Batcher[int, int] = Batcher(slow, window_s=0, max_size=8, name="test-batcher")
    first = batcher.submit(1)
    assert busy.wait(30)  # the worker holds the first batch while the next two queue up
    queued = [batcher.submit(2), batcher.submit(3)]
    assert queued[0].cancel()
    release.set()
    assert first.result(timeout=30) == 1 and queued[1].result(timeout=30) == 3
    batcher.close()
    assert seen == [[1], [3]]
    stats = batcher.stats()
    assert (stats["batches"], stats["items"], stats["batch_sizes"], stats["queued"]) == (2, 2, {"1": 2}, 0)
    assert stats["max_size"] == 8 and stats["window_ms"] == 0


# --------------------------------------------------------------------------- servers that must not get stuck


def _held() -> tuple[threading.Event, threading.Event, list[list[int]], Callable]:
    """A handler that holds its first batch until released (the worker is busy meanwhile)."""
    busy, release = threading.Event(), threading.Event()
    seen: list[list[int]] = []

    def handle(items: list[int]) -> list[int]:
        busy.set()
        release.wait(30)
        seen.append(items)
        return [n * 10 for n in items]

    return busy, release, seen, handle


def test_a_full_queue_refuses_whole_requests_and_a_cancelled_item_frees_its_room_at_once() -> None:
    busy, release, seen, handle = _held()
    batcher: Batcher[int, int] = Batcher(handle, window_s=0, max_size=8, max_pending=3)
    running = batcher.submit(0)
    assert busy.wait(30)
    queued = batcher.submit_many([1, 2])
    with pytest.raises(QueueFull, match="has 2 queued, at most 3") as full:
        batcher.submit_many([3, 4])  # all or none: 2 + 2 > 3
    assert full.value.retry_after_s >= 1 and batcher.pending == 2
    assert (
        queued[0].cancel() and batcher.pending == 1
    )  # the caller left: its room is free before the worker runs
    late = batcher.submit_many([5, 6])
    release.set()
    assert [f.result(30) for f in [running, queued[1], *late]] == [0, 20, 50, 60]
    batcher.close()
    assert seen == [[0], [2, 5, 6]]  # neither the refused items nor the cancelled one were handled
    stats = batcher.stats()
    assert (stats["refused"], stats["abandoned"], stats["max_pending"]) == (2, 1, 3)


def test_an_item_past_its_deadline_is_failed_instead_of_handled() -> None:
    busy, release, seen, handle = _held()
    batcher: Batcher[int, int] = Batcher(handle, window_s=0, max_size=8, timeout_s=0.2)
    first = batcher.submit(1)
    assert busy.wait(30)
    with pytest.raises(DeadlineExceeded, match="not taken up within 0.2 s"):
        batcher(2)  # a synchronous caller waits until the deadline only; its item is dropped
    queued = batcher.submit(3)
    threading.Event().wait(0.3)  # item 3 is past its deadline before the worker is free
    release.set()
    assert first.result(30) == 10
    with pytest.raises(DeadlineExceeded, match="not taken up within 0.2 s"):
        queued.result(30)
    batcher.close()
    assert seen == [[1]] and batcher.stats()["expired"] == 1 and batcher.stats()["abandoned"] == 1


def test_a_running_batch_stops_when_every_caller_has_left_and_on_abort() -> None:
    steps: list[int] = []  # steps taken by each batch
    started = threading.Event()

    def generate(items: list[int]) -> list[int]:
        """Takes max(items) "tokens" of 10 ms, asking between two whether anyone still waits."""
        started.set()
        steps.append(0)
        while steps[-1] < max(items) and not batcher.stopping():
            steps[-1] += 1
            threading.Event().wait(0.01)
        return items

    batcher: Batcher[int, int] = Batcher(generate, window_s=0, max_size=8)

    async def leave() -> None:
        caller = asyncio.ensure_future(batcher.gather([1000, 1000]))
        await asyncio.to_thread(started.wait, 30)
        caller.cancel()  # what the handler of a client that disconnected gets
        with pytest.raises(asyncio.CancelledError):
            await caller

    asyncio.run(leave())
    assert batcher(3) == 3  # the worker goes on; a batch with a caller runs to its end
    assert steps[0] < 1000 and steps[1] == 3 and batcher.stats()["stopped_batches"] == 1
    started.clear()
    running = batcher.submit(1000)
    assert started.wait(30)
    queued = batcher.submit(5)
    batcher.close(30, abort=True)  # a server shutting down
    for future in (running, queued):
        with pytest.raises(Stopped, match="stopped"):
            future.result(30)
    assert steps[2] < 1000 and len(steps) == 3 and batcher.stats()["stopped_batches"] == 2
    with pytest.raises(Stopped, match="closed"):
        batcher.submit(1)
