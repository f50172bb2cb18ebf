"""The schema a text-to-SQL prompt shows: CREATE TABLE statements read from the database itself,
optionally followed by a few sample rows per table (the "CREATE TABLE + SELECT 3" prompt format)."""

from __future__ import annotations

import sqlite3
from functools import lru_cache
from pathlib import Path
from typing import Any

MAX_SAMPLE_CHARS = 60


def _clean_sql(sql: str) -> str:
    lines = [line.rstrip() for line in sql.strip().splitlines()]
    return "\n".join(line for line in lines if line) + ";"


def _show(value: Any) -> str:
    if isinstance(value, bytes):
        return f"<{len(value)}-byte blob>"
    text = "NULL" if value is None else str(value).replace("\n", " ").replace("\t", " ")
    return text if len(text) <= MAX_SAMPLE_CHARS else text[: MAX_SAMPLE_CHARS - 3] + "..."


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sample(conn: sqlite3.Connection, table: str, rows: int) -> str:
    cursor = conn.execute(f"SELECT * FROM {_quote(table)} LIMIT ?", (rows,))
    header = "\t".join(column[0] for column in cursor.description)
    lines = ["\t".join(_show(value) for value in row) for row in cursor.fetchall()]
    return (
        f"/*\n{len(lines)} rows from {table}:\n{header}\n" + "\n".join(lines) + ("\n" if lines else "") + "*/"
    )


@lru_cache(maxsize=512)
def _describe(db_path: str, sample_rows: int) -> str:
    conn = sqlite3.connect(Path(db_path).resolve().as_uri() + "?mode=ro", uri=True)
    conn.text_factory = lambda raw: raw.decode("utf-8", "replace")
    try:
        objects = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type IN ('table', 'view') AND sql IS NOT NULL"
            " AND name NOT LIKE 'sqlite!_%' ESCAPE '!' ORDER BY rowid"
        ).fetchall()
        parts = []
        for name, sql in objects:
            parts.append(_clean_sql(sql))
            if sample_rows:
                parts.append(_sample(conn, name, sample_rows))
        return "\n\n".join(parts)
    finally:
        conn.close()


def describe_database(db_path: str | Path, sample_rows: int = 0) -> str:
    """CREATE TABLE (and CREATE VIEW) statements of ``db_path`` in creation order, each followed by
    up to ``sample_rows`` rows when ``sample_rows > 0``. Cached per (file, sample_rows)."""
    if not isinstance(sample_rows, int) or isinstance(sample_rows, bool) or sample_rows < 0:
        raise ValueError(f"sample_rows must be a non-negative integer, got {sample_rows!r}")
    path = Path(db_path)
    if not path.is_file():
        raise FileNotFoundError(f"no SQLite database at {path}")
    try:
        return _describe(str(path.resolve()), sample_rows)
    except sqlite3.DatabaseError as err:
        raise ValueError(f"cannot read the schema of {path}: {err}") from err
