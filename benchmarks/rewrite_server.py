"""Load test of the query-rewriting API: dynamic batching vs one-at-a-time generation, same server code.

Starts ``deepretrieval serve`` (the embedded SmolLM2-135M, on CPU unless a GPU is visible) as a separate
process on loopback, then lets ``--clients`` concurrent clients each send ``--requests`` sequential
``POST /rewrite`` requests (queries from the bundled demo collection). Run twice:

  batched          --max-batch 32 --max-wait-ms 10: requests arriving together share one generation call
  one-at-a-time    --max-batch 1: one generation call per query (what a server without batching does)

and prints errors, wall time, throughput, latency percentiles and the batch sizes the server formed
(from ``GET /health``), side by side, with the throughput ratio. The server's queue and deadline are
opened wide (every request waits its turn, as the 30-minute client timeout does): this measures
throughput; how the default bounded queue and deadline behave under overload and abandoned requests is
``benchmarks/serve_abandon.py``.

    python benchmarks/rewrite_server.py [--clients 200] [--requests 2] [--baseline-clients 50]
                                        [--max-new-tokens 32] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

import httpx

from deepretrieval.data.demo import demo_dir


def demo_queries() -> list[str]:
    lines = (demo_dir() / "queries.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["text"] for line in lines if line.strip()]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(
    max_batch: int, max_wait_ms: float, max_new_tokens: int, log: IO[str]
) -> tuple[subprocess.Popen, str]:
    """``deepretrieval serve`` on a free loopback port; its stderr goes to ``log`` (a file, not a pipe: a
    chatty server never blocks on it)."""
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable, "-m", "deepretrieval.cli", "serve", "--port", str(port),
            "--max-batch", str(max_batch), "--max-wait-ms", str(max_wait_ms),
            "--max-new-tokens", str(max_new_tokens),
            # opened wide: this measures throughput (every request waits its turn); overload, with the
            # server's default queue and deadline, is benchmarks/serve_abandon.py
            "--max-queue", "100000", "--request-timeout-s", "1800",
        ],
        stdout=subprocess.DEVNULL, stderr=log, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if server.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"the server exited: {log.read()[-2000:]}")
        try:
            httpx.get(f"{url}/health", timeout=5).raise_for_status()
            return server, url
        except httpx.HTTPError:
            time.sleep(0.5)
    server.terminate()
    raise RuntimeError("the server did not start within 10 minutes")


async def load(url: str, queries: list[str], clients: int, requests: int) -> dict:
    """``clients`` concurrent clients, each sending ``requests`` requests one after the other."""
    latencies: list[float] = []
    errors: list[str] = []

    async def client(index: int, session: httpx.AsyncClient) -> None:
        for turn in range(requests):
            query = queries[(index * requests + turn) % len(queries)]
            started = time.perf_counter()
            try:
                reply = await session.post(f"{url}/rewrite", json={"query": query})
                if reply.status_code != 200 or not reply.json().get("query"):
                    errors.append(f"HTTP {reply.status_code}: {reply.text[:100]}")
            except httpx.HTTPError as err:
                errors.append(f"{type(err).__name__}: {err}")
            latencies.append(time.perf_counter() - started)

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=1800, limits=limits) as session:
        started = time.perf_counter()
        await asyncio.gather(*(client(i, session) for i in range(clients)))
        wall = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "clients": clients,
        "requests": len(latencies),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "wall_s": round(wall, 2),
        "requests_per_s": round(len(latencies) / wall, 3),
        "latency_p50_s": round(statistics.median(ordered), 3),
        "latency_p95_s": round(ordered[int(0.95 * (len(ordered) - 1))], 3),
    }


def measure(name: str, args: argparse.Namespace, max_batch: int, clients: int, queries: list[str]) -> dict:
    print(f"{name}: starting the server (max batch {max_batch})...", file=sys.stderr)
    with tempfile.TemporaryFile(mode="w+") as log:
        server, url = start_server(max_batch, args.max_wait_ms, args.max_new_tokens, log)
        try:
            figures = asyncio.run(load(url, queries, clients, args.requests))
            figures["batching"] = httpx.get(f"{url}/health", timeout=30).json()["batching"]
        finally:
            server.terminate()
            server.wait(60)
    print(
        f"{name}: {figures['requests']} requests, {figures['errors']} errors, {figures['wall_s']} s",
        file=sys.stderr,
    )
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--requests", type=int, default=2, help="sequential requests per client")
    parser.add_argument("--baseline-clients", type=int, default=50, help="clients of the one-at-a-time run")
    parser.add_argument("--max-batch", type=int, default=32)
    parser.add_argument("--max-wait-ms", type=float, default=10.0)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    queries = demo_queries()
    batched = measure("batched", args, args.max_batch, args.clients, queries)
    single = measure("one-at-a-time", args, 1, args.baseline_clients, queries)
    ratio = batched["requests_per_s"] / single["requests_per_s"]
    rows = [
        ("mode", "batched", "one-at-a-time"),
        ("clients x requests", f"{args.clients} x {args.requests}", f"{args.baseline_clients} x {args.requests}"),
        ("errors", str(batched["errors"]), str(single["errors"])),
        ("wall s", f"{batched['wall_s']:.1f}", f"{single['wall_s']:.1f}"),
        ("requests/s", f"{batched['requests_per_s']:.2f}", f"{single['requests_per_s']:.2f}"),
        ("latency p50 / p95 s", f"{batched['latency_p50_s']:.2f} / {batched['latency_p95_s']:.2f}",
         f"{single['latency_p50_s']:.2f} / {single['latency_p95_s']:.2f}"),
        ("generation calls", str(batched["batching"]["batches"]), str(single["batching"]["batches"])),
        ("mean / max batch", f"{batched['batching']['mean_batch_size']:.1f} / {batched['batching']['max_batch_size']}",
         f"{single['batching']['mean_batch_size']:.1f} / {single['batching']['max_batch_size']}"),
    ]  # fmt: skip
    width = max(len(r[0]) for r in rows)
    for label, left, right in rows:
        print(f"{label:<{width}}  {left:>20}  {right:>20}")
    print(f"batch sizes formed: {batched['batching']['batch_sizes']}")
    print(f"throughput, batched / one-at-a-time: {ratio:.2f}x")
    if args.json:
        figures = {"batched": batched, "one_at_a_time": single, "throughput_ratio": round(ratio, 3)}
        figures["settings"] = vars(args) | {"json": str(args.json)}
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if batched["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
