"""Literature-search throughput on a GRPO-shaped batch: the PubMed client against the stand-in esearch
server (NCBI's rate limit enforced), without and with an API key, cold and warm cache, next to the
original code's way (one blocking request per sample, no deduplication, no cache).

    python benchmarks/literature_throughput.py [--k 3000] [--seed 0] [--no-serial] [--json out.json]

A batch is 64 prompts x 8 samples: each prompt is a CLEF TAR 2017 topic title, each sample the title with
words dropped at random; within a group a sample repeats an earlier one with probability 0.3 (about 70%
of the 512 queries are distinct, as in real GRPO groups). Every run starts from an empty cache; the
stand-in's own request log gives the requests it received and the peak number in any one second.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

from _common import shared_data_dir, tests_module
from deepretrieval.retrievers.boolean import BooleanRetriever
from deepretrieval.retrievers.corpus import load_corpus
from deepretrieval.retrievers.web.pubmed import PubMedRetriever, PubMedSettings

FAKE_KEY = "benchmark-not-a-real-key"  # the stand-in accepts any key; NCBI's 10/s limit applies to it

_standin = tests_module("standin")  # the stand-in PubMed server lives with the tests
Collection, StandIn, peak_rate = _standin.Collection, _standin.StandIn, _standin.peak_rate


def make_batch(titles: list[str], rng: random.Random, prompts: int, samples: int, repeat: float) -> list[str]:
    queries = []
    for p in range(prompts):
        words = titles[p % len(titles)].split()
        group: list[str] = []
        for _ in range(samples):
            if group and rng.random() < repeat:
                group.append(rng.choice(group))
            else:
                group.append(" ".join(w for w in words if rng.random() > 0.25) or words[0])
        queries.extend(group)
    return queries


def client_run(standin: StandIn, queries: list[str], k: int, cache_dir: Path, api_key: str | None) -> dict:
    """The batch through our client, cold then warm (same client, same cache)."""
    settings = PubMedSettings(engine_url=standin.engine_url, cache_dir=str(cache_dir))
    figures: dict = {"key": api_key is not None}
    with PubMedRetriever(settings, api_key=api_key) as client:
        for phase in ("cold", "warm"):
            seen = len(standin.requests)
            before = (client.stats.requests, client.stats.cache_hits, client.stats.retries)
            start = time.perf_counter()
            rankings = client.search(queries, k)
            wall = time.perf_counter() - start
            log = standin.requests[seen:]
            figures[phase] = {
                "wall_s": round(wall, 3),
                "requests": client.stats.requests - before[0],
                "cache_hits": client.stats.cache_hits - before[1],
                "retries": client.stats.retries - before[2],
                "server_requests": len(log),
                "server_429": sum(e["status"] == 429 for e in log),
                "peak_per_second": peak_rate(e["t"] for e in log),
                "failed": sum(r.failed for r in rankings),
                "mean_ids": round(sum(len(r) for r in rankings) / len(rankings), 1),
            }
    return figures


def serial_run(standin: StandIn, queries: list[str], k: int, api_key: str | None) -> dict:
    """The original code's way, with our limiter so the stand-in does not refuse it: one blocking request
    per sample, duplicates included, no cache."""
    settings = PubMedSettings(engine_url=standin.engine_url, cache=False)
    seen = len(standin.requests)
    with PubMedRetriever(settings, api_key=api_key) as client:
        start = time.perf_counter()
        for query in queries:
            client.search([query], k)
        wall = time.perf_counter() - start
    return {
        "wall_s": round(wall, 3),
        "server_requests": len(standin.requests) - seen,
        "key": api_key is not None,
    }


def local_engine_run(data: Path, queries: list[str], k: int, folder: Path) -> dict:
    """The local Boolean engine over ``data``: one batched search of ``queries`` at depth ``k`` (the
    reward path: duplicates searched once) beside a per-query loop, queries per second for both."""
    engine = BooleanRetriever.build(load_corpus(data), folder / "boolean", show_progress=False)
    try:
        start = time.perf_counter()
        batch = engine.search(queries, k)
        batch_s = time.perf_counter() - start
        start = time.perf_counter()
        loop = [engine.search([query], k)[0] for query in queries]
        loop_s = time.perf_counter() - start
    finally:
        engine.close()
    assert [r.doc_ids for r in batch] == [r.doc_ids for r in loop], "batch and loop must agree"
    return {
        "batch_s": batch_s,
        "loop_s": loop_s,
        "batch_qps": len(queries) / batch_s,
        "loop_qps": len(queries) / loop_s,
        "speedup": loop_s / batch_s,
        "failed": sum(r.failed for r in batch),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=shared_data_dir() / "literature" / "clef-tar-2017")
    parser.add_argument("--k", type=int, default=3000)
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--repeat", type=float, default=0.3, help="chance a sample repeats one of its group")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-serial", action="store_true", help="skip the one-request-per-sample baseline")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    if not (args.data / "corpus.jsonl").is_file():
        print(f"error: no corpus.jsonl in {args.data}", file=sys.stderr)
        return 2

    titles = [json.loads(line)["text"] for line in (args.data / "queries.jsonl").read_text().splitlines()]
    queries = make_batch(titles, random.Random(args.seed), args.prompts, args.samples, args.repeat)
    distinct = len(set(queries))
    start = time.perf_counter()
    collection = Collection.load(args.data)
    print(
        f"stand-in collection: {len(collection):,} documents indexed in {time.perf_counter() - start:.1f} s"
    )
    print(f"batch: {len(queries)} queries ({distinct} distinct, {distinct / len(queries):.0%}), k={args.k}\n")

    figures: dict = {"batch": len(queries), "distinct": distinct, "k": args.k}
    with StandIn("pubmed", collection) as standin, tempfile.TemporaryDirectory() as tmp:
        figures["no_key"] = client_run(standin, queries, args.k, Path(tmp) / "no-key", None)
        figures["with_key"] = client_run(standin, queries, args.k, Path(tmp) / "key", FAKE_KEY)
        if not args.no_serial:
            figures["serial_per_sample_with_key"] = serial_run(standin, queries, args.k, FAKE_KEY)
    with tempfile.TemporaryDirectory() as tmp:
        figures["local_engine"] = local_engine_run(args.data, queries, args.k, Path(tmp))

    print(
        f"{'PubMed stand-in':<26}{'wall s':>9}{'requests':>10}{'cache hits':>12}{'peak/s':>8}{'429s':>6}{'failed':>8}"
    )
    for name in ("no_key", "with_key"):
        for phase in ("cold", "warm"):
            row = figures[name][phase]
            print(
                f"{name + ' ' + phase:<26}{row['wall_s']:>9.2f}{row['server_requests']:>10}{row['cache_hits']:>12}"
                f"{row['peak_per_second']:>8}{row['server_429']:>6}{row['failed']:>8}"
            )
    serial = figures.get("serial_per_sample_with_key")
    if serial:
        print(f"{'per-sample loop, key':<26}{serial['wall_s']:>9.2f}{serial['server_requests']:>10}{0:>12}")
    no_key, key = figures["no_key"]["cold"], figures["with_key"]["cold"]
    print(f"\nwith key vs without (cold): {no_key['wall_s'] / key['wall_s']:.1f}x faster")
    print(
        f"warm vs cold (with key): {key['wall_s'] / max(figures['with_key']['warm']['wall_s'], 1e-9):.0f}x faster"
    )
    if serial:
        print(
            f"batch vs per-sample loop (with key): {serial['wall_s'] / key['wall_s']:.1f}x faster, "
            f"{serial['server_requests'] / key['server_requests']:.2f}x the requests"
        )
    local = figures["local_engine"]
    print(
        f"\nlocal Boolean engine, {len(queries)} queries: batch {local['batch_s']:.2f} s "
        f"({local['batch_qps']:.0f} q/s) vs per-query loop {local['loop_s']:.2f} s ({local['loop_qps']:.0f} q/s): "
        f"{local['speedup']:.2f}x"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
