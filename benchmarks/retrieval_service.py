"""The retrieval service under load, beside the same searches through the in-process index.

    python benchmarks/retrieval_service.py [--clients 16] [--requests 24] [--batch 64] [--k 101]
                                           [--rounds 3] [--json PATH]

Starts ``deepretrieval serve-retriever`` over a SciFact BM25 index as a subprocess on loopback, then, each
round, 16 client threads (one ``RemoteRetriever`` each, as 16 rollout workers would hold) send
``--requests`` batched searches of ``--batch`` SciFact claims each. Reported: queries per second, request
latency p50/p99, errors (failed rankings or exceptions: must be 0), whether every ranking equals the
in-process one, and the server's memory (RSS, and its anonymous part, which is what a leak would grow:
the memory-mapped index pages count in RSS once touched) before the load, after the first round and after
the last (flat = no growth between rounds). The in-process figure runs the same batches one after
another through one ``BM25Retriever`` (what every worker would do with its own copy of the index).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

from _common import shared_data_dir
from deepretrieval.retrievers import open_retriever
from deepretrieval.retrievers.bm25 import BM25Retriever
from deepretrieval.retrievers.corpus import load_corpus
from deepretrieval.tasks.beir import read_queries

MIB = 2**20


def memory(pid: int) -> dict[str, float]:
    """RSS and its anonymous part (heap; not file-backed index pages), in MiB."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
    )
    anonymous = int(fields["RssAnon"].split()[0]) * 1024 if "RssAnon" in fields else 0
    return {"rss_mib": psutil.Process(pid).memory_info().rss / MIB, "anon_mib": anonymous / MIB}


def start_service(index_dir: Path) -> tuple[subprocess.Popen, str]:
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "deepretrieval.cli",
            "serve-retriever",
            "--index",
            f"scifact={index_dir}",
            "--port",
            "0",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = server.stdout.readline()
    if not line.startswith("retrieval service on "):
        server.kill()
        raise RuntimeError(f"the service did not start: {line!r}")
    return server, line.split()[3]


def load_round(url: str, batches: list[list[str]], clients: int, requests: int, k: int, expected) -> dict:
    """``clients`` threads x ``requests`` searches; latencies, errors and equality with ``expected``."""
    latencies: list[float] = []
    errors = [0]
    mismatches = [0]
    lock = threading.Lock()
    retrievers = [open_retriever("remote", endpoint=url) for _ in range(clients)]
    barrier = threading.Barrier(clients + 1)

    def client(c: int) -> None:
        barrier.wait()
        for r in range(requests):
            b = (c * requests + r) % len(batches)
            start = time.perf_counter()
            try:
                rankings = retrievers[c].search(batches[b], k)
            except Exception:  # noqa: BLE001 - counted, not raised: the error count is a reported figure
                with lock:
                    errors[0] += 1
                continue
            elapsed = time.perf_counter() - start
            failed = sum(ranking.failed for ranking in rankings)
            wrong = sum(
                got.doc_ids != want.doc_ids or not np.array_equal(got.scores, want.scores)
                for got, want in zip(rankings, expected[b])
            )
            with lock:
                latencies.append(elapsed)
                errors[0] += failed
                mismatches[0] += wrong

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    for retriever in retrievers:
        retriever.close()
    queries = clients * requests * len(batches[0])
    return {
        "wall_s": wall,
        "qps": queries / wall,
        "requests_per_s": clients * requests / wall,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": float(np.percentile(latencies, 99)) * 1000,
        "errors": errors[0],
        "mismatches": mismatches[0],
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=shared_data_dir() / "scifact")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=24, help="batched searches per client per round")
    parser.add_argument("--batch", type=int, default=64, help="queries per request")
    parser.add_argument("--k", type=int, default=101, help="depth (the SciFact task's ndcg@10 + recall@100)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    claims = list(read_queries(args.data / "queries.jsonl").values())
    batches = [
        [claims[(start + i) % len(claims)] for i in range(args.batch)]
        for start in range(0, len(claims), args.batch)
    ]
    with tempfile.TemporaryDirectory() as scratch:
        index = BM25Retriever.build(load_corpus(args.data), Path(scratch) / "scifact", show_progress=False)
        expected = [index.search(batch, args.k) for batch in batches]  # also warms the page cache

        # in-process: the same number of batched searches, one after another
        total = args.clients * args.requests
        start = time.perf_counter()
        for r in range(total):
            index.search(batches[r % len(batches)], args.k)
        in_process_qps = total * args.batch / (time.perf_counter() - start)

        server, url = start_service(index.index_dir)
        try:
            before = memory(server.pid)
            rounds = []
            for _ in range(args.rounds):
                rounds.append(load_round(url, batches, args.clients, args.requests, args.k, expected))
                rounds[-1]["memory"] = memory(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=60)
        index.close()

    best = max(rounds, key=lambda r: r["qps"])
    figures = {
        "clients": args.clients,
        "requests_per_client_per_round": args.requests,
        "batch": args.batch,
        "k": args.k,
        "rounds": rounds,
        "service_qps": best["qps"],
        "in_process_qps": in_process_qps,
        "qps_ratio_service_over_in_process": best["qps"] / in_process_qps,
        "errors": sum(r["errors"] for r in rounds),
        "mismatches": sum(r["mismatches"] for r in rounds),
        "server_memory_before": before,
        "server_memory_after_first_round": rounds[0]["memory"],
        "server_memory_after_last_round": rounds[-1]["memory"],
        "load_average": psutil.getloadavg()[0],
        "cpus": psutil.cpu_count(),
    }
    print(
        f"{args.clients} clients x {args.requests} requests x {args.batch} queries, k={args.k}, {args.rounds} rounds"
    )
    print("round  qps     req/s  p50 ms  p99 ms  errors  mismatches  server RSS MiB (anon)")
    for i, r in enumerate(rounds, 1):
        m = r["memory"]
        print(
            f"{i:<5}  {r['qps']:<6.0f}  {r['requests_per_s']:<5.1f}  {r['p50_ms']:<6.1f}  {r['p99_ms']:<6.1f}  "
            f"{r['errors']:<6}  {r['mismatches']:<10}  {m['rss_mib']:.1f} ({m['anon_mib']:.1f})"
        )
    print(f"server before load: RSS {before['rss_mib']:.1f} MiB (anon {before['anon_mib']:.1f})")
    print(
        f"service {best['qps']:.0f} queries/s vs in-process {in_process_qps:.0f} queries/s "
        f"(ratio {figures['qps_ratio_service_over_in_process']:.2f}); errors {figures['errors']}, "
        f"rankings different from in-process {figures['mismatches']}"
    )
    print(f"load average {figures['load_average']:.1f} on {figures['cpus']} CPUs")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0 if figures["errors"] == 0 and figures["mismatches"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
