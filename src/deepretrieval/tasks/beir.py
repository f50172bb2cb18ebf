"""BEIR-layout collections (corpus.jsonl, queries.jsonl, qrels/{train,dev,test}.tsv) as a classic-IR task; or a
queries file (TSV, CSV or BEIR's JSONL) with ``qrels`` and ``corpus`` options naming the rest.

``data`` may also be an ``irds:`` or ``hf:`` id (:mod:`deepretrieval.tasks.sources` makes it a BEIR folder)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from pydantic import Field, field_validator

from deepretrieval.metrics import parse_metrics
from deepretrieval.retrievers.base import Retriever
from deepretrieval.tasks import TaskFamily
from deepretrieval.tasks.base import Example, TaskOptions
from deepretrieval.tasks.question_files import is_question_file, read_query_table
from deepretrieval.tasks.retrieval import RetrievalTask

T = TypeVar("T")


BEIR_LAYOUT = (
    "needs queries.jsonl, corpus.jsonl and qrels/<split>.tsv (or give irds:ID for ir_datasets, "
    "hf:OWNER/NAME for a Hugging Face dataset)"
)


class DataError(ValueError):
    """A data folder that does not have the expected layout; the message says what is missing."""


def read_jsonl(path: Path, fields: Callable[[dict], T], expected: str) -> list[T]:
    """``fields(record)`` for every non-blank line; a bad line raises :class:`DataError` naming file and line."""
    items = []
    for line_no, line in _text_lines(path):
        if not line.strip():
            continue
        try:
            items.append(fields(json.loads(line)))
        except (ValueError, KeyError, TypeError) as err:
            raise DataError(f"{path}:{line_no}: expected {expected} ({err})") from None
    return items


def _text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Numbered lines of a UTF-8 text file; a line that is not UTF-8 is a :class:`DataError` naming it."""
    if not path.is_file():
        raise DataError(f"file not found: {path}")
    with path.open("rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            try:
                yield line_no, raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataError(
                    f"{path}:{line_no}: not UTF-8 text ({err.reason} at byte {err.start})"
                ) from None


def read_queries(path: Path) -> dict[str, str]:
    """``{query id: text}``; BEIR's ``metadata`` (SciFact's evidence labels) is dropped to avoid label leakage."""
    return dict(read_jsonl(path, lambda r: (str(r["_id"]), r["text"]), '{"_id", "text"}'))


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """``{query id: {doc id: grade}}`` from a TSV with header ``query-id corpus-id score``."""
    qrels: dict[str, dict[str, int]] = defaultdict(dict)
    for line_no, line in _text_lines(path):
        row = line.rstrip("\r\n").split("\t")
        if line_no == 1 and row and not row[-1].lstrip("-").isdigit():
            continue  # header
        if row == [""]:
            continue
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
        raise DataError(f"{data_dir} is not a BEIR folder: {BEIR_LAYOUT}")
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


class BeirOptions(TaskOptions):
    """``task.options`` of a BEIR-layout collection (``qrels`` and ``corpus``: when ``data`` is a queries
    file rather than a BEIR folder)."""

    metrics: tuple[str, ...] = ("ndcg@10", "recall@100")
    ignore_identical_ids: bool = Field(
        True, description="drop a retrieved document whose id equals the query id (BEIR's evaluator default)"
    )
    name: str | None = None
    qrels: str | None = Field(
        None, description="with a queries file: its qrels file (the split is named after it) or qrels folder"
    )
    corpus: str | None = Field(None, description="with a queries file: the corpus (JSONL or TSV) to search")

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(str(metric) for metric in parse_metrics(value))


def corpus_path(data: Path | None, options: BeirOptions) -> Path:
    """``corpus.jsonl`` of a BEIR folder (the layout is checked first, so a wrong folder says so), or the
    ``corpus`` option beside a queries file."""
    data = Path(data)
    _query_file_options(data, options)
    if data.is_file():
        load_query_file_splits(data, Path(options.qrels))  # type: ignore[arg-type]  # checked before indexing
        return Path(options.corpus)  # type: ignore[arg-type]
    if not (data / "corpus.jsonl").is_file() or not (data / "queries.jsonl").is_file():
        raise DataError(f"{data} is not a BEIR folder: {BEIR_LAYOUT}")
    return data / "corpus.jsonl"


def _query_file_options(data: Path, options: BeirOptions) -> None:
    """A queries file needs the ``qrels`` and ``corpus`` options; a BEIR folder has its own."""
    if not data.is_file():
        if options.qrels is not None or options.corpus is not None:
            raise DataError(
                f"{data} is a BEIR folder with its own qrels and corpus: drop the qrels/corpus options"
            )
        return
    if options.qrels is None or options.corpus is None:
        raise DataError(
            f"{data} is a queries file: name its judgements and documents, e.g. --option qrels=qrels/test.tsv "
            "--option corpus=corpus.jsonl (or give a BEIR folder)"
        )


def load_query_file_splits(data: Path, qrels: Path) -> dict[str, list[Example]]:
    """The splits of a queries file (TSV/CSV, or BEIR's JSONL) judged by a qrels file (one split, named after
    it) or a folder of ``<split>.tsv``."""
    queries = read_query_table(data) if is_question_file(data) else read_queries(data)
    files = sorted(qrels.glob("*.tsv")) if qrels.is_dir() else [qrels]
    splits = {}
    for path in files:
        judged = read_qrels(path)
        missing = [qid for qid in judged if qid not in queries]
        if missing:
            raise DataError(f"{path}: {len(missing)} query ids not in {data}, e.g. {missing[:3]}")
        splits[path.stem] = [
            Example(id=qid, fields={"query": queries[qid]}, truth=docs, original=queries[qid])
            for qid, docs in judged.items()
        ]
    if not splits:
        raise DataError(f"{qrels} holds no <split>.tsv files")
    return splits


def build(data: Path | None, options: BeirOptions, retriever: Retriever) -> RetrievalTask:
    """A classic-IR task over a BEIR folder (or a queries file and its qrels), judged by ``retriever``."""
    data = Path(data)
    _query_file_options(data, options)
    if data.is_file():
        splits = load_query_file_splits(data, Path(options.qrels))  # type: ignore[arg-type]
    else:
        splits = load_beir_splits(data)
    return RetrievalTask(
        options.name or (data.stem if data.is_file() else data.name),
        splits,
        retriever,
        options.metrics,
        ignore_identical_ids=options.ignore_identical_ids,
    )


FAMILY = TaskFamily(
    template="classic_ir", options=BeirOptions, build=build, corpus=corpus_path, hub_names=True
)
