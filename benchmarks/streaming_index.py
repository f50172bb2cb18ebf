"""Streamed BM25 build of a DPR-style passage file: peak memory and time, beside the in-memory build.

Generates ``psgs.tsv`` (``id<TAB>text<TAB>title``, as DPR's ``psgs_w100.tsv``) with a realistic vocabulary:
word ranks drawn from a Zipf law (s=1.07) over 2M word types, the most frequent being English stop words,
about 100 words a passage. Each build runs in its own process, which reports its peak resident memory
(``VmHWM``) and time. The full size goes through the streamed build only; a smaller prefix goes through
both the streamed build and the in-memory one (``bm25s.tokenize`` + ``bm25s.BM25.index`` over the whole
collection, what deepretrieval did before), which must give the same matrix.

    python benchmarks/streaming_index.py [--passages 1000000] [--compare 100000] [--json PATH]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

STOP = [
    "the",
    "of",
    "and",
    "in",
    "to",
    "a",
    "is",
    "was",
    "for",
    "on",
    "as",
    "by",
    "with",
    "he",
    "that",
    "at",
    "from",
    "his",
    "it",
    "an",
    "were",
    "are",
    "which",
    "be",
    "this",
]
TYPES = 2_000_000
ZIPF_S = 1.07


def _words(rng: np.random.Generator) -> np.ndarray:
    """The word types by frequency rank: stop words first, then made-up words of 3 to 10 letters."""
    letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz", dtype=np.uint8)
    lengths = rng.integers(3, 11, TYPES)
    pool = letters[rng.integers(0, 26, int(lengths.sum()))].tobytes().decode()
    ends = np.cumsum(lengths)
    made_up = [pool[end - length : end] for end, length in zip(ends.tolist(), lengths.tolist())]
    return np.asarray(STOP + made_up[: TYPES - len(STOP)], dtype=object)


def write_passages(path: Path, count: int, seed: int = 0) -> None:
    """``count`` passages of about 100 Zipf-distributed words, with a title, as DPR's TSV."""
    rng = np.random.default_rng(seed)
    words = _words(rng)
    cdf = np.cumsum(1.0 / np.arange(1, TYPES + 1) ** ZIPF_S)
    cdf /= cdf[-1]
    with path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle, delimiter="\t")
        out.writerow(["id", "text", "title"])
        for start in range(0, count, 10_000):
            n = min(10_000, count - start)
            lengths = rng.integers(80, 121, n)
            picks = words[np.searchsorted(cdf, rng.random(int(lengths.sum())))]
            bounds = np.concatenate([[0], np.cumsum(lengths)])
            titles = words[rng.integers(1_000, 100_000, n)]  # mid-frequency words
            out.writerows(
                (str(start + i + 1), " ".join(picks[bounds[i] : bounds[i + 1]]), titles[i].title())
                for i in range(n)
            )


def child(mode: str, corpus: str, out: str) -> None:
    """Run one build in this process and print its figures as JSON (peak memory from /proc)."""
    started = time.perf_counter()
    if mode == "streamed":
        from deepretrieval.retrievers.bm25 import BM25Retriever
        from deepretrieval.retrievers.corpus import open_corpus

        retriever = BM25Retriever.build(open_corpus(corpus), out, show_progress=False)
        data = retriever._term_doc
        arrays = (data.data, data.indices, data.indptr)
        documents = len(retriever)
    else:
        import bm25s
        import Stemmer

        from deepretrieval.retrievers.corpus import load_corpus

        loaded = load_corpus(corpus)
        tokens = bm25s.tokenize(
            loaded.texts, stopwords="en", stemmer=Stemmer.Stemmer("english"), show_progress=False
        )
        terms = sorted(tokens.vocab)
        new_id = np.empty(len(terms), dtype=np.int64)
        new_id[[tokens.vocab[t] for t in terms]] = np.arange(len(terms))
        ids = [new_id[np.asarray(doc, dtype=np.int64)].tolist() for doc in tokens.ids]
        model = bm25s.BM25(k1=0.9, b=0.4, method="lucene")
        vocab = {t: r for r, t in enumerate(terms)}
        model.index(bm25s.tokenization.Tokenized(ids, vocab), create_empty_token=False, show_progress=False)
        arrays = (model.scores["data"], model.scores["indices"], model.scores["indptr"])
        documents = len(loaded)
    seconds = time.perf_counter() - started
    Path(out).mkdir(parents=True, exist_ok=True)
    for name, array in zip(("data", "indices", "indptr"), arrays):
        np.save(Path(out) / f"check.{name}.npy", np.asarray(array))
    status = Path("/proc/self/status").read_text()
    peak_kib = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))
    print(json.dumps({"seconds": seconds, "peak_rss_mib": peak_kib / 1024, "documents": documents}))


def run_build(mode: str, corpus: Path, out: Path) -> dict:
    env = os.environ | {
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(Path(__file__).parents[1] / "src"), os.environ.get("PYTHONPATH")])
        )
    }
    result = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(corpus), str(out)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if result.returncode:
        raise SystemExit(f"{mode} build of {corpus} failed:\n{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def same_matrix(first: Path, second: Path) -> bool:
    loaded = [
        [np.load(folder / f"check.{name}.npy") for name in ("data", "indices", "indptr")]
        for folder in (first, second)
    ]
    (data_a, indices_a, indptr_a), (data_b, indices_b, indptr_b) = loaded
    return (
        np.array_equal(indptr_a, indptr_b)
        and np.array_equal(indices_a, indices_b)
        and np.allclose(data_a, data_b, rtol=1e-6, atol=0)
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--passages", type=int, default=1_000_000, help="size of the streamed-only build")
    parser.add_argument("--compare", type=int, default=100_000, help="size built both ways")
    parser.add_argument(
        "--workdir", type=Path, help="where the TSV files and indexes go (default: a temp folder)"
    )
    parser.add_argument("--json", type=Path, help="write the figures to this JSON file")
    parser.add_argument("--child", nargs=3, metavar=("MODE", "CORPUS", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    work = args.workdir or Path(tempfile.mkdtemp(prefix="deepretrieval-streaming-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("DEEPRETRIEVAL_CACHE", str(work / "cache"))
    figures: dict[str, object] = {"passages": args.passages, "compare": args.compare, "load": os.getloadavg()}
    for name, count in (("small", args.compare), ("large", args.passages)):
        started = time.perf_counter()
        write_passages(work / f"{name}.tsv", count)
        print(
            f"wrote {count:,} passages ({(work / f'{name}.tsv').stat().st_size / 2**20:,.0f} MiB) in {time.perf_counter() - started:.0f} s"
        )
    small_streamed = run_build("streamed", work / "small.tsv", work / "small-streamed")
    small_memory = run_build("memory", work / "small.tsv", work / "small-memory")
    equal = same_matrix(work / "small-streamed", work / "small-memory")
    large = run_build("streamed", work / "large.tsv", work / "large-streamed")
    figures |= {
        "small_streamed": small_streamed,
        "small_in_memory": small_memory,
        "same_matrix": equal,
        "large_streamed": large,
    }
    print(f"\n{'':<34}{'peak RSS (MiB)':>16}{'seconds':>10}{'docs/s':>10}")
    for label, row in (
        (f"streamed, {args.compare:,} passages", small_streamed),
        (f"in memory, {args.compare:,} passages", small_memory),
        (f"streamed, {args.passages:,} passages", large),
    ):
        print(
            f"{label:<34}{row['peak_rss_mib']:>16,.0f}{row['seconds']:>10.1f}{row['documents'] / row['seconds']:>10,.0f}"
        )
    print(
        f"at {args.compare:,}: streamed/in-memory peak RSS {small_streamed['peak_rss_mib'] / small_memory['peak_rss_mib']:.2f}, "
        f"time {small_streamed['seconds'] / small_memory['seconds']:.2f}; same matrix: {equal}"
    )
    figures["load_after"] = os.getloadavg()
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
        print(f"figures written to {args.json}")


if __name__ == "__main__":
    main()
