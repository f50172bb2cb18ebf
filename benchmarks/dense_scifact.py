"""Dense vs BM25 on BEIR SciFact (test split), and the dense encoder backends against each other, in one run.

Builds a bm25s index (k1=0.9, b=0.4, Lucene scoring, English stemmer + stop words) and one full dense
index per encoder backend (all-MiniLM-L6-v2 by default): ``torch`` is the exact float32 model through
sentence-transformers (what every dense build did before), ``onnx`` the same weights on ONNX Runtime,
``onnx-int8`` int8 weights on ONNX Runtime. Retrieves the 300 test claims with each and prints NDCG@10 /
recall@100 (ir_measures), build and search times side by side, and each backend's build speed-up and
NDCG@10 difference against ``torch``. The load average is recorded: the machine is shared, so only
figures from the same run compare.

    python benchmarks/dense_scifact.py [--backends torch,onnx-int8] [--batch-size 32] [--json PATH]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import tempfile
import time
from pathlib import Path

import bm25s
import ir_measures
import Stemmer
from ir_measures import R, nDCG

from _common import shared_data_dir
from deepretrieval.retrievers.corpus import Corpus, load_corpus
from deepretrieval.retrievers.dense import DEFAULT_MODEL, DenseRetriever, DenseSettings, load_encoder

DEPTH = 100
MEASURES = {"ndcg@10": nDCG @ 10, "recall@100": R @ 100}

Run = dict[str, dict[str, float]]
BUILD_CPU_S: dict[str, float] = {}  # CPU seconds of each dense build, all threads (less sensitive to load)


def read_test_split(scifact: Path) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    """Test claims {query id: text} and qrels {query id: {doc id: grade}}."""
    qrels: dict[str, dict[str, int]] = {}
    with (scifact / "qrels" / "test.tsv").open() as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            qrels.setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
    queries = {}
    with (scifact / "queries.jsonl").open() as handle:
        for line in handle:
            record = json.loads(line)
            if record["_id"] in qrels:
                queries[record["_id"]] = record["text"]
    missing = set(qrels) - set(queries)
    if missing:
        raise SystemExit(f"{scifact}: {len(missing)} test query ids have no text in queries.jsonl")
    return queries, qrels


def bm25_run(corpus: Corpus, queries: dict[str, str]) -> tuple[Run, float, float]:
    """BM25 run plus (index seconds, search seconds)."""
    stemmer = Stemmer.Stemmer("english")
    started = time.perf_counter()
    retriever = bm25s.BM25(k1=0.9, b=0.4, method="lucene")
    retriever.index(
        bm25s.tokenize(corpus.texts, stopwords="en", stemmer=stemmer, show_progress=False),
        show_progress=False,
    )
    indexed = time.perf_counter()
    tokens = bm25s.tokenize(list(queries.values()), stopwords="en", stemmer=stemmer, show_progress=False)
    rows, scores = retriever.retrieve(tokens, k=DEPTH, show_progress=False)
    searched = time.perf_counter()
    run = {
        qid: {corpus.ids[row]: float(score) for row, score in zip(row_rows, row_scores)}
        for qid, row_rows, row_scores in zip(queries, rows.tolist(), scores.tolist())
    }
    return run, indexed - started, searched - indexed


def dense_run(
    corpus: Corpus, queries: dict[str, str], model: str, backend: str, batch_size: int, save: Path | None
) -> tuple[Run, float, float, str]:
    """Dense run plus (index seconds, search seconds, fingerprint); the model load (and for the onnx
    backends the one-off export, cached afterwards) is not timed."""
    settings = DenseSettings(model=model, backend=backend)
    load_encoder(settings.model, None, settings.backend)  # load the model outside the timings
    folder = save / backend if save else Path(tempfile.mkdtemp(prefix="deepretrieval-dense-"))
    started, cpu_started = time.perf_counter(), time.process_time()  # embed, write and publish the index
    retriever = DenseRetriever.build(corpus, folder, settings, batch_size=batch_size, show_progress=True)
    indexed = time.perf_counter()
    BUILD_CPU_S[backend] = time.process_time() - cpu_started
    hits = retriever.search(list(queries.values()), DEPTH)
    searched = time.perf_counter()
    run = {qid: {hit.doc_id: hit.score for hit in per_query} for qid, per_query in zip(queries, hits)}
    return run, indexed - started, searched - indexed, retriever.fingerprint


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data", type=Path, default=shared_data_dir() / "scifact", help="BEIR SciFact folder"
    )
    parser.add_argument("--model", default=DEFAULT_MODEL, help="sentence-transformers id or local path")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--backends", default="torch,onnx-int8", help="dense encoder backends to build with, torch first"
    )
    parser.add_argument(
        "--save", type=Path, help="build the dense indexes in this folder (default: temporary ones)"
    )
    parser.add_argument("--json", type=Path, help="write the figures to this JSON file")
    args = parser.parse_args()
    if not (args.data / "corpus.jsonl").is_file():
        raise SystemExit(f"SciFact not found at {args.data} (pass --data or set DEEPRETRIEVAL_DATA)")
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]

    corpus = load_corpus(args.data)
    queries, qrels = read_test_split(args.data)
    load_before = os.getloadavg()
    bm25, bm25_index_s, bm25_search_s = bm25_run(corpus, queries)
    runs: dict[str, Run] = {"bm25": bm25}
    index_s, search_s = {"bm25": bm25_index_s}, {"bm25": bm25_search_s}
    fingerprints = {}
    for backend in backends:
        name = f"dense-{backend}"
        runs[name], index_s[name], search_s[name], fingerprints[name] = dense_run(
            corpus, queries, args.model, backend, args.batch_size, args.save
        )

    figures: dict[str, object] = {
        "docs": len(corpus),
        "queries": len(queries),
        "model": args.model,
        "batch_size": args.batch_size,
        "torch_threads": _torch_threads(),
        "load_before": load_before,
        "load_after": os.getloadavg(),
    }
    systems = list(runs)
    print(f"\nSciFact test: {len(queries)} queries over {len(corpus)} docs; dense model {args.model}")
    print(f"{'':<20}" + "".join(f"{name:>18}" for name in systems))
    for name, measure in MEASURES.items():
        values = {
            system: ir_measures.calc_aggregate([measure], qrels, run)[measure] for system, run in runs.items()
        }
        figures[name] = values
        print(f"{name:<20}" + "".join(f"{values[system]:>18.4f}" for system in systems))
    for label, table in (("index build (s)", index_s), (f"search {len(queries)} (s)", search_s)):
        print(f"{label:<20}" + "".join(f"{table[system]:>18.2f}" for system in systems))
    cpu_s = {f"dense-{backend}": seconds for backend, seconds in BUILD_CPU_S.items()}
    print(
        f"{'index build CPU (s)':<20}{'':>18}" + "".join(f"{cpu_s[system]:>18.1f}" for system in systems[1:])
    )
    figures["index_s"], figures["search_s"], figures["index_cpu_s"] = index_s, search_s, cpu_s
    if "dense-torch" in runs:
        reference = "dense-torch"
        for system in systems[2:]:
            speedup = index_s[reference] / index_s[system]
            cpu_speedup = cpu_s[reference] / cpu_s[system]
            delta = figures["ndcg@10"][system] - figures["ndcg@10"][reference]  # type: ignore[index]
            figures[f"{system}_build_speedup"] = speedup
            figures[f"{system}_build_cpu_speedup"] = cpu_speedup
            figures[f"{system}_ndcg@10_delta"] = delta
            print(
                f"{system}: build {speedup:.2f}x faster than dense-torch (CPU time {cpu_speedup:.2f}x), "
                f"NDCG@10 {delta:+.4f}"
            )
    figures["dense_fingerprints"] = fingerprints
    print(f"load average before / after: {load_before} / {figures['load_after']}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
        print(f"figures written to {args.json}")


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


if __name__ == "__main__":
    main()
