"""What the load-time checks of an index cost: BM25 over BEIR SciFact, opened three ways in one run.

  python benchmarks/index_load.py [--data DIR] [--repeats 30] [--json PATH]

unchecked   the same files opened with no checks at all (np.load memory-mapped, json.loads, mmap):
            the floor, and what loading cost before indexes were verified
load        BM25Retriever.load: manifest, every file's size, checksums of the JSON files, array
            shapes, row ids in range, document offsets (the default)
verify      BM25Retriever.load(verify=True): also the sha256 of every byte of the index
"""

from __future__ import annotations

import argparse
import json
import mmap
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import shared_data_dir
from deepretrieval.retrievers.bm25 import BM25Retriever
from deepretrieval.retrievers.corpus import load_corpus


def unchecked(index_dir: Path) -> None:
    folder = index_dir / json.loads((index_dir / "index.json").read_text())["version"]
    for name in ("bm25.data.npy", "bm25.indices.npy", "docs.offsets.npy"):
        np.load(folder / name, mmap_mode="c")
    np.load(folder / "bm25.indptr.npy")
    json.loads((folder / "bm25.vocab.json").read_bytes())
    json.loads((folder / "docs.ids.json").read_bytes())
    with (folder / "docs.jsonl").open("rb") as handle:
        mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ).close()


def median_ms(action, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=shared_data_dir() / "scifact")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if not (args.data / "corpus.jsonl").is_file():
        print(f"SciFact not found at {args.data}", file=sys.stderr)
        return 2
    index_dir = Path(tempfile.mkdtemp(prefix="deepretrieval-load-")) / "bm25"
    BM25Retriever.build(load_corpus(args.data), index_dir, show_progress=False).close()
    size = sum(path.stat().st_size for path in index_dir.rglob("*") if path.is_file())
    ways = {
        "unchecked": lambda: unchecked(index_dir),
        "load": lambda: BM25Retriever.load(index_dir).close(),
        "verify": lambda: BM25Retriever.load(index_dir, verify=True).close(),
    }
    for action in ways.values():
        action()  # warm the page cache: every way reads the same files
    ms = {name: median_ms(action, args.repeats) for name, action in ways.items()}
    print(
        f"SciFact BM25 index: {size / 1e6:.1f} MB on disk; median of {args.repeats} loads (warm page cache)"
    )
    print(f"{'way':<12}{'ms':>9}{'x unchecked':>14}")
    for name, value in ms.items():
        print(f"{name:<12}{value:>9.2f}{value / ms['unchecked']:>14.2f}")
    print(f"default checks add {ms['load'] - ms['unchecked']:.2f} ms per load")
    if args.json:
        figures = {"index_bytes": size, "ms": ms, "checks_ms": ms["load"] - ms["unchecked"]}
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
