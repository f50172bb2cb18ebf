"""Reward throughput on a GRPO-shaped batch: our batch reward vs a per-sample loop vs raw bm25s.

A batch is 64 SciFact train claims x 8 sampled rewrites. Rewrites are word-dropout / expansion variants of
the claim; within each group a sample repeats an earlier one with probability ``--dup-rate`` (sampled
policies repeat themselves; see the README for the rate we measured during training).

    python benchmarks/reward_throughput.py [--repeats 5] [--dup-rate 0.35] [--json out.json]

Three ways, same completions, same index, cold cache each repetition:
  batch       BatchReward.score (parse, dedupe, one batched retrieval, metrics), with its time split
              into parse / guard (the repetition guard's analysis) / retrieval / metrics
  per-sample  parse + one retriever call + metric per completion (how the original code scored),
              once through our retriever and once calling bm25s directly
  raw         bm25s tokenize + retrieve of the batch's unique queries, nothing else (the floor)
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import bm25s
import Stemmer

from _common import shared_data_dir
from deepretrieval.metrics import ndcg
from deepretrieval.parsing import parse_completion
from deepretrieval.prompting import Prompting
from deepretrieval.retrievers.bm25 import BM25Retriever
from deepretrieval.retrievers.cache import CachedRetriever
from deepretrieval.retrievers.corpus import load_corpus
from deepretrieval.rewards import BatchReward, MetricReward
from deepretrieval.tasks.beir import load_beir_splits
from deepretrieval.tasks.retrieval import RetrievalTask

EXPANSIONS = ["study", "patients", "risk", "effect", "cells", "clinical trial", "mechanism", "association"]


def make_batch(examples, rng: random.Random, prompts: int, samples: int, dup_rate: float):
    chosen = rng.sample(examples, prompts)
    completions, batch_examples = [], []
    for ex in chosen:
        group: list[str] = []
        for _ in range(samples):
            if group and rng.random() < dup_rate:
                query = rng.choice(group)
            else:
                words = [w for w in ex.original.split() if rng.random() > 0.2] or ex.original.split()
                query = " ".join(words + rng.sample(EXPANSIONS, rng.randint(0, 2)))
            group.append(query)
            completions.append(f"<think>key terms of the claim</think><answer>{query}</answer>")
            batch_examples.append(ex)
    return completions, batch_examples


def per_sample(retriever, completions, examples, k: int) -> list[float]:
    rewards = []
    for completion, ex in zip(completions, examples):
        parsed = parse_completion(completion)
        hits = retriever.search([parsed.answer], k)[0]
        rewards.append(
            MetricReward().reward(parsed, {"ndcg@10": ndcg([h.doc_id for h in hits], ex.truth, 10)})
        )
    return rewards


def per_sample_bm25s(library: bm25s.BM25, doc_ids, stemmer, completions, examples, k: int) -> list[float]:
    """The same loop calling the bm25s library directly per rollout (tokenize + retrieve one query)."""
    rewards = []
    for completion, ex in zip(completions, examples):
        parsed = parse_completion(completion)
        tokens = bm25s.tokenize([parsed.answer], stopwords="en", stemmer=stemmer, show_progress=False)
        rows, scores = library.retrieve(tokens, k=k, show_progress=False)
        ranked = [doc_ids[r] for r, s in zip(rows[0], scores[0]) if s > 0]
        rewards.append(MetricReward().reward(parsed, {"ndcg@10": ndcg(ranked, ex.truth, 10)}))
    return rewards


def split_times(reward: BatchReward, task: RetrievalTask, completions, examples) -> dict[str, float]:
    """The phases of ``BatchReward.score`` on a cold cache, each timed alone: parse, the guard's analysis of
    the distinct answers, the one batched retrieval of the distinct (answer, example) pairs, the metrics."""
    times = {}
    start = time.perf_counter()
    parsed = [reward.parse(c) for c in completions]
    times["parse"] = time.perf_counter() - start
    pairs = {(p.answer, ex.id): (p.answer, ex) for p, ex in zip(parsed, examples) if p.format_ok}
    answers, pair_examples = [a for a, _ in pairs.values()], [ex for _, ex in pairs.values()]
    start = time.perf_counter()
    task.analyze_many(list(dict.fromkeys(answers)))
    times["guard"] = time.perf_counter() - start
    start = time.perf_counter()
    rankings = task.rankings(answers, pair_examples, task.depth)
    times["retrieval"] = time.perf_counter() - start
    start = time.perf_counter()
    for ranking, ex in zip(rankings, pair_examples):
        {name: metric(ranking.doc_ids, ex.truth) for name, metric in zip(task.metrics, task._metrics)}
    times["metrics"] = time.perf_counter() - start
    return times


def raw_bm25s(library: bm25s.BM25, stemmer, queries: list[str], k: int) -> None:
    tokens = bm25s.tokenize(queries, stopwords="en", stemmer=stemmer, show_progress=False)
    library.retrieve(tokens, k=k, show_progress=False)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=shared_data_dir() / "scifact")
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--samples", type=int, default=8)
    # 0.35 leaves ~70% of a batch's queries distinct, as measured in real 8-sample GRPO groups
    # (quickstart run, mean of the logged task/unique_queries: 0.69)
    parser.add_argument("--dup-rate", type=float, default=0.35)
    parser.add_argument(
        "--k", type=int, default=100, help="retrieval depth (the task measures ndcg@10, recall@100)"
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if not (args.data / "corpus.jsonl").is_file():
        print(f"SciFact not found at {args.data}", file=sys.stderr)
        return 2

    corpus = load_corpus(args.data)
    index_dir = Path(tempfile.mkdtemp(prefix="deepretrieval-bench-"))
    retriever = BM25Retriever.build(corpus, index_dir, show_progress=False)
    # the same index built by bm25s itself (same tokenisation and settings)
    stemmer, doc_ids = Stemmer.Stemmer("english"), corpus.ids
    library = bm25s.BM25(k1=0.9, b=0.4, method="lucene")
    tokens = bm25s.tokenize(corpus.texts, stopwords="en", stemmer=stemmer, show_progress=False)
    library.index(tokens, show_progress=False)
    examples = load_beir_splits(args.data)["train"]
    rng = random.Random(0)
    metrics = ("ndcg@10", f"recall@{args.k}")
    times = {"batch": [], "per_sample": [], "per_sample_bm25s": [], "raw": []}
    phases: dict[str, list[float]] = {"parse": [], "guard": [], "retrieval": [], "metrics": []}
    unique_counts, agreement = [], []
    for _ in range(args.repeats):
        completions, batch_examples = make_batch(examples, rng, args.prompts, args.samples, args.dup_rate)
        unique = list(dict.fromkeys(parse_completion(c).answer for c in completions))
        unique_counts.append(len(unique))

        task = RetrievalTask(
            "scifact", {"train": examples}, CachedRetriever(retriever), metrics
        )  # cold cache
        reward = BatchReward(task, MetricReward(), prompting=Prompting("classic_ir", reasoning=True))
        start = time.perf_counter()
        batch_rewards = reward.score(completions, batch_examples).rewards
        times["batch"].append(time.perf_counter() - start)

        cold = RetrievalTask("scifact", {"train": examples}, CachedRetriever(retriever), metrics)
        for phase, seconds in split_times(reward, cold, completions, batch_examples).items():
            phases[phase].append(seconds)

        start = time.perf_counter()
        loop_rewards = per_sample(retriever, completions, batch_examples, args.k)
        times["per_sample"].append(time.perf_counter() - start)
        assert batch_rewards == loop_rewards, "batch and per-sample scoring must agree exactly"

        start = time.perf_counter()
        bm25s_rewards = per_sample_bm25s(library, doc_ids, stemmer, completions, batch_examples, args.k)
        times["per_sample_bm25s"].append(time.perf_counter() - start)
        # bm25s sums float32 weights in another order, so near-ties can swap: agreement, not identity
        agreement.append(
            sum(abs(a - b) < 1e-3 for a, b in zip(batch_rewards, bm25s_rewards)) / len(batch_rewards)
        )

        start = time.perf_counter()
        raw_bm25s(library, stemmer, unique, args.k)
        times["raw"].append(time.perf_counter() - start)

    med = {name: statistics.median(values) for name, values in times.items()}
    n = args.prompts * args.samples
    figures = {
        "batch_size": n,
        "unique_queries_mean": statistics.mean(unique_counts),
        "batch_s": med["batch"],
        "per_sample_s": med["per_sample"],
        "per_sample_bm25s_s": med["per_sample_bm25s"],
        "speedup_vs_per_sample_bm25s": med["per_sample_bm25s"] / med["batch"],
        "raw_bm25s_s": med["raw"],
        "speedup_vs_per_sample": med["per_sample"] / med["batch"],
        "overhead_vs_raw": med["batch"] / med["raw"] - 1.0,
        "reward_agreement_with_bm25s": statistics.mean(agreement),
        "split_s": {phase: statistics.median(values) for phase, values in phases.items()},
    }
    print(
        f"batch of {n} completions ({figures['unique_queries_mean']:.0f} unique queries on average), "
        f"median of {args.repeats}, k={args.k}"
    )
    print(f"{'way':<12}{'seconds':>10}{'completions/s':>16}")
    for name in ("batch", "per_sample", "per_sample_bm25s", "raw"):
        print(f"{name:<12}{med[name]:>10.4f}{n / med[name]:>16.0f}")
    print(
        f"speedup vs per-sample loop: {figures['speedup_vs_per_sample']:.1f}x with our retriever, "
        f"{figures['speedup_vs_per_sample_bm25s']:.1f}x calling bm25s per rollout (target >= 10x)"
    )
    split = figures["split_s"]
    print(
        "batch split: "
        + ", ".join(f"{phase} {1000 * seconds:.1f} ms" for phase, seconds in split.items())
        + f" (sum {1000 * sum(split.values()):.1f} ms)"
    )
    print(f"rewards equal to bm25s-based scoring: {100 * figures['reward_agreement_with_bm25s']:.1f}%")
    print(f"overhead vs raw bm25s:      {100 * figures['overhead_vs_raw']:+.1f}% (target <= 15%)")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
