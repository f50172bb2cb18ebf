"""Evidence reward at depth 3,000 on a GRPO-shaped batch: the batched early-exit scan vs reading everything.

A batch is 64 SQuAD v1.1 dev questions x 8 sampled rewrites (word-dropout variants; within a group a sample
repeats an earlier one with probability ``--dup-rate``). Every rollout's top 3,000 BM25 hits (SQuAD dev
has 2,067 passages, so a ranking holds every passage sharing a term with the query) are scanned for the
first answer-bearing passage. Three scans of the same rankings, each from a cold start (no normalised
passage kept from an earlier repetition), all giving the same ranks:

  batched   EvidenceTask.measure: stops at the first answer-bearing passage, reads passages missing from
            its LRU in growing batches from the document store (one sorted pass over the map per batch)
  one-by-one  the previous code: stops at the first answer, one ``text()`` read per passage, same LRU
  naive     reads and normalises all 3,000 texts of every rollout, then looks for the first answer

The retrieval itself (one batched BM25 call, the same for all three) is timed apart.

    python benchmarks/evidence_reward.py [--repeats 3] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from cachetools import LRUCache

from _common import shared_data_dir
from deepretrieval.config import RetrieverConfig
from deepretrieval.retrievers.base import Ranking
from deepretrieval.tasks import load_task
from deepretrieval.tasks.base import Example
from deepretrieval.tasks.evidence import DEFAULT_DEPTH, EvidenceTask, answer_patterns, normalize


def make_batch(examples: list[Example], rng: random.Random, prompts: int, samples: int, dup_rate: float):
    queries, batch = [], []
    for ex in rng.sample(examples, prompts):
        group: list[str] = []
        for _ in range(samples):
            if group and rng.random() < dup_rate:
                query = rng.choice(group)
            else:
                query = " ".join(w for w in ex.original.split() if rng.random() > 0.25) or ex.original
            group.append(query)
            queries.append(query)
            batch.append(ex)
    return queries, batch


def naive_ranks(retriever, rankings: Sequence[Ranking], examples: Sequence[Example]) -> list[int]:
    """Read and normalise every hit of every rollout, then find the first answer-bearing one."""
    ranks = []
    for ranking, ex in zip(rankings, examples):
        passages = [normalize(retriever.text(doc_id)) for doc_id in ranking.doc_ids]
        patterns = answer_patterns(ex.truth)
        ranks.append(next((i for i, p in enumerate(passages, 1) if any(a in p for a in patterns)), 0))
    return ranks


def one_by_one_ranks(retriever, rankings: Sequence[Ranking], examples: Sequence[Example]) -> list[int]:
    """The previous scan: early exit and an LRU of normalised passages, one ``text()`` read per passage."""
    cache: LRUCache = LRUCache(maxsize=100_000)
    ranks = []
    for ranking, ex in zip(rankings, examples):
        patterns = answer_patterns(ex.truth)
        found = 0
        for rank, doc_id in enumerate(ranking.doc_ids, start=1):
            passage = cache.get(doc_id)
            if passage is None:
                passage = cache[doc_id] = normalize(retriever.text(doc_id))
            if any(a in passage for a in patterns):
                found = rank
                break
        ranks.append(found)
    return ranks


def batched_ranks(task: EvidenceTask, rankings: Sequence[Ranking], examples: Sequence[Example]) -> list[int]:
    fresh = EvidenceTask(
        task.name, {"dev": task.examples("dev")}, task.retriever, depth=task.depth
    )  # cold LRU
    return [fresh.first_answer_rank(r.doc_ids, ex.truth) for r, ex in zip(rankings, examples)]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=shared_data_dir() / "squad" / "dev-v1.1.json")
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--dup-rate", type=float, default=0.35)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if not args.data.is_file():
        raise SystemExit(f"SQuAD dev not found at {args.data} (pass --data or set DEEPRETRIEVAL_DATA)")
    index = Path(tempfile.mkdtemp(prefix="deepretrieval-evidence-")) / "bm25"
    task = load_task("evidence", args.data, retriever=RetrieverConfig(index=str(index)))
    retriever = task.retriever.inner  # the BM25 index itself: no ranking cache between the scans
    rng = random.Random(0)
    timings: dict[str, list[float]] = {"search": [], "batched": [], "one-by-one": [], "naive": []}
    lengths, ranks_seen = [], []
    for _ in range(args.repeats):
        queries, examples = make_batch(task.examples("dev"), rng, args.prompts, args.samples, args.dup_rate)
        started = time.perf_counter()
        rankings = retriever.search(queries, DEFAULT_DEPTH)
        timings["search"].append(time.perf_counter() - started)
        results = {}
        for name, scan, judge in (
            ("batched", batched_ranks, task),
            ("one-by-one", one_by_one_ranks, retriever),
            ("naive", naive_ranks, retriever),
        ):
            started = time.perf_counter()
            results[name] = scan(judge, rankings, examples)
            timings[name].append(time.perf_counter() - started)
        if not results["batched"] == results["one-by-one"] == results["naive"]:
            raise SystemExit("the scans disagree on the first answer-bearing rank")
        lengths += [len(r) for r in rankings]
        ranks_seen += results["batched"]
    median = {name: statistics.median(values) for name, values in timings.items()}
    found = [r for r in ranks_seen if r]
    print(
        f"\n{args.prompts} x {args.samples} rollouts a batch, depth {DEFAULT_DEPTH} over {len(retriever):,} passages; "
        f"hits per ranking: mean {statistics.mean(lengths):,.0f}; answer found for {len(found) / len(ranks_seen):.1%}, "
        f"median rank {statistics.median(found) if found else 0:.0f}; median of {args.repeats} batches"
    )
    print(f"{'':<26}{'s / batch':>10}{'naive / this':>14}")
    for name in ("batched", "one-by-one", "naive"):
        print(f"{'scan, ' + name:<26}{median[name]:>10.3f}{median['naive'] / median[name]:>14.1f}")
    print(f"{'retrieval (shared)':<26}{median['search']:>10.3f}")
    print("ranks identical in all three scans: True")
    if args.json:
        figures = {
            "median_s": median,
            "naive_over_batched": median["naive"] / median["batched"],
            "one_by_one_over_batched": median["one-by-one"] / median["batched"],
            "timings": timings,
            "mean_hits_per_ranking": statistics.mean(lengths),
            "answer_found_rate": len(found) / len(ranks_seen),
            "identical_ranks": True,
            "load": os.getloadavg(),
        }
        args.json.write_text(json.dumps(figures, indent=2))
        print(f"figures written to {args.json}")


if __name__ == "__main__":
    main()
