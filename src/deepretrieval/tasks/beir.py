"""BEIR-layout collections (corpus.jsonl, queries.jsonl, qrels/{train,dev,test}.tsv) as a classic-IR task."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from deepretrieval.retrievers import open_retriever
from deepretrieval.retrievers.base import Retriever
from deepretrieval.tasks.base import Example
from deepretrieval.tasks.retrieval import RetrievalTask

T = TypeVar("T")


class DataError(ValueError):
    """A data folder that does not have the expected layout; the message says what is missing."""


def read_jsonl(path: Path, fields: Callable[[dict], T], expected: str) -> list[T]:
    """``fields(record)`` for every non-blank line; a bad line raises :class:`DataError` naming file and line."""
    items = []
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                items.append(fields(json.loads(line)))
            except (ValueError, KeyError, TypeError) as err:
                raise DataError(f"{path}:{line_no}: expected {expected} ({err})") from None
    return items


def read_queries(path: Path) -> dict[str, str]:
    """``{query id: text}``; BEIR's ``metadata`` (SciFact's evidence labels) is dropped to avoid label leakage."""
    return dict(read_jsonl(path, lambda r: (str(r["_id"]), r["text"]), '{"_id", "text"}'))


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """``{query id: {doc id: grade}}`` from a TSV with header ``query-id corpus-id score``."""
    qrels: dict[str, dict[str, int]] = defaultdict(dict)
    with path.open(encoding="utf-8", newline="") as handle:
        rows = csv.reader(handle, delimiter="\t")
        for line_no, row in enumerate(rows, start=1):
            if line_no == 1 and row and not row[-1].lstrip("-").isdigit():
                continue  # header
            if len(row) < 3:
                raise DataError(f"{path}:{line_no}: expected query-id<TAB>corpus-id<TAB>score, got {row}")
            try:
                qrels[row[0]][row[1]] = int(row[2])
            except ValueError:
                raise DataError(f"{path}:{line_no}: score {row[2]!r} is not an integer") from None
    return dict(qrels)


def load_beir_splits(data_dir: str | Path) -> dict[str, list[Example]]:
    """Examples of every split that has a ``qrels/<split>.tsv``; truth = that query's qrels."""
    data_dir = Path(data_dir)
    queries_path, qrels_dir = data_dir / "queries.jsonl", data_dir / "qrels"
    if not queries_path.is_file() or not qrels_dir.is_dir():
        raise DataError(
            f"{data_dir} is not a BEIR folder: needs queries.jsonl, corpus.jsonl and qrels/<split>.tsv"
        )
    queries = read_queries(queries_path)
    splits = {}
    for qrels_path in sorted(qrels_dir.glob("*.tsv")):
        qrels = read_qrels(qrels_path)
        missing = [qid for qid in qrels if qid not in queries]
        if missing:
            raise DataError(
                f"{qrels_path}: {len(missing)} query ids not in queries.jsonl, e.g. {missing[:3]}"
            )
        splits[qrels_path.stem] = [
            Example(id=qid, fields={"query": queries[qid]}, truth=judged, original=queries[qid])
            for qid, judged in qrels.items()
        ]
    if not splits:
        raise DataError(f"{qrels_dir} holds no <split>.tsv files")
    return splits


def load(
    data: str | Path,
    *,
    retriever: str | Retriever = "bm25",
    index_dir: str | Path | None = None,
    metrics: Sequence[str] = ("ndcg@10", "recall@100"),
    template: str = "classic_ir",
    cache_dir: str | Path | None = None,
    name: str | None = None,
    retriever_options: dict | None = None,
) -> RetrievalTask:
    """A classic-IR task over a BEIR folder, judged by BM25 (default) or a dense retriever."""
    data = Path(data)
    splits = load_beir_splits(data)
    if isinstance(retriever, str):
        retriever = open_retriever(retriever, corpus=data, index_dir=index_dir, **(retriever_options or {}))
    return RetrievalTask(name or data.name, splits, retriever, metrics, template, cache_dir)
