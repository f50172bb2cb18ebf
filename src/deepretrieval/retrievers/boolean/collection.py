"""A literature collection as the Boolean engine indexes it: title, abstract and publication date kept
apart (a :class:`~deepretrieval.retrievers.corpus.Corpus` holds them joined, and no date)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

from deepretrieval.retrievers.boolean.syntax import ParseError, normalize_date
from deepretrieval.retrievers.corpus import ID_KEYS, TEXT_KEYS, Corpus, CorpusError

DATE_KEYS = ("pub_date", "date")


@dataclass(frozen=True, slots=True)
class Record:
    """One document; ``date`` is its publication date as ``YYYYMMDD`` or ``None``."""

    doc_id: str
    title: str
    abstract: str
    date: int | None


def records(corpus: Corpus) -> Iterator[Record]:
    """The corpus's documents with title, abstract and date read back from the file it came from
    (``title``; the text key ``load_corpus`` used, e.g. ``text`` or ``abstract``; a publication date
    ``YYYY/MM/DD``, ``YYYY/MM`` or ``YYYY`` in ``metadata.pub_date``, ``metadata.date``, ``pub_date`` or
    ``date``). Every record must be the document the corpus holds at that row. A corpus made in memory
    has no file: its texts are abstracts, with no title and no date."""
    if corpus.source is None:
        for doc_id, text in zip(corpus.ids, corpus.texts, strict=True):
            yield Record(doc_id, "", text, None)
        return
    row = 0
    with corpus.source.open("rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            where = f"{corpus.source}:{line_no}"
            try:
                record = json.loads(raw)
                doc_id, title = str(_first(record, ID_KEYS)), str(record.get("title") or "")
                abstract = str(_first(record, TEXT_KEYS) or "")
            except (ValueError, AttributeError):  # not a JSON object: the file changed since it was read
                record, doc_id, title, abstract = {}, "", "", ""
            joined = f"{title} {abstract}".strip() if title else abstract
            if row >= len(corpus) or corpus.ids[row] != doc_id or corpus.texts[row] != joined:
                raise CorpusError(
                    f"{where}: not the document the corpus read there (the file changed since, or was read "
                    f"with other id/text keys); load the corpus again with the default keys"
                )
            yield Record(doc_id, title, abstract, _date(record, where))
            row += 1
    if row != len(corpus):
        raise CorpusError(f"{corpus.source}: {row} documents, the corpus read {len(corpus)}; load it again")


def _first(record: dict, keys: tuple[str, ...]) -> object:
    for key in keys:
        if key in record:
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
        raise CorpusError(f"{where}: publication {err}") from None
