"""Dense vs BM25 on BEIR SciFact (test split), in one run.

Builds the full dense index (all-MiniLM-L6-v2 by default, progress bar) and a bm25s index
(k1=0.9, b=0.4, Lucene scoring, English stemmer + stop words), retrieves the 300 test claims
with both and prints NDCG@10 / recall@100 (ir_measures) and timings side by side.

    python benchmarks/dense_scifact.py [--data DIR] [--model NAME] [--save DIR] [--json PATH]
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from pathlib import Path

import bm25s
import ir_measures
import Stemmer
from ir_measures import R, nDCG

from deepretrieval.paths import shared_data_dir
from deepretrieval.retrievers.corpus import Corpus, load_corpus
from deepretrieval.retrievers.dense import DEFAULT_MODEL, DenseRetriever, DenseSettings, load_encoder

DEPTH = 100
MEASURES = {"ndcg@10": nDCG @ 10, "recall@100": R @ 100}

Run = dict[str, dict[str, float]]


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
    corpus: Corpus, queries: dict[str, str], model: str, batch_size: int, save: Path | None
) -> tuple[Run, float, float, str]:
    """Dense run plus (index seconds, search seconds, fingerprint); the model load is not timed."""
    settings = DenseSettings(model=model)
    load_encoder(settings.model)  # load the model outside the timings
    folder = save or Path(tempfile.mkdtemp(prefix="deepretrieval-dense-"))
    started = time.perf_counter()  # embedding the corpus, then writing and publishing the index
    retriever = DenseRetriever.build(corpus, folder, settings, batch_size=batch_size, show_progress=True)
    indexed = time.perf_counter()
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
        "--save", type=Path, help="build the dense index in this folder (default: a temporary one)"
    )
    parser.add_argument("--json", type=Path, help="write the figures to this JSON file")
    args = parser.parse_args()
    if not (args.data / "corpus.jsonl").is_file():
        raise SystemExit(f"SciFact not found at {args.data} (pass --data or set DEEPRETRIEVAL_DATA)")

    corpus = load_corpus(args.data)
    queries, qrels = read_test_split(args.data)
    bm25, bm25_index_s, bm25_search_s = bm25_run(corpus, queries)
    dense, dense_index_s, dense_search_s, fingerprint = dense_run(
        corpus, queries, args.model, args.batch_size, args.save
    )

    figures: dict[str, object] = {"docs": len(corpus), "queries": len(queries), "model": args.model}
    print(f"\nSciFact test: {len(queries)} queries over {len(corpus)} docs; dense model {args.model}")
    print(f"{'':<22}{'bm25':>10}{'dense':>10}{'dense/bm25':>12}")
    for name, measure in MEASURES.items():
        values = {
            system: ir_measures.calc_aggregate([measure], qrels, run)[measure]
            for system, run in (("bm25", bm25), ("dense", dense))
        }
        figures[name] = values
        figures[f"dense_vs_bm25_{name}"] = values["dense"] / values["bm25"]
        print(
            f"{name:<22}{values['bm25']:>10.4f}{values['dense']:>10.4f}{values['dense'] / values['bm25']:>12.3f}"
        )
    for name, bm25_s, dense_s in (
        ("index build (s)", bm25_index_s, dense_index_s),
        (f"search {len(queries)} (s)", bm25_search_s, dense_search_s),
    ):
        key = "index_s" if name.startswith("index") else "search_s"
        figures[key] = {"bm25": bm25_s, "dense": dense_s}
        print(f"{name:<22}{bm25_s:>10.3f}{dense_s:>10.3f}{dense_s / bm25_s:>12.1f}")
    figures["dense_fingerprint"] = fingerprint
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
        print(f"figures written to {args.json}")


if __name__ == "__main__":
    main()
