"""The sandboxed SQL executor: real SQLite files, real worker processes, real kills."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import threading
from pathlib import Path

import pytest

from deepretrieval.sql.executor import (
    ExecutionLimits,
    SqlExecutorPool,
    UnsafeSqlError,
    single_statement,
    tokenize,
)

RUNAWAY = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
# printf() fills 2e9 characters inside ONE virtual-machine step: the progress handler never runs, so
# only the parent's kill stops it.
ONE_LONG_STEP = "SELECT length(printf('%.*c', 2000000000, 'x'))"


@pytest.fixture(scope="module")
def toy_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("toy") / "toy.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, score REAL)")
        conn.executemany("INSERT INTO t VALUES (?, ?, ?)", [(i, f"name{i % 17}", i / 7) for i in range(200)])
        conn.execute("CREATE INDEX t_name ON t (name)")
    return path


@pytest.fixture(scope="module")
def pool():
    with SqlExecutorPool(workers=2, limits=ExecutionLimits(timeout_s=1.0)) as pool:
        yield pool


def direct(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


@pytest.mark.parametrize(
    ("sql", "statement"),
    [
        ("SELECT 1", "SELECT 1"),
        ("  select 1 ;  ", "select 1"),
        ("SELECT 1;;", "SELECT 1"),
        ("SELECT 1; -- trailing comment", "SELECT 1"),
        ("SELECT 1 /* ; DROP TABLE t */", "SELECT 1 /* ; DROP TABLE t */"),
        ("SELECT ';DROP TABLE t;' ;", "SELECT ';DROP TABLE t;'"),
        ("SELECT 'it''s; fine'", "SELECT 'it''s; fine'"),
        ('SELECT "a;b" FROM [x;y]', 'SELECT "a;b" FROM [x;y]'),
        ("-- note\nWITH a AS (SELECT 1) SELECT * FROM a", "-- note\nWITH a AS (SELECT 1) SELECT * FROM a"),
        ("VALUES (1), (2);", "VALUES (1), (2)"),
    ],
)
def test_gate_accepts_one_read_statement(sql: str, statement: str) -> None:
    assert single_statement(sql) == statement


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("SELECT 1; SELECT 2", "more than one statement"),
        ("SELECT ';'; DROP TABLE t", "more than one statement"),
        ("SELECT 1 /* ; */ ; DELETE FROM t", "more than one statement"),
        ("SELECT 1 -- c\n; DROP TABLE t", "more than one statement"),
        ("/* SELECT */ DROP TABLE t", "got 'DROP'"),
        ("-- SELECT\nDELETE FROM t", "got 'DELETE'"),
        ("PRAGMA user_version = 1", "got 'PRAGMA'"),
        ("EXPLAIN SELECT 1", "got 'EXPLAIN'"),
        ("(SELECT 1)", "got '('"),
        ("", "empty"),
        (" ; ", "empty"),
        ("-- only a comment", "empty"),
        ("SELECT 1\x00; DROP TABLE t", "NUL"),
        ("SELECT " + "1+" * 60_000 + "1", "limit is"),
        (None, "must be a string"),
        (b"SELECT 1", "must be a string"),
    ],
)
def test_gate_refuses(sql: object, reason: str) -> None:
    with pytest.raises(UnsafeSqlError, match=re.escape(reason)):
        single_statement(sql)


def test_tokenizer_tracks_parenthesis_depth_outside_strings() -> None:
    tokens = tokenize("SELECT a FROM (SELECT ')' AS a ORDER BY a) ORDER BY a")
    orders = [t.depth for t in tokens if t.kind == "word" and t.text == "ORDER"]
    assert orders == [1, 0]


def test_rows_match_direct_sqlite_and_keep_job_order(pool: SqlExecutorPool, toy_db: Path) -> None:
    queries = [f"SELECT id, name, score FROM t WHERE id % 10 = {k} ORDER BY id" for k in range(10)] * 3
    results = pool.run([(toy_db, sql) for sql in queries])
    for sql, result in zip(queries, results):
        assert result.status == "ok", result.error
        assert list(result.rows) == direct(toy_db, sql)
        assert not result.truncated


def test_writes_and_attach_are_denied_and_file_unchanged(
    pool: SqlExecutorPool, toy_db: Path, tmp_path: Path
) -> None:
    before = toy_db.read_bytes()
    statements = [
        "DELETE FROM t",
        "WITH x AS (SELECT 1) UPDATE t SET name = NULL",
        f"ATTACH DATABASE '{tmp_path / 'evil.db'}' AS evil",
        f"VACUUM INTO '{tmp_path / 'copy.db'}'",
        "SELECT load_extension('/lib/x86_64-linux-gnu/libc.so.6')",
    ]
    for result in pool.run([(toy_db, sql) for sql in statements]):
        assert result.status in ("rejected", "error")
    assert "not authorized" in pool.execute(toy_db, "WITH x AS (SELECT 1) DELETE FROM t").error
    assert toy_db.read_bytes() == before
    assert list(tmp_path.iterdir()) == []


def test_read_only_table_valued_functions_run(pool: SqlExecutorPool, toy_db: Path) -> None:
    queries = [
        "SELECT cid, name, type, pk FROM pragma_table_info('t') ORDER BY cid",
        "SELECT name, \"unique\" FROM pragma_index_list('t') ORDER BY name",
        "SELECT l.name, count(*) FROM pragma_table_list AS l, pragma_table_info(l.name) WHERE l.name = 't'",
        "SELECT key, value, type FROM json_each('[1, \"a\", null]')",
        'SELECT fullkey, atom FROM json_tree(\'{"a": {"b": [1, 2]}}\') WHERE atom IS NOT NULL',
        "SELECT t.id, j.value FROM t, json_each(json_array(t.id, t.name)) AS j WHERE t.id < 3",
    ]
    for sql, result in zip(queries, pool.run([(toy_db, sql) for sql in queries])):
        assert result.status == "ok", (sql, result.error)
        assert list(result.rows) == direct(toy_db, sql) != [], sql


def test_pragmas_that_write_or_read_settings_stay_denied(pool: SqlExecutorPool, toy_db: Path) -> None:
    before = toy_db.read_bytes()
    queries = [
        "SELECT * FROM pragma_optimize",
        "SELECT * FROM pragma_table_info('t') JOIN pragma_optimize",
        "SELECT * FROM pragma_user_version",
        "SELECT * FROM pragma_query_only",
        "SELECT * FROM pragma_hard_heap_limit(0)",
        "WITH x AS (SELECT * FROM pragma_journal_mode) SELECT * FROM x",
    ]
    for sql, result in zip(queries, pool.run([(toy_db, sql) for sql in queries])):
        assert result.status == "error" and "not authorized" in result.error, (sql, result)
    assert toy_db.read_bytes() == before


def test_missing_database_is_an_error_result(pool: SqlExecutorPool, tmp_path: Path) -> None:
    result = pool.execute(tmp_path / "absent.sqlite", "SELECT 1")
    assert result.status == "error" and "no database file" in result.error
    assert not (tmp_path / "absent.sqlite").exists()


def test_runaway_query_times_out_and_pool_keeps_serving(pool: SqlExecutorPool, toy_db: Path) -> None:
    result = pool.execute(toy_db, RUNAWAY)
    assert result.status == "timeout"
    assert "limit" in result.error
    assert result.elapsed_s <= pool.limits.timeout_s + 1.0
    assert pool.execute(toy_db, "SELECT count(*) FROM t").rows == ((200,),)


def test_worker_stuck_in_one_step_is_killed_and_replaced(toy_db: Path) -> None:
    limits = ExecutionLimits(timeout_s=0.3, kill_grace_s=0.3)
    with SqlExecutorPool(workers=1, limits=limits) as pool:
        first_pid = pool.worker_pids()[0]
        result = pool.execute(toy_db, ONE_LONG_STEP)
        assert result.status == "timeout"
        assert "killed" in result.error
        assert result.elapsed_s <= limits.timeout_s + 1.0
        assert pool.worker_pids()[0] != first_pid
        assert pool.execute(toy_db, "SELECT max(id) FROM t").rows == ((199,),)


def test_crash_costs_one_result(toy_db: Path) -> None:
    with SqlExecutorPool(workers=1, limits=ExecutionLimits(timeout_s=30.0)) as pool:
        assert pool.execute(toy_db, "SELECT 1").ok  # the worker is up
        victim = pool.worker_pids()[0]
        killer = threading.Timer(0.5, os.kill, (victim, signal.SIGKILL))
        killer.start()
        results = pool.run([(toy_db, RUNAWAY), (toy_db, "SELECT count(*) FROM t"), (toy_db, "SELECT 2")])
        killer.join()
        assert results[0].status == "crash" and "exit code -9" in results[0].error
        assert results[1].rows == ((200,),) and results[2].rows == ((2,),)
        assert pool.worker_pids()[0] != victim


def test_row_and_byte_caps_truncate(toy_db: Path) -> None:
    limits = ExecutionLimits(timeout_s=2.0, max_rows=50, max_result_bytes=64 * 1024)
    with SqlExecutorPool(workers=1, limits=limits) as pool:
        many_rows = pool.execute(toy_db, "SELECT id FROM t ORDER BY id")
        assert many_rows.ok and many_rows.truncated
        assert many_rows.rows == tuple((i,) for i in range(50))
        big_rows = pool.execute(toy_db, "SELECT printf('%.*c', 10000, 'x') FROM t")
        assert big_rows.ok and big_rows.truncated and 0 < len(big_rows.rows) < 10
        endless = pool.execute(
            toy_db, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c"
        )
        assert endless.ok and endless.truncated and len(endless.rows) == 50


def test_value_length_and_heap_limits_become_errors(toy_db: Path) -> None:
    limits = ExecutionLimits(
        timeout_s=5.0, max_value_bytes=256 * 1024 * 1024, heap_limit_bytes=16 * 1024 * 1024
    )
    with SqlExecutorPool(workers=1, limits=limits) as pool:
        result = pool.execute(toy_db, "SELECT length(randomblob(64000000))")
        assert result.status == "error" and "memory" in result.error.lower()
        assert pool.execute(toy_db, "SELECT count(*) FROM t").rows == ((200,),)
    with SqlExecutorPool(workers=1, limits=ExecutionLimits(timeout_s=5.0)) as pool:
        for sql in ("SELECT randomblob(1e9)", "SELECT zeroblob(1e9)", "SELECT hex(randomblob(3000000))"):
            result = pool.execute(toy_db, sql)
            assert result.status == "error" and "too big" in result.error


def test_address_space_limit_stops_python_side_blowup(toy_db: Path) -> None:
    limits = ExecutionLimits(
        timeout_s=20.0, max_rows=10**9, max_result_bytes=2**40, address_space_bytes=256 * 1024 * 1024
    )
    with SqlExecutorPool(workers=1, limits=limits) as pool:
        sql = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 400000) SELECT x, hex(randomblob(500)) FROM c"
        result = pool.execute(toy_db, sql)
        assert result.status in ("error", "crash")
        assert pool.execute(toy_db, "SELECT count(*) FROM t").rows == ((200,),)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("timeout_s", 0),
        ("timeout_s", -1.0),
        ("kill_grace_s", "1"),
        ("max_rows", 0),
        ("max_rows", 2.5),
        ("heap_limit_bytes", True),
        ("address_space_bytes", 10),
    ],
)
def test_limits_validate(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        ExecutionLimits(**{field: value})


def test_pool_rejects_bad_worker_count() -> None:
    with pytest.raises(ValueError, match="workers"):
        SqlExecutorPool(workers=0)


def test_closed_pool_restarts_on_use(toy_db: Path) -> None:
    pool = SqlExecutorPool(workers=1, limits=ExecutionLimits(timeout_s=1.0))
    assert pool.execute(toy_db, "SELECT 7").rows == ((7,),)
    pids = pool.worker_pids()
    pool.close()  # waits for (and reaps) every worker
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids)
    assert pool.execute(toy_db, "SELECT 8").rows == ((8,),)
    pool.close()


def test_interrupted_batch_leaves_no_stale_job(toy_db: Path, python_sigint) -> None:
    with SqlExecutorPool(workers=1, limits=ExecutionLimits(timeout_s=3.0)) as pool:
        assert pool.execute(toy_db, "SELECT 1").ok
        busy = pool.worker_pids()[0]
        interrupt = threading.Timer(0.3, signal.pthread_kill, (threading.main_thread().ident, signal.SIGINT))
        interrupt.start()
        with pytest.raises(KeyboardInterrupt):
            pool.run([(toy_db, RUNAWAY)])
        interrupt.join()
        assert pool.worker_pids()[0] != busy  # the worker still running the abandoned job was replaced
        assert [r.rows for r in pool.run([(toy_db, "SELECT 1"), (toy_db, "SELECT 2")])] == [((1,),), ((2,),)]
