"""Text-to-SQL search (Spider, BIRD): the policy writes SQL, the database executes it, and execution
accuracy is the outcome.

Layouts read:

* Spider: ``dev.json`` / ``train_spider.json`` (or ``train_spider_min.json``) / ``test.json`` with
  ``question``, ``query``, ``db_id`` (and the parsed ``sql`` that gives the difficulty),
  ``database/<db_id>/<db_id>.sqlite`` (``test_database/`` for test);
* BIRD: ``<split>.json`` with ``question``, ``evidence``, ``SQL``, ``db_id`` (``difficulty``),
  ``<split>_databases/<db_id>/<db_id>.sqlite``, either in the data folder or in ``<data>/<split>/``.

Examples whose database file is absent are skipped with one warning that counts them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Self

from cachetools import LRUCache
from pydantic import Field

from deepretrieval.sql.compare import DIALECTS, Compat, Dialect, check_compat, execution_sql, results_match
from deepretrieval.sql.executor import ExecutionLimits, ExecutionResult, SqlExecutorPool
from deepretrieval.sql.hardness import spider_hardness
from deepretrieval.sql.schema import describe_database
from deepretrieval.tasks import TaskFamily
from deepretrieval.tasks.base import Example, Judgment, Outcome, PromptShape, TaskOptions

logger = logging.getLogger(__name__)

SPIDER_SPLIT_FILES = {
    "dev": ("dev.json",),
    "train": ("train_spider.json", "train_spider_min.json"),
    "test": ("test.json",),
}
SPIDER_DATABASE_DIRS = {"test": "test_database"}
GOLD_CACHE_BYTES = 256 * 1024 * 1024
PROGRESS_MIN_JOBS = 256
CACHEABLE = ("ok", "error", "rejected")  # deterministic outcomes; a timeout or crash may not repeat
SQL_OUTCOMES = frozenset({"ex", "executed", "timeout"})
"""Execution match, the prediction ran, it ran out of time."""


class SqlDataError(ValueError):
    """A data folder without the expected Spider/BIRD layout; the message says what is missing."""


def detect_dialect(data_dir: Path) -> Dialect:
    """``"spider"`` for a folder with ``tables.json`` or ``database/``, ``"bird"`` for ``*_databases/``."""
    if (data_dir / "tables.json").is_file() or (data_dir / "database").is_dir():
        return "spider"
    if any(data_dir.glob("*_databases")) or any(data_dir.glob("*/*_databases")):
        return "bird"
    raise SqlDataError(
        f"{data_dir} is neither a Spider folder (tables.json, database/<db_id>/<db_id>.sqlite) nor a BIRD "
        "folder (<split>.json, <split>_databases/<db_id>/<db_id>.sqlite); pass dialect= to say which"
    )


def _read_records(path: Path) -> list[dict[str, Any]]:
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise SqlDataError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise SqlDataError(f"{path} must hold a JSON list of objects")
    return records


def _field(record: dict[str, Any], key: str, path: Path, index: int) -> str:
    value = record.get(key)
    if not isinstance(value, str):
        raise SqlDataError(f"{path}[{index}]: expected a string {key!r}, got {value!r:.60}")
    return value


class SqlTask:
    """Spider or BIRD text-to-SQL bound to its databases and a sandboxed executor pool.

    ``measure`` runs every predicted and gold query of a batch through the pool in one call, each distinct
    (database, SQL) pair once; gold results are cached. Outcome keys: ``ex`` (execution match),
    ``executed`` (the prediction ran), ``timeout`` (it ran out of time).
    """

    name = "sql"
    answer_key = "sql"
    default_template = "sql"
    supports_feedback = False
    outcome_keys = SQL_OUTCOMES

    def __init__(
        self,
        data_dir: str | Path,
        dialect: Dialect | None = None,
        split: str = "dev",
        *,
        sample_rows: int = 0,
        limits: ExecutionLimits | None = None,
        workers: int | None = None,
        pool: SqlExecutorPool | None = None,
        compat: Compat = "keep_distinct",
        metrics: Sequence[str] = ("ex", "executed"),
    ):
        unknown = [m for m in metrics if m not in SQL_OUTCOMES]
        if not metrics or unknown:
            raise ValueError(f"sql metrics are {', '.join(sorted(SQL_OUTCOMES))}; got {list(metrics)}")
        self.metrics = tuple(metrics)
        self.primary_metric = self.metrics[0]
        self.data_dir = Path(data_dir)
        if not self.data_dir.is_dir():
            raise SqlDataError(f"SQL data folder {self.data_dir} does not exist")
        if dialect is not None and dialect not in DIALECTS:
            raise ValueError(f"dialect must be one of {DIALECTS}, got {dialect!r}")
        if not isinstance(sample_rows, int) or isinstance(sample_rows, bool) or sample_rows < 0:
            raise ValueError(f"sample_rows must be a non-negative integer, got {sample_rows!r}")
        self.dialect: Dialect = dialect or detect_dialect(self.data_dir)
        self.compat = check_compat(compat, self.dialect)
        self.split = split
        self.sample_rows = sample_rows
        self._pool = pool
        self._owns_pool = pool is None
        self._limits = limits
        self._workers = workers
        self._examples: dict[str, list[Example]] = {}
        # gold results by (database, SQL), bounded by their size in the caller's memory
        self._gold_cache: LRUCache[tuple[str, str], ExecutionResult] = LRUCache(
            GOLD_CACHE_BYTES, getsizeof=lambda result: max(result.size_bytes, 1)
        )

    # ------------------------------------------------------------------ lifecycle

    @property
    def pool(self) -> SqlExecutorPool:
        """The executor pool, started on first use unless one was given."""
        if self._pool is None:
            self._pool = SqlExecutorPool(self._workers, self._limits)
        return self._pool

    def close(self) -> None:
        """Stop the pool's workers if this task started them."""
        if self._owns_pool and self._pool is not None:
            self._pool.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def default_reward(self) -> dict[str, object]:
        """Execution reward: Spider 1/0; BIRD's recipe gives 0.3 to SQL that runs but is wrong."""
        return {"kind": "execution", "wrong": 0.3 if self.dialect == "bird" else 0.0}

    @property
    def default_split(self) -> str:
        return self.split

    @property
    def splits(self) -> list[str]:
        """Splits whose question file is present (Spider: ``dev.json``...; BIRD: ``<split>.json`` beside
        ``<split>_databases/``, in the data folder or in ``<data>/<split>/``)."""
        if self.dialect == "spider":
            return [
                split
                for split, names in SPIDER_SPLIT_FILES.items()
                if any((self.data_dir / name).is_file() for name in names)
            ]
        databases = [*self.data_dir.glob("*_databases"), *self.data_dir.glob("*/*_databases")]
        return sorted(
            {
                d.name.removesuffix("_databases")
                for d in databases
                if (d.parent / f"{d.name[:-10]}.json").is_file()
            }
        )

    @property
    def fingerprint(self) -> str:
        """The dialect and the database files (path, size, modification time) of the examples' split."""
        databases = sorted({ex.meta["db_path"] for ex in self.examples()})
        stats = [(path, os.stat(path).st_size, os.stat(path).st_mtime_ns) for path in databases]
        return hashlib.sha256(json.dumps([self.dialect, stats]).encode()).hexdigest()[:16]

    def analyze_many(self, answers: Sequence[str]) -> list[list[str]]:
        """No repetition guard for SQL: repeating a column name cannot inflate execution accuracy."""
        return [[] for _ in answers]

    def query_errors(self, queries: Sequence[str]) -> list[str | None]:
        """SQL that does not run is judged by executing it (``executed`` 0), not refused beforehand."""
        return [None] * len(queries)

    # ------------------------------------------------------------------ data

    def examples(self, split: str | None = None) -> list[Example]:
        """Examples of ``split`` (default: the task's split) whose database file exists."""
        split = split or self.split
        if split not in self._examples:
            loader = self._spider_records if self.dialect == "spider" else self._bird_records
            self._examples[split] = self._build(split, *loader(split))
        return self._examples[split]

    def _spider_records(self, split: str) -> tuple[Path, list[dict[str, Any]], Path]:
        names = SPIDER_SPLIT_FILES.get(split, (f"{split}.json",))
        path = next((self.data_dir / n for n in names if (self.data_dir / n).is_file()), None)
        if path is None:
            raise SqlDataError(f"Spider split {split!r} needs one of {', '.join(names)} in {self.data_dir}")
        return path, _read_records(path), self.data_dir / SPIDER_DATABASE_DIRS.get(split, "database")

    def _bird_records(self, split: str) -> tuple[Path, list[dict[str, Any]], Path]:
        for folder in (self.data_dir, self.data_dir / split):
            if (folder / f"{split}.json").is_file():
                return (
                    folder / f"{split}.json",
                    _read_records(folder / f"{split}.json"),
                    folder / f"{split}_databases",
                )
        raise SqlDataError(
            f"BIRD split {split!r} needs {split}.json in {self.data_dir} or {self.data_dir / split}"
        )

    def _build(self, split: str, path: Path, records: list[dict[str, Any]], db_root: Path) -> list[Example]:
        sql_key = "query" if self.dialect == "spider" else "SQL"
        examples, missing = [], Counter()
        for index, record in enumerate(records):
            db_id = _field(record, "db_id", path, index)
            db_path = db_root / db_id / f"{db_id}.sqlite"
            if not db_path.is_file():
                missing[db_id] += 1
                continue
            question = _field(record, "question", path, index)
            evidence = str(record.get("evidence") or "") if self.dialect == "bird" else ""
            # position: the record's 0-based index in the split file (predictions files are in that order)
            meta: dict[str, Any] = {"db_id": db_id, "db_path": str(db_path), "position": index}
            hardness = self._hardness(record)
            if hardness:
                meta["hardness"] = hardness
            examples.append(
                Example(
                    id=f"{self.dialect}-{split}-{record.get('question_id', index)}",
                    fields={
                        "question": question,
                        "schema": describe_database(db_path, self.sample_rows),
                        "evidence": evidence,
                    },
                    truth=_field(record, sql_key, path, index),
                    original=question,
                    meta=meta,
                )
            )
        if missing:
            counts = ", ".join(f"{db_id}: {n}" for db_id, n in missing.most_common())
            logger.warning(
                "%s %s: skipped %d of %d examples whose database file is missing under %s (%s)",
                self.dialect,
                split,
                sum(missing.values()),
                len(records),
                db_root,
                counts,
            )
        return examples

    def _hardness(self, record: dict[str, Any]) -> str | None:
        if self.dialect == "bird":
            return record.get("difficulty") or None
        if isinstance(record.get("sql"), dict):
            try:
                return spider_hardness(record["sql"])
            except ValueError:
                return None
        return None

    # ------------------------------------------------------------------ prompts

    def messages(self, example: Example, prompting: PromptShape) -> list[dict[str, str]]:
        """[system, user]: the schema as CREATE TABLE statements, BIRD evidence, the question, the format
        (the seed's templates derive their own schema from ``db_path``)."""
        fields = example.fields
        knowledge = f"External knowledge: {fields['evidence']}\n\n" if fields.get("evidence") else ""
        return prompting.messages({**fields, "knowledge": knowledge, "db_path": example.meta["db_path"]})

    def feedback_snippets(self, example: Example, count: int, words: int) -> list[str]:
        raise ValueError("the sql task is judged by a database: it has no search results to show")

    # ------------------------------------------------------------------ judging

    def judge(self, answers: Sequence[str], examples: Sequence[Example]) -> list[Judgment]:
        """:meth:`measure`'s outcomes: a database ranks nothing."""
        return [Judgment(outcome) for outcome in self.measure(answers, examples)]

    def measure(self, answers: Sequence[str], examples: Sequence[Example]) -> list[Outcome]:
        """Execute predicted and gold SQL (one pool batch, each distinct pair once) and compare results."""
        if len(answers) != len(examples):
            raise ValueError(f"{len(answers)} answers for {len(examples)} examples")
        if any("db_path" not in ex.meta for ex in examples):
            raise ValueError(
                "SqlTask.measure needs examples made by SqlTask.examples (meta['db_path'] missing)"
            )
        # the SQL as executed: in ``official`` mode rewritten as Spider's evaluator does (DISTINCT removed...)
        preds = [
            (
                ex.meta["db_path"],
                execution_sql(a, compat=self.compat, prediction=True) if isinstance(a, str) else "",
            )
            for a, ex in zip(answers, examples)
        ]
        golds = [(ex.meta["db_path"], execution_sql(ex.truth, compat=self.compat)) for ex in examples]
        jobs = list(
            dict.fromkeys(
                [p for p in preds if p[1].strip() and p not in self._gold_cache]
                + [g for g in golds if g not in self._gold_cache]
            )
        )
        results = dict(
            zip(jobs, self.pool.run(jobs, "executing SQL" if len(jobs) >= PROGRESS_MIN_JOBS else None))
        )
        for key in golds:
            # a truncated result may be cut elsewhere next time (the batch budget): never cached
            if key in results and results[key].status in CACHEABLE and not results[key].truncated:
                self._gold_cache[key] = results[key]

        def lookup(key: tuple[str, str]) -> ExecutionResult | None:
            return results.get(key) or self._gold_cache.get(key)

        outcomes, failed_gold = [], []
        for pred_key, gold_key in zip(preds, golds):
            pred = lookup(pred_key) if pred_key[1].strip() else None
            gold = lookup(gold_key)
            if gold is None or not gold.ok:
                failed_gold.append((gold_key, gold))
            executed = pred is not None and pred.ok
            match = (
                executed
                and gold is not None
                and gold.ok
                and not pred.truncated
                and not gold.truncated
                and results_match(
                    gold.rows, pred.rows, dialect=self.dialect, gold_sql=gold_key[1], compat=self.compat
                )
            )
            outcomes.append(
                {
                    "ex": float(match),
                    "executed": float(executed),
                    "timeout": float(pred is not None and pred.status == "timeout"),
                }
            )
        if failed_gold:
            (db_path, sql), result = failed_gold[0]
            logger.warning(
                "%d gold queries did not execute (they score ex=0); first: %s on %s: %s",
                len(failed_gold),
                sql[:80],
                Path(db_path).name,
                result.error if result else "no result",
            )
        return outcomes


class SqlOptions(TaskOptions):
    """``task.options`` of text-to-SQL: the dialect (detected when absent), sample rows in the prompt, and
    the sandbox's worker count, per-statement time limit and row cap."""

    dialect: Dialect | None = None
    split: str = "dev"
    metrics: tuple[Literal["ex", "executed", "timeout"], ...] = Field(
        ("ex", "executed"), min_length=1, description="reported metrics, the first is the primary"
    )
    sample_rows: int = Field(0, ge=0)
    workers: int | None = Field(None, gt=0)
    timeout_s: float | None = Field(None, gt=0)
    max_rows: int | None = Field(None, gt=0)
    compat: Compat = Field(
        "keep_distinct",
        description="keep_distinct: Spider's evaluator with --keep_distinct (our default); official: its "
        "default verdicts (DISTINCT removed from both queries before executing)",
    )


def build(data: Path | None, options: SqlOptions, retriever: None) -> SqlTask:
    """Task ``sql``: Spider or BIRD, judged by the sandboxed executor pool."""
    limits = ExecutionLimits(
        **({"timeout_s": options.timeout_s} if options.timeout_s is not None else {}),
        **({"max_rows": options.max_rows} if options.max_rows is not None else {}),
    )
    return SqlTask(
        data,
        options.dialect,
        options.split,
        sample_rows=options.sample_rows,
        limits=limits,
        workers=options.workers,
        compat=options.compat,
        metrics=options.metrics,
    )


FAMILY = TaskFamily(template="sql", options=SqlOptions, build=build)
