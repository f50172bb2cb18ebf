"""Adversarial SQL against copies of real Spider dev databases.

Every statement is generated from templates over each database's own tables and columns. Afterwards:
every database file is byte-identical (sha256) and no file appeared beside it, every statement
answered within its time limit + 1 s (wall time from dispatch to a worker until its answer or kill,
measured by the parent), nothing was a worker crash, and the pool still answers correctly.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from deepretrieval.sql.executor import ExecutionLimits, ExecutionResult, SqlExecutorPool, open_readonly

DATABASES = ("world_1", "car_1", "flight_2", "dog_kennels")
LIMITS = ExecutionLimits(timeout_s=1.0, kill_grace_s=0.5)
Expect = Literal["denied", "bounded", "allowed"]

DENIED = [
    "DROP TABLE {t}",
    "DROP TABLE IF EXISTS {t}",
    "drop table {t}",
    "DROP INDEX IF EXISTS idx",
    "DROP VIEW IF EXISTS v",
    "DELETE FROM {t}",
    "DELETE FROM {t} WHERE 1 = 1",
    "  \n\t DeLeTe FrOm {t}",
    "UPDATE {t} SET {c} = NULL",
    "UPDATE {t} SET {c} = {c}",
    "UPDATE OR REPLACE {t} SET {c} = 1",
    "INSERT INTO {t} DEFAULT VALUES",
    "INSERT INTO {t} SELECT * FROM {t}",
    "INSERT OR REPLACE INTO {t} SELECT * FROM {t}",
    "REPLACE INTO {t} SELECT * FROM {t}",
    "INSERT INTO {t}({c}) VALUES (1) ON CONFLICT DO NOTHING",
    "CREATE TABLE evil (x)",
    "CREATE TEMP TABLE evil (x)",
    "CREATE TABLE evil AS SELECT * FROM {t}",
    "CREATE INDEX evil_idx ON {t}({c})",
    "CREATE VIEW evil_view AS SELECT 1",
    "CREATE TEMP VIEW evil_view AS SELECT 1",
    "CREATE TRIGGER evil_trg AFTER INSERT ON {t} BEGIN DELETE FROM {t}; END",
    "CREATE VIRTUAL TABLE evil_fts USING fts5(x)",
    "ALTER TABLE {t} RENAME TO evil",
    "ALTER TABLE {t} ADD COLUMN evil INTEGER",
    "ALTER TABLE {t} RENAME COLUMN {c} TO evil",
    "ATTACH DATABASE '{tmp}/evil.db' AS evil",
    "ATTACH ':memory:' AS evil",
    "ATTACH DATABASE '{db}' AS again",
    "DETACH DATABASE main",
    "VACUUM",
    "VACUUM main",
    "VACUUM INTO '{tmp}/copy.db'",
    "VACUUM main INTO '{tmp}/copy2.db'",
    "PRAGMA journal_mode = WAL",
    "PRAGMA journal_mode = DELETE",
    "PRAGMA writable_schema = ON",
    "PRAGMA user_version = 42",
    "PRAGMA application_id = 7",
    "PRAGMA schema_version = 1",
    "PRAGMA query_only = 0",
    "PRAGMA page_size = 512",
    "PRAGMA auto_vacuum = FULL",
    "PRAGMA locking_mode = EXCLUSIVE",
    "PRAGMA synchronous = OFF",
    "PRAGMA foreign_keys = OFF",
    "PRAGMA hard_heap_limit = 0",
    "PRAGMA soft_heap_limit = 0",
    "PRAGMA mmap_size = 1000000000",
    "PRAGMA temp_store_directory = '{tmp}'",
    "PRAGMA wal_checkpoint(TRUNCATE)",
    "PRAGMA incremental_vacuum",
    "PRAGMA optimize",
    "PRAGMA table_info({t})",
    "PRAGMA index_list({t})",
    "pragma main.user_version = 3",
    # pragmas as table-valued functions: only the catalogue ones (table_info, index_list...) may run; any
    # pragma that writes, changes state or reads a setting stays denied, alone, joined or nested
    "SELECT * FROM pragma_optimize",
    "SELECT * FROM pragma_optimize(65534)",
    "SELECT * FROM pragma_table_info('{tn}') JOIN pragma_optimize",
    "SELECT (SELECT count(*) FROM pragma_optimize)",
    "WITH x AS (SELECT * FROM pragma_optimize) SELECT * FROM x",
    "SELECT * FROM pragma_journal_mode",
    "SELECT * FROM pragma_journal_mode('wal')",
    "SELECT * FROM pragma_user_version",
    "SELECT * FROM pragma_schema_version",
    "SELECT * FROM pragma_application_id",
    "SELECT * FROM pragma_query_only",
    "SELECT * FROM pragma_writable_schema",
    "SELECT * FROM pragma_foreign_keys",
    "SELECT * FROM pragma_hard_heap_limit",
    "SELECT * FROM pragma_hard_heap_limit(0)",
    "SELECT * FROM pragma_soft_heap_limit(0)",
    "SELECT * FROM pragma_cache_size",
    "SELECT * FROM pragma_mmap_size",
    "SELECT * FROM pragma_wal_checkpoint",
    "SELECT * FROM pragma_wal_checkpoint('TRUNCATE')",
    "SELECT * FROM pragma_incremental_vacuum",
    "SELECT * FROM pragma_shrink_memory",
    "SELECT * FROM pragma_integrity_check",
    "SELECT * FROM pragma_database_list",
    "SELECT * FROM dbstat",
    "SELECT * FROM sqlite_dbpage",
    "REINDEX",
    "REINDEX {t}",
    "ANALYZE",
    "ANALYZE {t}",
    "BEGIN EXCLUSIVE",
    "BEGIN IMMEDIATE; DELETE FROM {t}; COMMIT",
    "SAVEPOINT s1",
    "RELEASE s1",
    "ROLLBACK",
    "COMMIT",
    "END",
    "EXPLAIN DELETE FROM {t}",
    "EXPLAIN QUERY PLAN SELECT 1",
    "WITH x AS (SELECT 1) DELETE FROM {t}",
    "WITH x AS (SELECT 1) UPDATE {t} SET {c} = NULL",
    "WITH x AS (SELECT 1) INSERT INTO {t} DEFAULT VALUES",
    "WITH x AS (SELECT 1) REPLACE INTO {t} SELECT * FROM {t}",
    "SELECT load_extension('/lib/x86_64-linux-gnu/libc.so.6')",
    "SELECT load_extension('evil', 'sqlite3_evil_init')",
    "SELECT * FROM {t} WHERE load_extension('evil') IS NULL",
    "SELECT 1 UNION SELECT load_extension('evil')",
    "SELECT fts3_tokenizer('simple')",
    "SELECT writefile('{tmp}/evil.txt', 'x')",
    "SELECT edit('x')",
    "SELECT 1; DROP TABLE {t}",
    "SELECT 1;DROP TABLE {t};",
    "SELECT * FROM {t}; DELETE FROM {t}",
    "SELECT ';'; DELETE FROM {t}",
    "SELECT 1 /* ; */ ; DELETE FROM {t}",
    'SELECT "a;b"; DROP TABLE {t}',
    "SELECT 1 -- comment\n; DROP TABLE {t}",
    "/* SELECT */ DROP TABLE {t}",
    "-- SELECT\nDELETE FROM {t}",
    "SELECT 1; ATTACH ':memory:' AS m",
    "SELECT 1; PRAGMA writable_schema = ON",
    "SELECT 1\x00; DROP TABLE {t}",
    "(DROP TABLE {t})",
    "SELECT 1; VACUUM INTO '{tmp}/copy3.db'",
    "VALUES (1); DELETE FROM {t}",
    "SELECT * FROM {t} WHERE {c} IN (DELETE FROM {t} RETURNING {c})",
    "DELETE FROM {t} RETURNING *",
]

BOUNDED = [
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x FROM c) SELECT max(x) FROM c",
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c",
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c ORDER BY x DESC LIMIT 1",
    "WITH RECURSIVE c(x) AS (SELECT randomblob(1000) UNION ALL SELECT x FROM c) SELECT count(*) FROM c",
    "SELECT count(*) FROM {t} a, {t} b, {t} c, {t} d, {t} e, {t} f",
    "SELECT * FROM {t} a, {t} b, {t} c ORDER BY random()",
    "SELECT a.*, b.*, c.* FROM {t} a CROSS JOIN {t} b CROSS JOIN {t} c",
    "SELECT group_concat(hex(randomblob(100000))) FROM {t} a, {t} b",
    "SELECT randomblob(1e9)",
    "SELECT randomblob(1000000000)",
    "SELECT length(randomblob(1e9))",
    "SELECT zeroblob(1e9)",
    "SELECT length(zeroblob(2147483647))",
    "SELECT hex(randomblob(500000000))",
    "SELECT printf('%.*c', 1000000000, 'x')",
    "SELECT printf('%.*c', 2147483647, {c}) FROM {t}",
    "SELECT replace(hex(zeroblob(1000000)), '0', hex(zeroblob(1000000)))",
    "SELECT substr(printf('%.*c', 100000000, 'x'), 1, 10)",
    "SELECT printf('%.*c', 4000000, 'a') LIKE printf('%.*c', 4000000, '%') || 'b'",
    "SELECT 1 WHERE printf('%.*c', 3000000, 'a') GLOB printf('%.*c', 30000, '*') || 'b'",
    "SELECT " + "(" * 3000 + "1" + ")" * 3000,
    "SELECT " + "1+" * 20_000 + "1",
    "SELECT " + "1+" * 60_000 + "1",
    "SELECT " + ", ".join(["1"] * 20_000),
    "SELECT json(printf('%.*c', 100000, '['))",
    "WITH RECURSIVE r(x) AS (SELECT 1 UNION SELECT x + 1 FROM r WHERE x < 1e12) SELECT count(*) FROM r",
    "SELECT count(*) FROM {t} a JOIN {t} b ON a.{c} LIKE '%' || b.{c} || '%' JOIN {t} c JOIN {t} d",
    "SELECT upper(hex(randomblob(2000000)))",
]

ALLOWED = [
    "SELECT count(*) FROM {t}",
    "select count(*) from {t};",
    "SELECT count(*) FROM {t};;",
    "SELECT count(*) FROM {t} -- ; DROP TABLE {t}",
    "SELECT count(*) FROM {t} /* ; DELETE FROM {t} */",
    "/* leading comment */ SELECT count(*) FROM {t}",
    "WITH x AS (SELECT count(*) AS n FROM {t}) SELECT n FROM x",
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < (SELECT count(*) FROM {t})) SELECT max(x) FROM c",
    # read-only table-valued functions
    "SELECT name FROM pragma_table_info('{tn}') ORDER BY cid",
    "SELECT * FROM pragma_table_xinfo('{tn}')",
    "SELECT * FROM pragma_index_list('{tn}')",
    "SELECT i.name, c.name FROM pragma_index_list('{tn}') AS i, pragma_index_info(i.name) AS c",
    "SELECT * FROM pragma_foreign_key_list('{tn}')",
    "SELECT l.name, p.name FROM pragma_table_list AS l JOIN pragma_table_info(l.name) AS p WHERE l.schema = 'main'",
    "SELECT count(*) FROM pragma_collation_list",
    "SELECT count(*) FROM json_each('[1, 2, 3]')",
    "SELECT key, value FROM json_tree('{{\"a\": [1, 2]}}')",
    "SELECT j.value FROM {t}, json_each(json_array({t}.{c})) AS j LIMIT 5",
]


@dataclass(frozen=True)
class Case:
    db: Path
    sql: str
    expect: Expect


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def biggest_table(db: Path) -> tuple[str, str]:
    """(table, first column) of the table with the most rows, read from the read-only original."""
    with closing(sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        table = max(tables, key=lambda t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0])
        column = conn.execute(f'SELECT * FROM "{table}" LIMIT 0').description[0][0]
    return table, column


@pytest.fixture(scope="module")
def copies(spider_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str, str]]:
    root = tmp_path_factory.mktemp("adversarial")
    out = {}
    for name in DATABASES:
        source = spider_dir / "database" / name / f"{name}.sqlite"
        (root / name).mkdir()
        shutil.copyfile(source, root / name / f"{name}.sqlite")
        out[name] = (root / name / f"{name}.sqlite", *biggest_table(source))
    return out


def build_cases(copies: dict[str, tuple[Path, str, str]], scratch: Path) -> list[Case]:
    cases = []
    for db, table, column in copies.values():
        names = {
            "t": f'"{table}"',
            "tn": table.replace("'", "''"),
            "c": f'"{column}"',
            "tmp": scratch,
            "db": db,
        }
        for expect, templates in (("denied", DENIED), ("bounded", BOUNDED), ("allowed", ALLOWED)):
            cases += [Case(db, template.format(**names), expect) for template in templates]  # type: ignore[arg-type]
    return cases


def check(case: Case, result: ExecutionResult) -> None:
    label = f"{case.expect} {case.sql[:80]!r} on {case.db.name}: {result.status} {result.error[:80]}"
    assert result.status != "crash", label
    assert result.elapsed_s <= LIMITS.timeout_s + 1.0, label
    if case.expect == "denied":
        assert result.status in ("rejected", "error"), label
    elif case.expect == "allowed":
        assert result.status == "ok" and not result.truncated, label
    else:
        assert result.status in ("ok", "error", "timeout", "rejected"), label


def snapshot(copies: dict[str, tuple[Path, str, str]]) -> dict[Path, tuple[str, list[str]]]:
    """sha256 of every database file and the names of the files beside it."""
    return {db: (sha256(db), sorted(p.name for p in db.parent.iterdir())) for db, _, _ in copies.values()}


def test_adversarial_statements_change_nothing_and_stay_bounded(copies, tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    cases = build_cases(copies, scratch)
    assert len(cases) >= 200
    before = snapshot(copies)

    with SqlExecutorPool(workers=4, limits=LIMITS) as pool:
        results = pool.run([(case.db, case.sql) for case in cases])
        for case, result in zip(cases, results):
            check(case, result)
        statuses = {
            status: sum(r.status == status for r in results)
            for status in ("ok", "error", "timeout", "rejected")
        }
        assert statuses["timeout"] > 0 and statuses["rejected"] > 0 and statuses["error"] > 0
        assert any("killed" in r.error for r in results)  # the one-long-step cases needed the hard kill

        for db, table, _ in copies.values():
            with closing(sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)) as conn:
                expected = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()
            assert pool.execute(db, f'SELECT count(*) FROM "{table}"').rows == (expected,)
        assert len(pool.worker_pids()) == 4

    assert snapshot(copies) == before, "a database file changed or a file appeared beside one"
    assert list(scratch.iterdir()) == [], "a statement created a file"


# Statements the gate refuses but SQLite's own layers let through because they change nothing: SQLite
# consults the authorizer only for objects that exist (DROP ... IF EXISTS of an absent object, REINDEX of
# a table without indexes are no-ops), and EXPLAIN QUERY PLAN and the catalogue pragmas only read.
NO_OP_PREFIXES = (
    "EXPLAIN QUERY PLAN SELECT",
    "DROP INDEX IF EXISTS idx",
    "DROP VIEW IF EXISTS v",
    "REINDEX ",
    "PRAGMA table_info(",
    "PRAGMA index_list(",
)


def test_sqlite_layers_alone_refuse_every_write(copies, tmp_path: Path) -> None:
    """Defence in depth: with the lexical gate bypassed, the read-only connection (mode=ro, query_only,
    authorizer, limits) still refuses every denied statement, and nothing changes on disk."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    before = snapshot(copies)
    cases = [case for case in build_cases(copies, scratch) if case.expect == "denied"]
    let_through = []
    for case in cases:
        with closing(open_readonly(case.db, LIMITS)) as conn:
            try:
                conn.execute(case.sql).fetchall()
            except (sqlite3.Error, ValueError):
                continue
        let_through.append(case.sql)
    assert all(sql.startswith(NO_OP_PREFIXES) for sql in let_through), let_through
    assert snapshot(copies) == before, "a database file changed or a file appeared beside one"
    assert list(scratch.iterdir()) == [], "a statement created a file"
