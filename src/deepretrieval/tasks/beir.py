"""BEIR-layout collections (corpus.jsonl, queries.jsonl, qrels/{train,dev,test}.tsv) as a classic-IR task; or a
queries file (TSV, CSV or BEIR's JSONL) with ``qrels`` and ``corpus`` options naming the rest.

The folder may also hold trec_eval's files: qrels in its four columns (``qid 0 docid rel``, any
whitespace, no header; ``qrels/<split>.tsv``, ``.txt`` or ``.qrels``), and the queries as a TREC topics
file (``topics*``: ``<top> <num> <title>`` SGML, the title being the query) or ``queries.tsv``
(``qid<TAB>text``) in place of ``queries.jsonl``. ``data`` may also be an ``irds:`` or ``hf:`` id
(:mod:`deepretrieval.tasks.sources` makes it a BEIR folder).
"""

from __future__ import annotations

import json
import re
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


QRELS_SUFFIXES = (".tsv", ".txt", ".qrels")
NOT_BEIR = (
    "is not a BEIR folder: needs corpus.jsonl, queries.jsonl (or a TREC topics file) and qrels/<split>.tsv "
    "(or give irds:ID for ir_datasets, hf:OWNER/NAME for a Hugging Face dataset)"
)
_TOPIC = re.compile(r"<top>(.*?)</top>", re.DOTALL | re.IGNORECASE)
_NUM = re.compile(r"<num>\s*(?:Number:)?\s*(\S+)", re.IGNORECASE)
_TITLE = re.compile(r"<title>\s*(?:Topic:)?(.*?)(?=<|\Z)", re.DOTALL | re.IGNORECASE)


def read_queries(path: Path) -> dict[str, str]:
    """``{query id: text}`` from ``queries.jsonl`` (BEIR's ``metadata``, e.g. SciFact's evidence labels, is
    dropped to avoid label leakage), ``qid<TAB>text`` lines (``.tsv``) or a TREC topics file (the title)."""
    if path.suffix == ".jsonl":
        return dict(read_jsonl(path, lambda r: (str(r["_id"]), r["text"]), '{"_id", "text"}'))
    lines = list(_text_lines(path))
    text = "".join(line for _, line in lines)
    if _TOPIC.search(text):
        return read_topics(path, text)
    queries = {}
    for line_no, line in lines:
        if line.strip():
            qid, tab, query = line.rstrip("\r\n").partition("\t")
            if not tab:
                raise DataError(f"{path}:{line_no}: expected query-id<TAB>text or TREC <top> topics")
            queries[qid.strip()] = query.strip()
    return queries


def read_topics(path: Path, text: str) -> dict[str, str]:
    """``{number: title}`` of every ``<top>`` of a TREC topics file."""
    queries = {}
    for number, topic in enumerate(_TOPIC.findall(text), 1):
        num, title = _NUM.search(topic), _TITLE.search(topic)
        if num is None or title is None or not title.group(1).strip():
            raise DataError(f"{path}: topic {number} has no <num> or no <title>")
        queries[num.group(1)] = " ".join(title.group(1).split())
    return queries


def queries_path(data_dir: Path) -> Path | None:
    """The queries of a BEIR-shaped folder: ``queries.jsonl``, else ``queries.tsv``, else one ``topics*``."""
    for name in ("queries.jsonl", "queries.tsv"):
        if (data_dir / name).is_file():
            return data_dir / name
    topics = sorted(p for p in data_dir.glob("topics*") if p.is_file())
    if len(topics) > 1:
        raise DataError(
            f"{data_dir} holds {len(topics)} topics files ({', '.join(p.name for p in topics)}); keep one"
        )
    return topics[0] if topics else None


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """``{query id: {doc id: grade}}`` from BEIR's TSV (``query-id corpus-id score`` after a header line)
    or trec_eval's qrels (``qid iteration docid rel``, no header), columns split at any whitespace (as
    trec_eval does; an id holds none); the layout is the data's column count (3 or 4, the same on every
    line). A first line whose last column is not an integer, with as many columns as the data, is a header
    (a judgment's last column always is one), so a judgment is never taken for a header."""
    rows = [(line_no, line.split()) for line_no, line in _text_lines(path) if line.strip()]
    header = rows.pop(0) if rows and not _is_int(rows[0][1][-1]) else None
    if not rows:
        return {}
    first_line, first = rows[0]
    if header is not None and len(header[1]) != len(first):
        raise DataError(
            f"{path}:{header[0]}: {' '.join(header[1])!r} is no judgment (its last column is not an "
            f"integer) nor a header of the {len(first)} columns below it"
        )
    if len(first) not in (3, 4):
        raise DataError(
            f"{path}:{first_line}: expected query-id<TAB>corpus-id<TAB>score (BEIR) or qid 0 docid rel "
            f"(trec_eval), got {len(first)} columns"
        )
    layout = "query-id<TAB>corpus-id<TAB>score" if len(first) == 3 else "qid 0 docid rel"
    qrels: dict[str, dict[str, int]] = defaultdict(dict)
    for line_no, cells in rows:
        if len(cells) != len(first):
            raise DataError(
                f"{path}:{line_no}: {len(cells)} columns, but line {first_line} has {len(first)} ({layout})"
            )
        query, doc, grade = (
            (cells[0], cells[1], cells[2]) if len(cells) == 3 else (cells[0], cells[2], cells[3])
        )
        if not _is_int(grade):
            raise DataError(f"{path}:{line_no}: grade {grade!r} is not an integer ({layout})")
        qrels[query][doc] = int(grade)
    return dict(qrels)


def _is_int(text: str) -> bool:
    return text.lstrip("+-").isdigit()


def qrels_files(qrels_dir: Path) -> dict[str, Path]:
    """``qrels/<split>.tsv`` (or ``.txt``, ``.qrels``) by split; two files for one split is an error."""
    found: dict[str, Path] = {}
    for path in sorted(qrels_dir.iterdir()):
        if path.suffix in QRELS_SUFFIXES and path.is_file():
            if path.stem in found:
                raise DataError(
                    f"{qrels_dir} has two qrels files for split {path.stem!r}: {found[path.stem].name}, {path.name}"
                )
            found[path.stem] = path
    if not found:
        raise DataError(f"{qrels_dir} holds no <split>.tsv files")
    return found


def load_beir_splits(data_dir: str | Path) -> dict[str, list[Example]]:
    """Examples of every split that has a qrels file; truth = that query's qrels."""
    data_dir = Path(data_dir)
    queries_file, qrels_dir = queries_path(data_dir), data_dir / "qrels"
    if queries_file is None or not qrels_dir.is_dir():
        raise DataError(f"{data_dir} {NOT_BEIR}")
    queries = read_queries(queries_file)
    splits = {}
    for split, qrels_path in qrels_files(qrels_dir).items():
        qrels = read_qrels(qrels_path)
        missing = [qid for qid in qrels if qid not in queries]
        if missing:
            raise DataError(
                f"{qrels_path}: {len(missing)} query ids not in {queries_file.name}, e.g. {missing[:3]}"
            )
        splits[split] = [
            Example(id=qid, fields={"query": queries[qid]}, truth=judged, original=queries[qid])
            for qid, judged in qrels.items()
        ]
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
    if not (data / "corpus.jsonl").is_file() or queries_path(data) is None:
        raise DataError(f"{data} {NOT_BEIR}")
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
