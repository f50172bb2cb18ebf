"""Reading a literature collection: BEIR-style JSONL records with a title, an abstract and maybe a date."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from deepretrieval.retrievers.boolean.syntax import ParseError, normalize_date
from deepretrieval.retrievers.corpus import CorpusError

ID_KEYS = ("_id", "id", "doc_id", "docid", "pmid")
ABSTRACT_KEYS = ("text", "abstract")
DATE_KEYS = ("pub_date", "date")


@dataclass(frozen=True, slots=True)
class Record:
    """One document; ``date`` is its publication date as ``YYYYMMDD`` or ``None``."""

    doc_id: str
    title: str
    abstract: str
    date: int | None


def corpus_file(path: str | Path) -> Path:
    """A folder means ``<folder>/corpus.jsonl`` (BEIR layout); the file must exist."""
    path = Path(path)
    if path.is_dir():
        path = path / "corpus.jsonl"
    if not path.is_file():
        raise CorpusError(f"corpus file not found: {path}")
    return path


def read_records(path: Path, feed: Callable[[bytes], object] | None = None) -> Iterator[Record]:
    """Records in file order. Each line is an object with an id (``_id``/``id``/``doc_id``/``docid``/
    ``pmid``), a ``title`` and/or an abstract (``text`` or ``abstract``), and optionally a publication
    date ``YYYY/MM/DD`` (or ``YYYY/MM``, ``YYYY``) in ``metadata.pub_date``, ``metadata.date``,
    ``pub_date`` or ``date``. Bad lines raise :class:`CorpusError` naming the file and line. ``feed``
    (a digest's ``update``), when given, receives every byte read: it fingerprints exactly what was read."""
    seen: set[str] = set()
    with path.open("rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            if feed is not None:
                feed(raw)
            if not raw.strip():
                continue
            where = f"{path}:{line_no}"
            try:
                record = json.loads(raw)
            except (ValueError, UnicodeDecodeError) as err:
                raise CorpusError(f"{where}: not valid JSON ({err})") from None
            if not isinstance(record, dict):
                raise CorpusError(f"{where}: expected a JSON object, got {type(record).__name__}")
            doc_id = _first(record, ID_KEYS)
            abstract = _first(record, ABSTRACT_KEYS)
            title = record.get("title")
            if doc_id is None or (title is None and abstract is None):
                raise CorpusError(
                    f"{where}: needs an id ({'/'.join(ID_KEYS)}) and a title or abstract "
                    f"({'/'.join(ABSTRACT_KEYS)}); keys present: {sorted(record)}"
                )
            doc_id = str(doc_id)
            if doc_id in seen:
                raise CorpusError(f"{where}: duplicate document id {doc_id!r}")
            seen.add(doc_id)
            yield Record(doc_id, str(title or ""), str(abstract or ""), _date(record, where))


def _first(record: dict, keys: tuple[str, ...]) -> object:
    for key in keys:
        if record.get(key) is not None:
            return record[key]
    return None


def _date(record: dict, where: str) -> int | None:
    metadata = record.get("metadata")
    value = _first(metadata, DATE_KEYS) if isinstance(metadata, dict) else None
    value = value if value is not None else _first(record, DATE_KEYS)
    if value is None or value == "":
        return None
    try:
        return int(normalize_date(str(value), end=False).replace("/", ""))
    except ParseError as err:
        raise CorpusError(f"{where}: publication date {err}") from None
