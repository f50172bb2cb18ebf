"""The local Boolean engine on CLEF TAR 2017: index build, and a GRPO-shaped batch of PubMed queries
searched as one batch vs a per-query loop.

    python benchmarks/boolean_engine.py [--repeats 5] [--k 1000] [--json out.json]

Build: the 27,126 titles and abstracts into a fresh folder (seconds, size on disk), then the 20 expert
strategies (PubMed and Ovid, k = 30,000): matches, recall of each topic's content-level qrels, and the
share of the topic's official candidate list (what the strategy retrieved on the real database) that the
engine retrieves; the review titles as queries for comparison. Queries: 64 prompts (the 20 topics in
turn) x 8 samples of policy-like PubMed queries (2-3 OR-groups of topic words, some tagged [tiab],
truncated or phrased, joined by AND); within a group a sample repeats an earlier one with probability
``--dup-rate`` (0.35 leaves about 70% distinct, as in real GRPO groups). Each way runs on a freshly
loaded retriever (cold wildcard cache), median of ``--repeats``:
  batch          search(all 512, k): dedupe, then the unique queries on ``--threads`` threads
  batch-1thread  the same on one thread (what deduplication alone buys)
  loop           search([query], k) once per query
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import shared_data_dir
from deepretrieval.retrievers.boolean import BooleanRetriever
from deepretrieval.retrievers.boolean.pubmed_parser import STOPWORDS
from deepretrieval.retrievers.corpus import load_corpus


def topic_words(topic: dict) -> list[str]:
    text = " ".join([topic["text"], topic["metadata"].get("objective") or ""])
    words = [w for w in re.findall(r"[A-Za-z][A-Za-z-]{3,}", text) if w.lower() not in STOPWORDS]
    return list(dict.fromkeys(words))


def render(word: str, rng: random.Random) -> str:
    style = rng.random()
    if style < 0.3:
        return f"{word}[tiab]"
    if style < 0.5 and len(word) > 5:
        return f"{word[: max(4, len(word) - 3)]}*"
    return word


def sample_query(words: list[str], rng: random.Random) -> str:
    groups = []
    for _ in range(rng.randint(2, 3)):
        items = [render(word, rng) for word in rng.sample(words, min(len(words), rng.randint(1, 3)))]
        if rng.random() < 0.2 and len(words) > 1:
            start = rng.randrange(len(words) - 1)
            items.append(f'"{words[start]} {words[start + 1]}"[tiab]')
        groups.append(items[0] if len(items) == 1 else "(" + " OR ".join(items) + ")")
    query = " AND ".join(groups)
    return query + " NOT animals[mh]" if rng.random() < 0.1 else query


def make_batch(
    topics: list[dict], rng: random.Random, prompts: int, samples: int, dup_rate: float
) -> list[str]:
    queries: list[str] = []
    for prompt in range(prompts):
        words = topic_words(topics[prompt % len(topics)])
        group: list[str] = []
        for _ in range(samples):
            group.append(rng.choice(group) if group and rng.random() < dup_rate else sample_query(words, rng))
        queries.extend(group)
    return queries


def expert_table(data: Path, topics: list[dict], experts: list, titles: list) -> list[dict]:
    relevant: dict[str, set[str]] = {t["_id"]: set() for t in topics}
    for line in (data / "qrels" / "content.tsv").read_text().splitlines()[1:]:
        topic, doc_id, _ = line.split("\t")
        relevant[topic].add(doc_id)
    pool: dict[str, set[str]] = {t["_id"]: set() for t in topics}
    for line in (data / "topic_candidates.tsv").read_text().splitlines()[1:]:
        topic, doc_id = line.split("\t")
        pool[topic].add(doc_id)
    rows = []
    for topic, expert, title in zip(topics, experts, titles):
        found, tid = set(expert.doc_ids), topic["_id"]
        rows.append(
            {
                "topic": tid,
                "syntax": topic["metadata"]["query_syntax"],
                "split": topic["metadata"]["split"],
                "matches": expert.total,
                "relevant": len(relevant[tid]),
                "found": len(relevant[tid] & found),
                "recall": len(relevant[tid] & found) / len(relevant[tid]),
                "pool": len(pool[tid]),
                "pool_retrieved": len(pool[tid] & found) / len(pool[tid]),
                "title_matches": title.total,
            }
        )
    return rows


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def loop(retriever: BooleanRetriever, queries: list[str], k: int) -> list:
    return [retriever.search([query], k)[0] for query in queries]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=shared_data_dir() / "literature" / "clef-tar-2017")
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--dup-rate", type=float, default=0.35)
    parser.add_argument("--k", type=int, default=1000, help="retrieval depth per query")
    parser.add_argument("--threads", type=int, default=None, help="search threads (default: all cores)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if not (args.data / "corpus.jsonl").is_file():
        print(f"CLEF TAR 2017 not found at {args.data}", file=sys.stderr)
        return 2
    topics = [json.loads(line) for line in (args.data / "queries.jsonl").read_text().splitlines()]

    with tempfile.TemporaryDirectory(prefix="boolean-bench-") as tmp:
        index_dir = Path(tmp) / "index"
        build_s, retriever = timed(
            BooleanRetriever.build, load_corpus(args.data), index_dir, show_progress=False
        )
        size = sum(f.stat().st_size for f in index_dir.rglob("*") if f.is_file())
        experts = [t["metadata"]["boolean_query"] or t["metadata"]["ovid_query"] for t in topics]
        experts_s, expert_rankings = timed(retriever.search, experts, 30_000)
        titles = retriever.search([t["text"] for t in topics], 30_000)
        table = expert_table(args.data, topics, expert_rankings, titles)

        rng = random.Random(0)
        times: dict[str, list[float]] = {"batch": [], "batch_1thread": [], "loop": []}
        distinct, totals, empty = [], [], []
        for _ in range(args.repeats):
            queries = make_batch(topics, rng, args.prompts, args.samples, args.dup_rate)
            distinct.append(len(set(queries)) / len(queries))
            fresh = BooleanRetriever.load(index_dir, threads=args.threads)
            seconds, batch = timed(fresh.search, queries, args.k)
            times["batch"].append(seconds)
            single = BooleanRetriever.load(index_dir, threads=1)
            times["batch_1thread"].append(timed(single.search, queries, args.k)[0])
            looped = BooleanRetriever.load(index_dir, threads=args.threads)
            seconds, looped_rankings = timed(loop, looped, queries, args.k)
            times["loop"].append(seconds)
            same = all(a.doc_ids == b.doc_ids and a.total == b.total for a, b in zip(batch, looped_rankings))
            assert same, "batch and per-query loop must return the same rankings"
            totals.append(statistics.mean(r.total for r in batch))
            empty.append(sum(r.total == 0 for r in batch) / len(batch))
            for opened in (fresh, single, looped):
                opened.close()

    med = {name: statistics.median(values) for name, values in times.items()}
    n = args.prompts * args.samples
    figures = {
        "documents": len(retriever),
        "build_s": build_s,
        "index_bytes": size,
        "experts_s": experts_s,
        "experts_mean_total": statistics.mean(r.total for r in expert_rankings),
        "experts_micro_recall": sum(row["found"] for row in table) / sum(row["relevant"] for row in table),
        "experts": table,
        "batch_size": n,
        "k": args.k,
        "threads": fresh.threads,
        "distinct_fraction": statistics.mean(distinct),
        "mean_total": statistics.mean(totals),
        "empty_fraction": statistics.mean(empty),
        "batch_s": med["batch"],
        "batch_1thread_s": med["batch_1thread"],
        "loop_s": med["loop"],
        "speedup_vs_loop": med["loop"] / med["batch"],
        "speedup_1thread_vs_loop": med["loop"] / med["batch_1thread"],
    }
    print(f"index: {len(retriever)} documents in {build_s:.1f} s, {size / 2**20:.1f} MiB on disk")
    print(
        f"20 expert strategies at k=30000: {experts_s:.2f} s, "
        f"mean {figures['experts_mean_total']:.0f} matches"
    )
    header = ("topic", "syntax", "split", "matches", "rel", "found", "recall", "pool", "pool%", "title")
    print("{:<10}{:<8}{:<7}{:>8}{:>5}{:>6}{:>8}{:>6}{:>7}{:>7}".format(*header))
    for row in table:
        print(
            f"{row['topic']:<10}{row['syntax']:<8}{row['split']:<7}{row['matches']:>8}{row['relevant']:>5}"
            f"{row['found']:>6}{row['recall']:>8.3f}{row['pool']:>6}{100 * row['pool_retrieved']:>6.0f}%"
            f"{row['title_matches']:>7}"
        )
    print(
        f"micro recall {figures['experts_micro_recall']:.3f}; pool% = share of the topic's official "
        f"candidates retrieved; title = matches of the review title as a query"
    )
    print(
        f"batch of {n} PubMed queries ({100 * figures['distinct_fraction']:.0f}% distinct, mean "
        f"{figures['mean_total']:.0f} matches, {100 * figures['empty_fraction']:.0f}% match nothing), "
        f"k={args.k}, median of {args.repeats}"
    )
    print(f"{'way':<15}{'seconds':>10}{'queries/s':>12}")
    for name in ("batch", "batch_1thread", "loop"):
        print(f"{name:<15}{med[name]:>10.3f}{n / med[name]:>12.0f}")
    print(
        f"batch vs per-query loop: {figures['speedup_vs_loop']:.2f}x ({fresh.threads} threads), "
        f"{figures['speedup_1thread_vs_loop']:.2f}x on one thread (deduplication alone)"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
