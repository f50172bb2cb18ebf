"""What the load-time checks of an index cost: BM25 over BEIR SciFact, opened four ways in one run.

  python benchmarks/index_load.py [--data DIR] [--copies N] [--repeats 30] [--json PATH]

unchecked   the same files opened with no checks at all (np.load memory-mapped, json.loads, mmap):
            the floor, and what loading cost before indexes were verified
large       BM25Retriever.load as for files over the checksum threshold (CHECKSUM_ON_LOAD set to 0):
            manifest, every file's size, checksums of the JSON files, array shapes, row ids in range,
            document offsets, every BM25 weight finite and within BM25's bounds (one min/max pass)
load        BM25Retriever.load as shipped: ``large`` plus the sha256 of every file up to
            CHECKSUM_ON_LOAD bytes (16 MiB; all of SciFact's files)
verify      BM25Retriever.load(verify=True) (what ``deepretrieval index verify`` runs): the sha256 of
            every byte of the index

``--copies N`` indexes SciFact N times over (ids suffixed), to see the checks on a larger index whose
score matrix is over the checksum threshold (N=10: 51,830 documents, a 19.9 MB matrix).
"""

from __future__ import annotations

import argparse
import json
import mmap
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from _common import shared_data_dir
from deepretrieval.retrievers.bm25 import BM25Retriever
from deepretrieval.retrievers.corpus import Corpus, load_corpus
from deepretrieval.retrievers.storage import index_store


def unchecked(index_dir: Path) -> None:
    folder = index_dir / json.loads((index_dir / "index.json").read_text())["version"]
    for name in ("bm25.data.npy", "bm25.indices.npy", "docs.offsets.npy"):
        np.load(folder / name, mmap_mode="c")
    np.load(folder / "bm25.indptr.npy")
    json.loads((folder / "bm25.vocab.json").read_bytes())
    json.loads((folder / "docs.ids.json").read_bytes())
    with (folder / "docs.jsonl").open("rb") as handle:
        mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ).close()


def as_large(index_dir: Path) -> None:
    """A load that checksums no file over 0 bytes: the path of every file too large to checksum."""
    threshold = index_store.CHECKSUM_ON_LOAD
    index_store.CHECKSUM_ON_LOAD = 0
    try:
        BM25Retriever.load(index_dir).close()
    finally:
        index_store.CHECKSUM_ON_LOAD = threshold


def median_ms(action: Callable[[], None], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def collection(data: Path, copies: int) -> Corpus:
    corpus = load_corpus(data)
    if copies == 1:
        return corpus
    ids = [f"{doc_id}-{copy}" for copy in range(copies) for doc_id in corpus.ids]
    return Corpus(ids, list(corpus.texts) * copies)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=shared_data_dir() / "scifact")
    parser.add_argument("--copies", type=int, default=1, help="index the collection this many times over")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if not (args.data / "corpus.jsonl").is_file():
        print(f"SciFact not found at {args.data}", file=sys.stderr)
        return 2
    if args.copies < 1 or args.repeats < 1:
        print("--copies and --repeats must be >= 1", file=sys.stderr)
        return 2
    index_dir = Path(tempfile.mkdtemp(prefix="deepretrieval-load-")) / "bm25"
    corpus = collection(args.data, args.copies)
    BM25Retriever.build(corpus, index_dir, show_progress=False).close()
    files = json.loads((index_dir / "index.json").read_text())["files"]
    size = sum(entry["size"] for entry in files.values())
    over = sorted(name for name, entry in files.items() if entry["size"] > index_store.CHECKSUM_ON_LOAD)
    ways = {
        "unchecked": lambda: unchecked(index_dir),
        "large": lambda: as_large(index_dir),
        "load": lambda: BM25Retriever.load(index_dir).close(),
        "verify": lambda: BM25Retriever.load(index_dir, verify=True).close(),
    }
    for action in ways.values():
        action()  # warm the page cache: every way reads the same files
    ms = {name: median_ms(action, args.repeats) for name, action in ways.items()}
    print(
        f"BM25 index of {len(corpus)} documents ({args.copies} x {args.data.name}): {size / 1e6:.1f} MB on "
        f"disk; median of {args.repeats} loads (warm page cache)"
    )
    threshold = index_store.CHECKSUM_ON_LOAD / 2**20
    print(f"files over the {threshold:g} MiB checksum threshold: {', '.join(over) or 'none'}")
    print(f"{'way':<12}{'ms':>9}{'x unchecked':>14}")
    for name, value in ms.items():
        print(f"{name:<12}{value:>9.2f}{value / ms['unchecked']:>14.2f}")
    print(
        f"default checks add {ms['load'] - ms['unchecked']:.2f} ms per load "
        f"(value and structure checks {ms['large'] - ms['unchecked']:.2f} ms, checksums of small files "
        f"{ms['load'] - ms['large']:.2f} ms)"
    )
    if args.json:
        figures = {
            "documents": len(corpus),
            "index_bytes": size,
            "checksum_on_load_bytes": index_store.CHECKSUM_ON_LOAD,
            "over_threshold": over,
            "ms": ms,
            "checks_ms": ms["load"] - ms["unchecked"],
        }
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
