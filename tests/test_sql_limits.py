"""Limits of the sandboxed executor that hold in the caller: the memory its results take (measured as the
RSS of a fresh process), the time limit over the whole round trip, and jobs holding the wrong types."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from deepretrieval.sql.executor import ExecutionLimits, SqlExecutorPool

MiB = 1024 * 1024
# RSS measured against estimated bytes: the estimate is meant to err high, so the only allowance is for
# what a process does besides holding rows (allocator slack, the unpickler's buffers, interpreter noise).
RSS_OVER_ESTIMATE = 1.25
RSS_NOISE = 16 * MiB


def wide_select(columns: int, rows: int) -> str:
    """Many tiny cells: ``rows`` rows of ``columns`` 2-character strings, built row by row."""
    cells = ", ".join(["'ab'"] * columns)
    return (
        f"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT {rows}) SELECT {cells} FROM c"
    )


# Runs in a fresh interpreter so that its RSS and peak RSS belong to this batch alone. The peak is VmHWM of
# the process's own memory map (ru_maxrss would carry the forking parent's peak across exec).
RSS_PROBE = """
import gc, json, os, sys
from deepretrieval.sql.executor import ExecutionLimits, SqlExecutorPool

def rss():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

def peak_rss():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))

db, sql, copies, limits = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
with SqlExecutorPool(workers=2, limits=ExecutionLimits(**limits)) as pool:
    assert pool.execute(db, "SELECT 1").ok
    gc.collect()
    before = rss()
    results = pool.run([(db, sql)] * copies)
    held = rss() - before
    peak = peak_rss() - before
    print(json.dumps({
        "held": held, "peak": peak,
        "results": [[r.status, len(r.rows), sum(map(len, r.rows)), r.truncated, r.size_bytes] for r in results],
    }))
"""


def rss_probe(db: Path, sql: str, copies: int, **limits: object) -> dict:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    done = subprocess.run(  # noqa: PLW1510 - the exit code is asserted with stderr as the message
        [sys.executable, "-c", RSS_PROBE, str(db), sql, str(copies), json.dumps(limits)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def empty_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("limits") / "empty.sqlite"
    sqlite3.connect(path).close()
    return path


@pytest.fixture(scope="module")
def toy_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("toy") / "toy.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")
        conn.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"n{i}") for i in range(100)])
    return path


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads RSS from /proc")
def test_one_statement_of_tiny_cells_stays_within_its_memory_cap(empty_db: Path) -> None:
    """5 M two-character cells fit in 10 MiB of SQLite bytes but take ~350 MB as Python objects: the cap
    must count the objects. (A generous timeout, so the statement finishes rather than times out.)"""
    cap = 2 * MiB
    probe = rss_probe(empty_db, wide_select(500, 10_000), 1, timeout_s=120.0, max_result_bytes=cap)
    [[status, rows, _, truncated, size]] = probe["results"]
    assert status == "ok" and truncated and 0 < rows < 10_000
    assert size <= cap
    assert probe["held"] <= RSS_OVER_ESTIMATE * cap + RSS_NOISE, probe["held"] / MiB


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads RSS from /proc")
def test_a_batch_shares_one_memory_budget(empty_db: Path) -> None:
    """12 statements, each allowed 4 MiB, share a 12 MiB batch budget: the caller holds at most the budget,
    and its peak is at most the budget plus one answer being unpickled."""
    statement_cap, batch_cap = 4 * MiB, 12 * MiB
    probe = rss_probe(
        empty_db,
        wide_select(100, 10_000),
        12,
        max_result_bytes=statement_cap,
        max_batch_bytes=batch_cap,
    )
    results = probe["results"]
    assert all(status == "ok" and truncated for status, _, _, truncated, _ in results)
    assert sum(size for *_, size in results) <= batch_cap
    rows = sorted(r[1] for r in results)
    assert rows[0] < rows[-1] and rows[0] == 0  # the last answers found the budget spent
    assert probe["held"] <= RSS_OVER_ESTIMATE * batch_cap + RSS_NOISE, probe["held"] / MiB
    assert probe["peak"] <= RSS_OVER_ESTIMATE * (batch_cap + statement_cap) + RSS_NOISE, probe["peak"] / MiB


def test_cell_caps_per_statement_and_per_batch(empty_db: Path) -> None:
    limits = ExecutionLimits(timeout_s=5.0, max_cells=1_000, max_batch_cells=2_500)
    with SqlExecutorPool(workers=2, limits=limits) as pool:
        results = pool.run([(empty_db, wide_select(100, 50))] * 5)
    assert all(r.ok and r.truncated for r in results)
    assert all(len(row) == 100 for r in results for row in r.rows)
    assert max(len(r.rows) for r in results) == 10  # 1,000 cells: 10 rows of 100
    assert sum(len(r.rows) for r in results) == 25  # 2,500 cells in the whole batch
    assert sum(r.size_bytes for r in results) > 0


def test_ok_answers_arrive_within_the_time_limit(empty_db: Path) -> None:
    """Statements that start at once but take ever longer to fetch, transfer and unpickle: whatever comes
    back after ``timeout_s`` (fetching included) is a timeout, every ``ok`` arrived in time."""
    # No row, cell or byte cap cuts the larger answers short: whatever the machine's speed, they take longer
    # than the limit to fetch (the worker stops fetching at its deadline, so memory stays bounded).
    limits = ExecutionLimits(
        timeout_s=0.3,
        kill_grace_s=10.0,
        max_rows=10**7,
        max_cells=10**9,
        max_batch_cells=10**10,
        max_result_bytes=2**40,
        max_batch_bytes=2**41,
    )
    sizes = [int(200 * 1.3**k) for k in range(24)]  # 200 .. ~83,000 rows of 50 cells
    with SqlExecutorPool(workers=2, limits=limits) as pool:
        results = pool.run([(empty_db, wide_select(50, n)) for n in sizes])
    statuses = [r.status for r in results]
    assert "ok" in statuses and "timeout" in statuses, statuses
    assert set(statuses) <= {"ok", "timeout"}, statuses
    late = [(n, round(r.elapsed_s, 3)) for n, r in zip(sizes, results) if r.ok and r.elapsed_s > 0.35]
    assert late == [], f"ok results past the {limits.timeout_s} s limit: {late}"
    assert all(r.rows == () for r in results if r.status == "timeout")


class BytesPath:
    """An os.PathLike whose path is bytes: not a database path the pool accepts."""

    def __fspath__(self) -> bytes:
        return b"/tmp/x.sqlite"


def test_jobs_of_the_wrong_type_are_rejected_and_the_batch_goes_on(toy_db: Path) -> None:
    jobs = [
        (toy_db, "SELECT count(*) FROM t"),
        (None, "SELECT 1"),
        (3, "SELECT 1"),
        (b"/tmp/x.sqlite", "SELECT 1"),
        (BytesPath(), "SELECT 1"),
        (toy_db, None),
        (toy_db, 5),
        (toy_db, b"SELECT 1"),
        (str(toy_db),),
        "SELECT 1",
        None,
        (str(toy_db), "SELECT max(id) FROM t"),
    ]
    with SqlExecutorPool(workers=1, limits=ExecutionLimits(timeout_s=5.0)) as pool:
        results = pool.run(jobs)
    assert results[0].rows == ((100,),) and results[-1].rows == ((99,),)
    for job, result in zip(jobs[1:-1], results[1:-1]):
        assert result.status == "rejected", (job, result)
        assert result.error, job
    assert "database path must be a str" in results[1].error and "NoneType" in results[1].error
    assert "got int" in results[2].error and "got bytes" in results[3].error
    assert "SQL must be a string, got NoneType" in results[5].error
    assert "(db_path, sql) pair" in results[8].error and "(db_path, sql) pair" in results[9].error
