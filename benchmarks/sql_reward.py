"""SQL execution throughput on a GRPO-shaped batch: our sandboxed worker pool vs a one-at-a-time executor.

A batch is 64 Spider dev questions x 8 sampled SQL answers: the gold query and realistic wrong variants
(order flipped, LIMIT or WHERE dropped, COUNT(*) instead of the columns, DISTINCT toggled, a misspelt
table, a reformatted copy, a wrapped subquery); within a group an answer repeats an earlier one with
probability ``--dup-rate``.

    python benchmarks/sql_reward.py [--prompts 64] [--samples 8] [--repeats 5] [--workers N] [--json PATH]

Same (database, SQL) pairs, same process, median of ``--repeats``:
  serial   one pair at a time, each in a new thread joined with a timeout and a plain
           ``sqlite3.connect`` per call: how the original code executed (func_timeout style)
  pool     ``SqlExecutorPool.run`` on all pairs (warm workers: started once, as in training)
  measure  ``SqlTask.measure`` on the same answers: dedupe, gold queries executed too (cold gold cache
           each repetition), results compared; counted as answers judged per second
  floor    in-process, one cached connection per database, no thread, no sandbox, no time limit:
           what executing alone costs (unsafe; shown to price the sandbox)
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sqlite3
import statistics
import threading
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from _common import shared_data_dir
from deepretrieval.sql.executor import ExecutionLimits, SqlExecutorPool
from deepretrieval.tasks.base import Example
from deepretrieval.tasks.sql import SqlTask

Pair = tuple[str, str]


def variants(sql: str) -> list[str]:
    """Plausible wrong (or differently written) answers derived from a gold query."""
    sql = sql.strip().rstrip(";").rstrip()
    out = [" ".join(sql.split()), f"SELECT * FROM ({sql})"]
    if re.search(r"\bDESC\b", sql, re.IGNORECASE):
        out.append(re.sub(r"\bDESC\b", "ASC", sql, flags=re.IGNORECASE))
    elif re.search(r"\bORDER\s+BY\b", sql, re.IGNORECASE):
        out.append(re.sub(r"(\bORDER\s+BY\s+[^\s]+)", r"\1 DESC", sql, count=1, flags=re.IGNORECASE))
    if re.search(r"\bLIMIT\s+\d+", sql, re.IGNORECASE):
        out.append(re.sub(r"\s+LIMIT\s+\d+", "", sql, flags=re.IGNORECASE))
    single = len(re.findall(r"\bSELECT\b", sql, re.IGNORECASE)) == 1
    if single:
        out.append(
            re.sub(
                r"^SELECT\s+(DISTINCT\s+)?.*?\s+FROM\b",
                "SELECT count(*) FROM",
                sql,
                count=1,
                flags=re.IGNORECASE | re.DOTALL,
            )
        )
        where = re.search(r"\s+WHERE\b.*?(?=\s+(?:GROUP|ORDER|LIMIT)\b|$)", sql, re.IGNORECASE | re.DOTALL)
        if where:
            out.append(sql[: where.start()] + sql[where.end() :])
    if re.match(r"SELECT\s+DISTINCT\b", sql, re.IGNORECASE):
        out.append(re.sub(r"^SELECT\s+DISTINCT\b", "SELECT", sql, flags=re.IGNORECASE))
    else:
        out.append(re.sub(r"^SELECT\b", "SELECT DISTINCT", sql, flags=re.IGNORECASE))
    out.append(re.sub(r"\bFROM\s+(\w+)", r"FROM \1_x", sql, count=1, flags=re.IGNORECASE))
    return out


def make_batch(examples: list[Example], rng: random.Random, prompts: int, samples: int, dup_rate: float):
    chosen = rng.sample(examples, prompts)
    answers, batch_examples = [], []
    for ex in chosen:
        group = [ex.truth]
        pool = variants(ex.truth)
        while len(group) < samples:
            group.append(rng.choice(group) if rng.random() < dup_rate else rng.choice(pool))
        answers += group
        batch_examples += [ex] * samples
    return answers, batch_examples


def thread_timeout_execute(db_path: str, sql: str, timeout_s: float) -> tuple[str, Any]:
    """One statement the original way: a fresh connection in a fresh thread, joined with a timeout."""
    box: dict[str, Any] = {}

    def target() -> None:
        conn = sqlite3.connect(db_path)
        try:
            box["rows"] = conn.execute(sql).fetchall()
        except Exception as err:  # noqa: BLE001 - any failure is an outcome here
            box["error"] = err
        finally:
            conn.close()

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        return "timeout", None  # the thread cannot be stopped; it keeps running
    return ("ok", box["rows"]) if "rows" in box else ("error", box["error"])


def unsandboxed_floor(pairs: list[Pair]) -> None:
    connections: dict[str, sqlite3.Connection] = {}
    for db_path, sql in pairs:
        conn = connections.get(db_path) or connections.setdefault(db_path, sqlite3.connect(db_path))
        try:
            conn.execute(sql).fetchall()
        except sqlite3.Error:
            pass
    for conn in connections.values():
        conn.close()


def time_it(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=shared_data_dir() / "spider")
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dup-rate", type=float, default=0.35)
    parser.add_argument("--timeout", type=float, default=5.0, help="per-statement limit, both executors")
    parser.add_argument("--workers", type=int, default=None, help="pool size (default: usable cores, max 8)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args()
    if not (args.data / "dev.json").is_file():
        raise SystemExit(f"no Spider dev.json under {args.data} (set DEEPRETRIEVAL_DATA or pass --data)")

    limits = ExecutionLimits(timeout_s=args.timeout)
    pool = SqlExecutorPool(args.workers, limits)
    examples = SqlTask(args.data, pool=pool).examples("dev")
    answers, batch_examples = make_batch(
        examples, random.Random(args.seed), args.prompts, args.samples, args.dup_rate
    )
    pairs: list[Pair] = [(ex.meta["db_path"], sql) for sql, ex in zip(answers, batch_examples)]

    pool_start_s = time_it(lambda: pool.execute(pairs[0][0], "SELECT 1"))
    pool_results = pool.run(pairs)  # warm-up: every database opened once by some worker

    serial_results = [thread_timeout_execute(db, sql, args.timeout) for db, sql in pairs]
    disagreements = sum(
        (status == "ok") != res.ok or (status == "ok" and list(res.rows) != value)
        for (status, value), res in zip(serial_results, pool_results)
    )

    serial_s, pool_s, measure_s, floor_s = [], [], [], []
    for _ in tqdm(range(args.repeats), desc="repeats"):
        serial_s.append(time_it(lambda: [thread_timeout_execute(db, sql, args.timeout) for db, sql in pairs]))
        pool_s.append(time_it(lambda: pool.run(pairs)))
        task = SqlTask(args.data, pool=pool)  # cold gold cache; the examples carry their database paths
        measure_s.append(time_it(lambda task=task: task.measure(answers, batch_examples)))
        floor_s.append(time_it(lambda: unsandboxed_floor(pairs)))
    pool.close()

    n = len(pairs)
    figures = {
        "pairs": n,
        "unique_pairs": len(set(pairs)),
        "workers": pool.size,
        "pool_start_s": round(pool_start_s, 3),
        "serial_exec_per_s": round(n / statistics.median(serial_s), 1),
        "pool_exec_per_s": round(n / statistics.median(pool_s), 1),
        "measure_answers_per_s": round(n / statistics.median(measure_s), 1),
        "floor_exec_per_s": round(n / statistics.median(floor_s), 1),
        "ok_fraction": round(sum(r.ok for r in pool_results) / n, 3),
        "serial_pool_disagreements": disagreements,
    }
    figures["speedup"] = round(figures["pool_exec_per_s"] / figures["serial_exec_per_s"], 2)
    figures["measure_speedup"] = round(figures["measure_answers_per_s"] / figures["serial_exec_per_s"], 2)

    print(
        f"\n{n} (db, sql) pairs = {args.prompts} Spider dev questions x {args.samples} answers "
        f"({figures['unique_pairs']} distinct, {figures['ok_fraction']:.0%} run without error); "
        f"median of {args.repeats}; pool of {pool.size} workers (start {pool_start_s:.2f} s, not counted)"
    )
    rows = [
        ("serial: thread + timeout per call, new conn", figures["serial_exec_per_s"]),
        ("pool: SqlExecutorPool.run, every pair", figures["pool_exec_per_s"]),
        ("measure: dedupe + gold + compare (answers/s)", figures["measure_answers_per_s"]),
        ("floor: in-process, cached conn, NO sandbox", figures["floor_exec_per_s"]),
    ]
    print(f"{'executor':<44} {'exec/s':>10} {'vs serial':>10}")
    for name, rate in rows:
        print(f"{name:<44} {rate:>10.1f} {rate / figures['serial_exec_per_s']:>9.2f}x")
    print(f"serial and pool disagree on {disagreements} of {n} results")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=1))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
