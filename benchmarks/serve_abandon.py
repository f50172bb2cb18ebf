"""Clients that leave: does a server go on working for them while the clients that stay wait?

For each server (``deepretrieval serve``, ``deepretrieval serve-retriever``), two fresh servers as a user
starts them (default settings), side by side in one run:

  without   --clients well-behaved clients, each sending --requests requests one after the other;
  after     first --abandoning clients send a large request (``serve``: 64 queries; ``serve-retriever``:
            2,000 queries, k=1000) and disconnect --linger-s seconds later without reading the answer,
            then the same well-behaved clients.

A well-behaved client waits at most --client-timeout-s for each request; on a 503 with Retry-After it
waits as told and asks again within that time. Reported per arm: requests answered, refused (503 / 504
after the retries), timed out at the client; latency p50 / max of the answered ones (backoff included);
the server's RSS before and after; what the server's batcher says it dropped; how long the server
takes to exit on SIGTERM once the clients are done.

    python benchmarks/serve_abandon.py [--server rewrite|retriever|both] [--model PATH|tiny]
        [--abandoning 5] [--clients 10] [--requests 1] [--client-timeout-s 120] [--json PATH]

``--model tiny``: the 2-layer random model of the tests (fast on a shared CPU); default: the embedded
SmolLM2. Any ``--max-new-tokens`` is passed to ``serve`` (default: its own choice).
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
import psutil

from _common import shared_data_dir, tests_module
from deepretrieval.files import write_json

MIB = 2**20


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(command: list[str], log: IO[str], url: str | None) -> tuple[subprocess.Popen, str]:
    """The server, once it answers ``GET /health``; ``url`` None: it prints its address on stdout."""
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
    if url is None:
        url = server.stdout.readline().split()[3]  # "retrieval service on http://HOST:PORT ..."
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline and server.poll() is None:
        try:
            if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                return server, url
        except httpx.HTTPError:
            time.sleep(0.5)
    server.kill()
    log.seek(0)
    raise RuntimeError(f"the server did not start: {log.read()[-2000:]}")


def rss_mib(pid: int) -> float:
    return round(psutil.Process(pid).memory_info().rss / MIB, 1)


def abandon(url: str, path: str, body: dict, clients: int, linger_s: float) -> None:
    """``clients`` raw connections send ``body`` at once, wait ``linger_s`` and hang up unanswered."""
    host, port = url.removeprefix("http://").split(":")
    data = json.dumps(body).encode()
    head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
    sockets = []
    for _ in range(clients):
        sock = socket.create_connection((host, int(port)))
        sock.sendall(f"{head}Content-Length: {len(data)}\r\n\r\n".encode() + data)
        sockets.append(sock)
    time.sleep(linger_s)
    for sock in sockets:
        sock.close()


async def behave(
    url: str, path: str, bodies: list[dict], clients: int, requests: int, timeout_s: float
) -> dict:
    """``clients`` concurrent clients x ``requests`` sequential requests; 503 + Retry-After is waited out."""
    outcomes: list[tuple[str, float]] = []

    async def ask(session: httpx.AsyncClient, body: dict) -> tuple[str, float]:
        started = time.perf_counter()
        deadline = started + timeout_s
        while True:
            left = deadline - time.perf_counter()
            try:
                reply = await session.post(f"{url}{path}", json=body, timeout=max(left, 0.001))
            except httpx.TimeoutException:
                return "timed out", time.perf_counter() - started
            except httpx.HTTPError as err:
                return type(err).__name__, time.perf_counter() - started
            wait = float(reply.headers.get("retry-after", "nan"))
            if reply.status_code == 503 and time.perf_counter() + wait < deadline:
                await asyncio.sleep(wait)
                continue
            return str(reply.status_code), time.perf_counter() - started

    async def client(index: int, session: httpx.AsyncClient) -> None:
        for turn in range(requests):
            outcomes.append(await ask(session, bodies[(index * requests + turn) % len(bodies)]))

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits) as session:
        started = time.perf_counter()
        await asyncio.gather(*(client(i, session) for i in range(clients)))
        wall = time.perf_counter() - started
    answered = sorted(seconds for outcome, seconds in outcomes if outcome == "200")
    others: dict[str, int] = {}
    for outcome, _ in outcomes:
        if outcome != "200":
            others[outcome] = others.get(outcome, 0) + 1
    return {
        "requests": len(outcomes),
        "answered": len(answered),
        "not_answered": others,
        "latency_p50_s": round(statistics.median(answered), 2) if answered else None,
        "latency_max_s": round(answered[-1], 2) if answered else None,
        "wall_s": round(wall, 1),
    }


def arm(kind: str, args: argparse.Namespace, abandoning: int, scratch: Path) -> dict:
    """One fresh server: optionally the abandoning clients, then the well-behaved ones."""
    with tempfile.TemporaryFile(mode="w+") as log:
        if kind == "rewrite":
            url = f"http://127.0.0.1:{free_port()}"
            command = [sys.executable, "-m", "deepretrieval.cli", "serve", "--port", url.rsplit(":", 1)[1]]
            command += ["--model", args.model] if args.model else []
            command += ["--max-new-tokens", str(args.max_new_tokens)] if args.max_new_tokens else []
            server, url = start(command, log, url)
            path, queries = "/rewrite", demo_queries()
            big = {"queries": (queries * 64)[:64]}
            bodies = [{"query": query} for query in queries]
        else:
            command = [sys.executable, "-m", "deepretrieval.cli", "serve-retriever", "--port", "0"]
            server, url = start([*command, "--index", f"scifact={scratch / 'scifact'}"], log, None)
            path, claims = "/search", scifact_claims(args.data)
            big = {"queries": (claims * 3)[:2000], "k": 1000}
            bodies = [{"queries": [claim], "k": 10} for claim in claims]
        try:
            figures = {"rss_before_mib": rss_mib(server.pid)}
            if abandoning:
                abandon(url, path, big, abandoning, args.linger_s)
                figures["rss_after_abandoning_mib"] = rss_mib(server.pid)
            load = behave(url, path, bodies, args.clients, args.requests, args.client_timeout_s)
            figures |= asyncio.run(load)
            figures["rss_after_mib"] = rss_mib(server.pid)
            figures["server"] = server_stats(url, kind)
        finally:
            stopped = time.perf_counter()
            server.terminate()
            try:
                server.wait(60)
                figures["exit_after_sigterm_s"] = round(time.perf_counter() - stopped, 1)
            except subprocess.TimeoutExpired:
                figures["exit_after_sigterm_s"] = "still running after 60 s: killed"
                server.kill()
    print(f"{kind}, {abandoning} abandoning clients: {figures}", file=sys.stderr)
    return figures


def server_stats(url: str, kind: str) -> dict:
    """What the batcher dropped (absent on servers that do not report it)."""
    try:
        if kind == "rewrite":
            stats = httpx.get(f"{url}/health", timeout=600).json()["batching"]
        else:
            stats = httpx.get(f"{url}/indexes", timeout=600).json()["indexes"][0].get("batching", {})
    except (httpx.HTTPError, KeyError, ValueError):
        return {}
    keys = ("batches", "items", "abandoned", "expired", "refused", "stopped_batches", "queued")
    return {key: stats[key] for key in keys if key in stats}


def demo_queries() -> list[str]:
    from deepretrieval.data.demo import demo_dir

    lines = (demo_dir() / "queries.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["text"] for line in lines if line.strip()]


def scifact_claims(data: Path) -> list[str]:
    from deepretrieval.tasks.beir import read_queries

    return list(read_queries(data / "queries.jsonl").values())


def table(kind: str, without: dict, after: dict, abandoning: int) -> None:
    def not_answered(figures: dict) -> str:
        return ", ".join(f"{count} x {what}" for what, count in figures["not_answered"].items()) or "-"

    def latency(figures: dict) -> str:
        return f"{figures['latency_p50_s']} / {figures['latency_max_s']}"

    def handled(figures: dict) -> str:
        server = figures["server"]
        return f"{server['batches']} / {server['items']}" if "batches" in server else "?"

    def dropped(figures: dict) -> str:
        server = figures["server"]
        counts = [server.get(key) for key in ("abandoned", "expired", "refused")]
        return " / ".join("?" if count is None else str(count) for count in counts)

    def stopped(figures: dict) -> str:
        return str(figures["server"].get("stopped_batches", "?"))

    def rss(figures: dict) -> str:
        return f"{figures['rss_before_mib']:.0f} -> {figures['rss_after_mib']:.0f}"

    rows = [
        ("", "without", f"after {abandoning} abandoning"),
        (
            "answered",
            f"{without['answered']}/{without['requests']}",
            f"{after['answered']}/{after['requests']}",
        ),
        ("not answered", not_answered(without), not_answered(after)),
        ("latency p50 / max s", latency(without), latency(after)),
        ("wall s", str(without["wall_s"]), str(after["wall_s"])),
        ("server RSS MiB", rss(without), rss(after)),
        ("server: batches / items", handled(without), handled(after)),
        ("dropped: left / expired / full", dropped(without), dropped(after)),
        ("batches stopped early", stopped(without), stopped(after)),
        ("exit after SIGTERM s", str(without["exit_after_sigterm_s"]), str(after["exit_after_sigterm_s"])),
    ]
    print(f"\n{kind}")
    width = max(len(row[0]) for row in rows)
    for label, left, right in rows:
        print(f"  {label:<{width}}  {left:>22}  {right:>22}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--server", choices=("rewrite", "retriever", "both"), default="both")
    parser.add_argument("--model", default=None, help="serve's --model; 'tiny': the tests' tiny model")
    parser.add_argument("--max-new-tokens", type=int, default=None)
    parser.add_argument("--abandoning", type=int, default=None, help="default: 5 (rewrite), 50 (retriever)")
    parser.add_argument("--linger-s", type=float, default=1.0, help="how long an abandoning client stays")
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--requests", type=int, default=1, help="sequential requests per client")
    parser.add_argument("--client-timeout-s", type=float, default=120.0)
    parser.add_argument("--data", type=Path, default=shared_data_dir() / "scifact")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args()
    kinds = ["rewrite", "retriever"] if args.server == "both" else [args.server]
    figures: dict = {"settings": vars(args) | {"json": str(args.json), "data": str(args.data)}}
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        if args.model == "tiny":
            args.model = str(tests_module("_train_helpers").write_tiny_model(scratch / "tiny"))
        if "retriever" in kinds:
            from deepretrieval.retrievers.bm25 import BM25Retriever
            from deepretrieval.retrievers.corpus import load_corpus

            BM25Retriever.build(load_corpus(args.data), scratch / "scifact", show_progress=False).close()
        for kind in kinds:
            abandoning = args.abandoning if args.abandoning is not None else (5 if kind == "rewrite" else 50)
            without, after = arm(kind, args, 0, scratch), arm(kind, args, abandoning, scratch)
            figures[kind] = {"without": without, "after_abandoning": after, "abandoning": abandoning}
            table(kind, without, after, abandoning)
    figures["load_average"] = psutil.getloadavg()[0]
    print(f"\nload average {figures['load_average']:.1f} on {psutil.cpu_count()} CPUs")
    if args.json:
        write_json(args.json, figures, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
