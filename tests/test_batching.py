"""The one batcher of the package: items from many threads handled in batches by one worker, grouped by
key (the rewrite server's sampling settings), counted by size (the retrieval service's queries), in forked
children too (the verl reward)."""

from __future__ import annotations

import multiprocessing
import sys
import threading

import pytest

from deepretrieval.batching import Batcher


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
