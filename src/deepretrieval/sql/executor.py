"""Run untrusted (model-written) SQL against SQLite files without letting it change, hang or exhaust anything.

Defence in depth; each layer alone stops most attacks:

1. a lexical gate (:func:`single_statement`): exactly one statement, and it must start with SELECT, WITH or
   VALUES; string literals, quoted identifiers and comments are tokenized, never split naively on ``;``;
2. the database is opened read-only (URI ``mode=ro``) with ``PRAGMA query_only=1``;
3. an authorizer allows only reads: SELECT, READ, RECURSIVE, functions other than ``load_extension``, and the
   catalogue pragmas of :data:`READ_ONLY_PRAGMAS` (as table-valued functions: ``pragma_table_info('t')``);
   every write, ATTACH/DETACH, other PRAGMA, transaction, VACUUM, REINDEX, ANALYZE... is denied. The
   eponymous virtual tables it allows (``json_each``, ``json_tree``, those pragmas) are connected before the
   authorizer is installed, because their first use makes SQLite authorize an internal UPDATE of
   ``sqlite_master`` that the authorizer must go on refusing to everything else;
4. resource limits: ``SQLITE_LIMIT_LENGTH`` (``randomblob(1e9)``, ``zeroblob(1e9)``, giant concatenations),
   SQL length, LIKE pattern length, no attached databases, ``PRAGMA hard_heap_limit``, ``RLIMIT_AS`` and
   ``RLIMIT_FSIZE`` for the worker, and caps on what comes back to the caller: rows, cells (rows x columns)
   and the Python memory the rows take once unpickled in the caller, estimated with ``sys.getsizeof`` of
   every row and value (about 60 bytes for a 2-character text cell, where SQLite counts 2). The cell and
   memory caps hold per statement and per :meth:`SqlExecutorPool.run` batch, so the caller holds at most
   ``max_batch_bytes`` of rows (plus one answer being unpickled); a result over a cap is ``truncated``
   (``rows`` holds the prefix that fits, possibly none) and can never match;
5. time: ``timeout_s`` covers the whole round trip, execute + fetch in the worker, transfer and unpickling.
   SQLite's progress handler interrupts a statement at its deadline, the worker checks it again between
   fetched chunks, and the caller reports every answer it holds later than ``timeout_s`` after dispatch as
   ``timeout``, never ``ok``. A worker stuck inside a single VM step past ``timeout_s + kill_grace_s``
   (``printf('%.*c', 2e9, 'x')`` fills its buffer for seconds before the length check) is killed by the
   parent and replaced;
6. isolation: statements run in worker processes, so a crash or a hang costs one result, never the caller.

Every failure becomes an :class:`ExecutionResult` with a status; :meth:`SqlExecutorPool.run` never raises
because of what a job holds (a non-string SQL or database path is that job's ``rejected`` result).
"""

from __future__ import annotations

import os
import re
import resource
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import weakref
from collections import OrderedDict, deque
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Literal, Self

from tqdm import tqdm

Status = Literal["ok", "error", "timeout", "crash", "rejected"]
Rows = tuple[tuple[Any, ...], ...]
Answer = tuple[Status, Rows, str, bool, int]  # a worker's reply: status, rows, error, truncated, size_bytes

MiB = 1024 * 1024
ALLOWED_FIRST_WORDS = frozenset({"SELECT", "WITH", "VALUES"})
DENIED_FUNCTIONS = frozenset({"load_extension", "fts3_tokenizer"})
# Pragmas that only describe the schema or the engine; their argument (if any) names a table or index, never a
# setting. Allowed as table-valued functions (``SELECT * FROM pragma_table_info('t')``); every other pragma,
# including the harmless-looking reads of settings, stays denied.
READ_ONLY_PRAGMAS = frozenset(
    {
        "table_info",
        "table_xinfo",
        "table_list",
        "index_info",
        "index_xinfo",
        "index_list",
        "foreign_key_list",
        "collation_list",
        "function_list",
        "module_list",
        "pragma_list",
    }
)
READ_ONLY_EPONYMOUS_TABLES = (
    "json_each",
    "json_tree",
    *(f"pragma_{name}" for name in sorted(READ_ONLY_PRAGMAS)),
)
WORKER_START_TIMEOUT_S = 60.0
DEFAULT_MAX_SQL_CHARS = 100_000


class UnsafeSqlError(ValueError):
    """The SQL text was refused before reaching SQLite."""


@dataclass(frozen=True, slots=True)
class ExecutionLimits:
    """Per-statement limits of the sandbox.

    ``timeout_s`` bounds the round trip from dispatch to the answer unpickled in the caller (later answers are
    ``timeout``); a worker that has not answered ``kill_grace_s`` after it (one VM step that never returns)
    is killed. A statement keeps at most ``max_rows`` rows, ``max_cells`` cells and ``max_result_bytes`` of
    estimated Python memory in the caller; a batch (one :meth:`SqlExecutorPool.run`) at most
    ``max_batch_cells`` and ``max_batch_bytes`` in all. ``heap_limit_bytes`` is SQLite's hard heap limit,
    ``address_space_bytes`` the worker's ``RLIMIT_AS`` on top of what it uses at start, ``temp_file_bytes``
    its ``RLIMIT_FSIZE`` (sorter spill files). ``None`` disables an OS limit.
    """

    timeout_s: float = 5.0
    kill_grace_s: float = 0.5
    max_rows: int = 10_000
    max_cells: int = 1_000_000
    max_result_bytes: int = 32 * MiB
    max_batch_cells: int = 8_000_000
    max_batch_bytes: int = 256 * MiB
    max_value_bytes: int = 4 * MiB
    max_sql_chars: int = DEFAULT_MAX_SQL_CHARS
    heap_limit_bytes: int = 512 * MiB
    address_space_bytes: int | None = 2048 * MiB
    temp_file_bytes: int | None = 1024 * MiB

    def __post_init__(self) -> None:
        for name in ("timeout_s", "kill_grace_s"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(
                    f"ExecutionLimits.{name} must be a positive number of seconds, got {value!r}"
                )
        for name in (
            "max_rows",
            "max_cells",
            "max_result_bytes",
            "max_batch_cells",
            "max_batch_bytes",
            "max_value_bytes",
            "max_sql_chars",
            "heap_limit_bytes",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"ExecutionLimits.{name} must be a positive integer, got {value!r}")
        for name in ("address_space_bytes", "temp_file_bytes"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < MiB):
                raise ValueError(f"ExecutionLimits.{name} must be None or an integer >= 1 MiB, got {value!r}")

    @property
    def kill_after_s(self) -> float:
        """Wall-clock seconds after dispatch at which the parent kills a silent worker."""
        return self.timeout_s + self.kill_grace_s


@dataclass(frozen=True, slots=True)
class ExecutionResult:
    """What one statement did. ``rows`` are SQLite's values (int, float, str, bytes, None).

    ``truncated``: the result went over a row, cell or memory cap (the statement's or what was left of the
    batch's) and ``rows`` holds only the prefix that fit. ``elapsed_s``: seconds between dispatch to a worker
    and its answer in hand (or its kill). ``size_bytes``: the estimated Python memory of ``rows``, what the
    batch budget was charged.
    """

    status: Status
    rows: Rows = ()
    error: str = ""
    truncated: bool = False
    elapsed_s: float = 0.0
    size_bytes: int = 0

    @property
    def ok(self) -> bool:
        return self.status == "ok"


# --------------------------------------------------------------------------------------------------
# Lexical gate. Hand-written because it is tiny and must agree with SQLite's own lexer on exactly the
# constructs that hide statement boundaries: '...' strings, "..." `...` [...] identifiers, -- and /* */
# comments (an unterminated one runs to the end, as in SQLite).


@dataclass(frozen=True, slots=True)
class Token:
    """One lexical token; ``depth`` is the parenthesis depth it sits at."""

    kind: Literal["space", "comment", "string", "identifier", "word", "semicolon", "open", "close", "other"]
    text: str
    depth: int


_TOKEN = re.compile(
    r"""
      (?P<space>\s+)
    | (?P<comment>--[^\n]*|/\*.*?(?:\*/|\Z))
    | (?P<string>'(?:[^']|'')*'?)
    | (?P<identifier>"(?:[^"]|"")*"?|`(?:[^`]|``)*`?|\[[^\]]*\]?)
    | (?P<semicolon>;)
    | (?P<open>\()
    | (?P<close>\))
    | (?P<word>[^\W\d][\w$]*)
    | (?P<other>\d[\w.]*|[^\s'"`\[;()\w/-]+|.)
    """,
    re.VERBOSE | re.DOTALL,
)


def tokenize(sql: str) -> list[Token]:
    """Split ``sql`` into tokens, tracking parenthesis depth. Linear time; never raises on ``str`` input."""
    tokens = []
    depth = 0
    for match in _TOKEN.finditer(sql):
        kind = match.lastgroup
        if kind == "close":
            depth = max(0, depth - 1)
        tokens.append(Token(kind, match.group(), depth))  # type: ignore[arg-type]
        if kind == "open":
            depth += 1
    return tokens


def _check_first_word(code: Token | None) -> None:
    if code is None or code.kind == "semicolon":
        raise UnsafeSqlError("SQL is empty")
    if code.kind != "word" or code.text.upper() not in ALLOWED_FIRST_WORDS:
        raise UnsafeSqlError(f"only SELECT / WITH / VALUES queries may run, got {code.text[:40]!r}")


def single_statement(sql: object, max_chars: int = DEFAULT_MAX_SQL_CHARS) -> str:
    """The one statement in ``sql`` without its trailing ``;``, or :class:`UnsafeSqlError` saying why not.

    Accepts trailing semicolons and comments; refuses a second statement, NUL characters, over-long text,
    and anything that does not start with SELECT, WITH or VALUES.
    """
    if not isinstance(sql, str):
        raise UnsafeSqlError(f"SQL must be a string, got {type(sql).__name__}")
    if len(sql) > max_chars:
        raise UnsafeSqlError(f"SQL is {len(sql)} characters long; the limit is {max_chars}")
    if "\x00" in sql:
        raise UnsafeSqlError("SQL contains a NUL character")
    if ";" not in sql:  # SQLite separates statements only with ';': this is one statement (or none)
        first = next((m for m in _TOKEN.finditer(sql) if m.lastgroup not in ("space", "comment")), None)
        _check_first_word(Token(first.lastgroup, first.group(), 0) if first else None)  # type: ignore
        return sql.strip()
    tokens = tokenize(sql)
    code = [t for t in tokens if t.kind not in ("space", "comment")]
    _check_first_word(code[0] if code else None)
    end = next((i for i, t in enumerate(code) if t.kind == "semicolon"), None)
    if end is None:  # every ';' sits in a string, identifier or comment
        return sql.strip()
    if any(t.kind != "semicolon" for t in code[end:]):
        raise UnsafeSqlError("SQL holds more than one statement")
    return "".join(t.text for t in tokens[: tokens.index(code[end])]).strip()


# --------------------------------------------------------------------------------------------------
# Worker side


def _authorize(action: int, arg1: str | None, arg2: str | None, db: str | None, trigger: str | None) -> int:
    """SQLite authorizer: reads only. For SQLITE_PRAGMA ``arg1`` is the pragma's name."""
    if action in (sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_RECURSIVE):
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() not in DENIED_FUNCTIONS:
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_PRAGMA and (arg1 or "").lower() in READ_ONLY_PRAGMAS:
        return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY


def _lenient_text(raw: bytes) -> str:
    # Some real databases (BIRD) hold invalid UTF-8; the default text factory would fail the whole query.
    return raw.decode("utf-8", "replace")


def _apply_process_limits(limits: ExecutionLimits) -> None:
    """Limits for the whole worker process: SQLite's heap, no core dumps, address space, file sizes."""
    with closing(sqlite3.connect(":memory:")) as conn:  # hard_heap_limit is process-wide
        conn.execute(f"PRAGMA hard_heap_limit={limits.heap_limit_bytes}")
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if limits.temp_file_bytes is not None:
        _lower_rlimit(resource.RLIMIT_FSIZE, limits.temp_file_bytes)
    if limits.address_space_bytes is not None and sys.platform.startswith("linux"):
        with open("/proc/self/statm") as statm:
            in_use = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        _lower_rlimit(resource.RLIMIT_AS, in_use + limits.address_space_bytes)


def _lower_rlimit(which: int, value: int) -> None:
    soft, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    if soft == resource.RLIM_INFINITY or value < soft:
        resource.setrlimit(which, (value, hard))


# Bytes charged on top of sys.getsizeof: the row's pointer in the result tuple and the allocator's header
# of the row tuple, and per value the rounding of every allocation up to 16 bytes (a 2-character str is 51
# bytes by getsizeof and takes 64 in pymalloc).
ROW_OVERHEAD_BYTES = 8 + 16
VALUE_OVERHEAD_BYTES = 16


def row_cost(row: tuple[Any, ...]) -> int:
    """Estimated bytes ``row`` takes once unpickled in a Python process. Shared objects (``None``, small
    ints) are charged too, so the estimate errs high."""
    return (
        ROW_OVERHEAD_BYTES
        + sys.getsizeof(row)
        + sum(map(sys.getsizeof, row))
        + VALUE_OVERHEAD_BYTES * len(row)
    )


def take_within(
    rows: Iterable[tuple[Any, ...]], max_rows: int, max_cells: int, max_bytes: int
) -> tuple[list[tuple[Any, ...]], bool, int]:
    """The longest prefix of ``rows`` within the caps, whether rows were left out, and its estimated bytes.
    Stops reading ``rows`` at the first row that does not fit."""
    kept: list[tuple[Any, ...]] = []
    cells = size = 0
    for row in rows:
        cost = row_cost(row)
        if len(kept) >= max_rows or cells + len(row) > max_cells or size + cost > max_bytes:
            return kept, True, size
        kept.append(row)
        cells += len(row)
        size += cost
    return kept, False, size


class _PastDeadline(Exception):
    """The worker's deadline passed while fetching (between two SQLite steps)."""


def open_readonly(db_path: str | os.PathLike[str], limits: ExecutionLimits) -> sqlite3.Connection:
    """A connection to an existing database file that can only read: URI ``mode=ro``, ``query_only``,
    the read-only authorizer, no extensions, SQLite's length, SQL-length, LIKE-pattern and attach limits,
    the read-only eponymous virtual tables (``json_each``, ``pragma_table_info``...) connected beforehand.

    No time limit (the caller installs a progress handler) and no heap limit (process-wide, so set only
    in workers). Raises ``FileNotFoundError`` for a missing file.
    """
    path = Path(db_path)
    if not path.is_file():
        raise FileNotFoundError(f"no database file at {path}")
    conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, isolation_level=None)
    try:
        conn.text_factory = _lenient_text
        conn.execute("PRAGMA query_only=1")
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, limits.max_value_bytes)
        conn.setlimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH, limits.max_sql_chars)
        conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
        conn.setlimit(sqlite3.SQLITE_LIMIT_LIKE_PATTERN_LENGTH, 10_000)
        if hasattr(conn, "enable_load_extension"):  # absent when Python's sqlite3 lacks extension support
            conn.enable_load_extension(False)
        _connect_eponymous_tables(conn)
        conn.set_authorizer(_authorize)
    except BaseException:
        conn.close()
        raise
    return conn


def _connect_eponymous_tables(conn: sqlite3.Connection) -> None:
    """Connect the allowed eponymous virtual tables once, before the authorizer is installed.

    Their first use on a connection makes SQLite authorize an UPDATE of ``sqlite_master`` (it declares the
    virtual table); after it, using them asks only for SELECT, READ and, for pragmas, SQLITE_PRAGMA. A table
    this build lacks (no JSON1) is skipped: using it fails as "no such table".
    """
    for table in READ_ONLY_EPONYMOUS_TABLES:
        try:
            conn.execute(f"SELECT * FROM {table} LIMIT 0").close()
        except sqlite3.OperationalError:
            pass


class _StatementRunner:
    """Runs statements inside a worker, keeping a few read-only connections open."""

    MAX_OPEN = 32

    def __init__(self, limits: ExecutionLimits):
        self.limits = limits
        self._connections: OrderedDict[str, sqlite3.Connection] = OrderedDict()
        self._deadline = 0.0

    def _past_deadline(self) -> bool:
        return time.monotonic() > self._deadline

    def _open(self, db_path: str) -> sqlite3.Connection:
        if db_path in self._connections:
            self._connections.move_to_end(db_path)
            return self._connections[db_path]
        conn = open_readonly(db_path, self.limits)
        conn.set_progress_handler(self._past_deadline, 1000)
        self._connections[db_path] = conn
        if len(self._connections) > self.MAX_OPEN:
            self._connections.popitem(last=False)[1].close()
        return conn

    def _forget(self, db_path: str) -> None:
        conn = self._connections.pop(db_path, None)
        if conn is not None:
            conn.close()

    def _fetched(self, cursor: sqlite3.Cursor) -> Iterator[tuple[Any, ...]]:
        """The cursor's rows, checking the deadline between chunks: the progress handler sees only SQLite's
        steps, not the Python work of building rows."""
        while chunk := cursor.fetchmany(256):
            if self._past_deadline():
                raise _PastDeadline
            yield from chunk

    def run(self, db_path: str, sql: object, max_cells: int, max_bytes: int) -> Answer:
        """Execute ``sql`` and keep at most ``max_cells`` cells and ``max_bytes`` estimated bytes of rows."""
        try:
            statement = single_statement(sql, self.limits.max_sql_chars)
        except UnsafeSqlError as err:
            return "rejected", (), str(err), False, 0
        cursor = None
        late = "timeout", (), f"statement ran past its {self.limits.timeout_s:g} s limit", False, 0
        try:
            self._deadline = time.monotonic() + self.limits.timeout_s
            conn = self._open(db_path)
            cursor = conn.execute(statement)
            rows, truncated, size = take_within(
                self._fetched(cursor), self.limits.max_rows, max_cells, max_bytes
            )
            if self._past_deadline():
                return late
            return "ok", tuple(rows), "", truncated, size
        except _PastDeadline:
            return late
        except sqlite3.OperationalError as err:
            if str(err) == "interrupted" and self._past_deadline():
                return late
            return "error", (), f"OperationalError: {err}", False, 0
        except MemoryError:
            cursor = None  # the connection may be unusable after SQLITE_NOMEM: start afresh
            self._forget(db_path)
            return "error", (), "MemoryError: out of memory", False, 0
        except Exception as err:  # noqa: BLE001 - any failure of untrusted SQL is a defined outcome
            return "error", (), f"{type(err).__name__}: {err}", False, 0
        finally:
            if cursor is not None:
                try:
                    cursor.close()
                except sqlite3.Error:
                    self._forget(db_path)


def _worker_main(fd: int) -> None:
    """Entry point of a worker process on socket ``fd``: receive the limits, then answer
    ``(db_path, sql, max_cells, max_bytes)`` jobs until ``None`` or EOF (the parent is gone)."""
    channel = Connection(fd)
    limits = channel.recv()
    _apply_process_limits(limits)
    runner = _StatementRunner(limits)
    channel.send("ready")
    while True:
        try:
            job = channel.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        channel.send(runner.run(*job))


# --------------------------------------------------------------------------------------------------
# Parent side. Hand-written rather than concurrent.futures / multiprocessing.Pool: those lose the whole
# pool (BrokenProcessPool) or hang forever when a worker dies mid-task, and cannot kill one stuck task.
# Here each worker has its own socket, so a kill or a crash costs exactly one result and one respawn.
# Workers are plain ``python -c`` subprocesses, not multiprocessing children: they never re-import the
# caller's ``__main__`` (no ``if __name__ == "__main__"`` guard needed) and never fork the caller's
# threads or GPU context.

_WORKER_BOOT = (
    "import sys; from deepretrieval.sql.executor import _worker_main; _worker_main(int(sys.argv[1]))"
)


def _worker_env() -> dict[str, str]:
    """The caller's environment, with this package importable even when it is not installed."""
    package_root = str(Path(__file__).resolve().parents[2])
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": package_root + (os.pathsep + path if path else "")}


class _Worker:
    def __init__(self, limits: ExecutionLimits):
        parent_end, child_end = socket.socketpair()
        with child_end:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _WORKER_BOOT, str(child_end.fileno())],
                pass_fds=(child_end.fileno(),),
                stdin=subprocess.DEVNULL,
                env=_worker_env(),
            )
        self.channel = Connection(parent_end.detach())
        self.channel.send(limits)
        self.ready = False
        self.started = time.monotonic()
        self.job: int | None = None
        self.dispatched = 0.0

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def ask_to_stop(self) -> None:
        try:
            self.channel.send(None)
        except (OSError, ValueError):
            pass

    def kill(self) -> None:
        if self.alive:
            self.process.kill()
        self.process.wait()
        self.channel.close()


def _stop_all(workers: list[_Worker], grace_s: float = 1.0) -> None:
    """Ask every worker to exit, wait up to ``grace_s`` for all of them, kill the rest."""
    for worker in workers:
        worker.ask_to_stop()
    deadline = time.monotonic() + grace_s
    for worker in workers:
        try:
            worker.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        worker.kill()
    workers.clear()


def default_workers() -> int:
    """Worker processes to start: the usable CPU cores, at least 1 and at most 8."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(8, cores))


class SqlExecutorPool:
    """A pool of sandboxed SQLite worker processes answering batches of ``(db_path, sql)`` jobs.

    Workers start on first use and keep their read-only connections open across batches.
    """

    def __init__(self, workers: int | None = None, limits: ExecutionLimits | None = None):
        if not hasattr(sqlite3.Connection, "setlimit"):
            raise RuntimeError(
                "the SQL sandbox needs Python 3.11+ (sqlite3.Connection.setlimit caps value sizes)"
            )
        if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool) or workers < 1):
            raise ValueError(f"workers must be a positive integer, got {workers!r}")
        self.size = workers or default_workers()
        self.limits = limits or ExecutionLimits()
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()
        self._finalizer = weakref.finalize(self, _stop_all, self._workers)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop every worker. The pool starts new ones if used again."""
        with self._lock:
            _stop_all(self._workers)

    def worker_pids(self) -> list[int]:
        """Process ids of the live workers (starting them if needed)."""
        with self._lock:
            self._fill()
            return [w.process.pid for w in self._workers]

    def execute(self, db_path: str | os.PathLike[str], sql: str) -> ExecutionResult:
        """Run one statement."""
        return self.run([(db_path, sql)])[0]

    def run(self, jobs: Sequence[object], progress: str | None = None) -> list[ExecutionResult]:
        """Run every ``(db_path, sql)`` job in parallel; results in job order. ``progress`` names a tqdm bar.

        A job whose SQL the lexical gate refuses, or whose path is not a ``str`` / ``os.PathLike``, is
        answered ``rejected`` here without a round trip (the worker checks the SQL again). The batch's rows
        share one cell and memory budget (``max_batch_cells``, ``max_batch_bytes``).
        """
        results: list[ExecutionResult | None] = [None] * len(jobs)
        payloads: list[tuple[str, str]] = [("", "")] * len(jobs)
        pending: deque[int] = deque()
        for index, job in enumerate(jobs):
            checked = _check_job(job, self.limits.max_sql_chars)
            if isinstance(checked, ExecutionResult):
                results[index] = checked
            else:
                payloads[index] = checked
                pending.append(index)
        with self._lock, tqdm(total=len(jobs), desc=progress, disable=progress is None) as bar:
            bar.update(len(jobs) - len(pending))
            batch = _Batch(
                results, payloads, pending, self.limits.max_batch_cells, self.limits.max_batch_bytes, bar
            )
            if batch.pending:
                self._fill()
            try:
                while batch.pending or any(w.job is not None for w in self._workers):
                    for worker in self._workers:
                        if worker.ready and worker.job is None and batch.pending:
                            self._dispatch(worker, batch)
                    self._collect(batch)
            except BaseException:  # e.g. KeyboardInterrupt: busy workers' answers belong to this batch
                for worker in [w for w in self._workers if w.job is not None]:
                    self._replace(worker)
                raise
        return batch.results  # type: ignore[return-value]

    def _fill(self) -> None:
        """Replace dead workers and start missing ones."""
        for worker in [w for w in self._workers if not w.alive]:
            self._replace(worker)
        while len(self._workers) < self.size:
            self._workers.append(_Worker(self.limits))

    def _replace(self, worker: _Worker) -> None:
        worker.kill()
        self._workers[self._workers.index(worker)] = _Worker(self.limits)

    def _dispatch(self, worker: _Worker, batch: _Batch) -> None:
        """Send the next pending job, with what is left of the batch budget as its caps."""
        index = batch.pending.popleft()
        max_cells = min(self.limits.max_cells, batch.cells_left)
        max_bytes = min(self.limits.max_result_bytes, batch.bytes_left)
        try:
            worker.channel.send((*batch.payloads[index], max_cells, max_bytes))
        except OSError:  # the worker died while idle: the job goes to a fresh one
            batch.pending.appendleft(index)
            self._replace(worker)
            return
        worker.job = index
        worker.dispatched = time.monotonic()

    def _collect(self, batch: _Batch) -> None:
        """Wait for answers, then kill workers past their deadline."""
        now = time.monotonic()
        deadlines = [w.dispatched + self.limits.kill_after_s for w in self._workers if w.job is not None]
        deadlines += [w.started + WORKER_START_TIMEOUT_S for w in self._workers if not w.ready]
        timeout = max(0.0, min(deadlines) - now) if deadlines else None
        ready = set(wait([w.channel for w in self._workers], timeout))
        for worker in list(self._workers):
            if worker.channel in ready:
                self._receive(worker, batch)
        now = time.monotonic()
        for worker in list(self._workers):
            if worker.job is not None and now >= worker.dispatched + self.limits.kill_after_s:
                batch.finish(
                    worker,
                    ExecutionResult(
                        "timeout",
                        error=f"worker killed: no answer {self.limits.kill_after_s:g} s after dispatch",
                        elapsed_s=now - worker.dispatched,
                    ),
                )
                self._replace(worker)
            elif not worker.ready and now >= worker.started + WORKER_START_TIMEOUT_S:
                raise RuntimeError(f"an SQL worker process did not start within {WORKER_START_TIMEOUT_S:g} s")

    def _receive(self, worker: _Worker, batch: _Batch) -> None:
        try:
            message = worker.channel.recv()
        except (EOFError, OSError):
            if not worker.ready:
                code = worker.process.poll()
                raise RuntimeError(f"an SQL worker process died while starting (exit code {code})") from None
            elapsed = time.monotonic() - worker.dispatched
            self._replace(worker)  # reaps it, so its exit code is known
            if worker.job is not None:
                batch.finish(
                    worker,
                    ExecutionResult(
                        "crash",
                        error=f"worker process died (exit code {worker.process.returncode})",
                        elapsed_s=elapsed,
                    ),
                )
            return
        if message == "ready":
            worker.ready = True
            return
        elapsed = time.monotonic() - worker.dispatched  # the answer is unpickled: the round trip is over
        status, rows, error, truncated, size = message
        if status == "ok" and elapsed > self.limits.timeout_s:
            result = ExecutionResult(
                "timeout",
                error=f"answer complete {elapsed:.2f} s after dispatch, past the {self.limits.timeout_s:g} s "
                "limit (fetching and transfer count)",
                elapsed_s=elapsed,
            )
        elif status == "ok":
            result = batch.charge(rows, truncated, size, elapsed)
        else:
            result = ExecutionResult(status, (), error, False, elapsed)
        batch.finish(worker, result)


@dataclass(slots=True)
class _Batch:
    """One :meth:`SqlExecutorPool.run` call: its results, the jobs still to send, what is left of its budget."""

    results: list[ExecutionResult | None]
    payloads: list[tuple[str, str]]
    pending: deque[int]
    cells_left: int
    bytes_left: int
    bar: tqdm

    def charge(self, rows: Rows, truncated: bool, size: int, elapsed: float) -> ExecutionResult:
        """An ``ok`` result charged to the budget; rows beyond what is left of it are cut off here (other
        answers may have used the budget since this job was sent with its caps)."""
        cells = sum(map(len, rows))
        if cells > self.cells_left or size > self.bytes_left:
            kept, _, size = take_within(rows, len(rows), self.cells_left, self.bytes_left)
            rows, truncated, cells = tuple(kept), True, sum(map(len, kept))
        self.cells_left -= cells
        self.bytes_left -= size
        return ExecutionResult("ok", rows, "", truncated, elapsed, size)

    def finish(self, worker: _Worker, result: ExecutionResult) -> None:
        assert worker.job is not None
        self.results[worker.job] = result
        worker.job = None
        self.bar.update(1)


def _check_job(job: object, max_sql_chars: int) -> tuple[str, str] | ExecutionResult:
    """``(database path, statement)`` of a well-formed job, or its ``rejected`` result saying what is wrong."""
    if not isinstance(job, Sequence) or isinstance(job, (str, bytes)) or len(job) != 2:
        return ExecutionResult("rejected", error=f"a job must be a (db_path, sql) pair, got {job!r:.80}")
    db_path, sql = job
    try:
        path = os.fspath(db_path) if isinstance(db_path, (str, os.PathLike)) else None
    except TypeError:  # __fspath__ returned neither str nor bytes
        path = None
    if not isinstance(path, str):
        return ExecutionResult(
            "rejected",
            error=f"the database path must be a str or os.PathLike of str, got {type(db_path).__name__}",
        )
    try:
        return path, single_statement(sql, max_sql_chars)
    except UnsafeSqlError as err:
        return ExecutionResult("rejected", error=str(err))
