"""Reading document collections, and the corpus fingerprint that ties an index to the collection it was built
from.

Two file formats: JSONL (BEIR ``corpus.jsonl`` or any JSONL with an id and a text field) and TSV with a
header row (DPR's ``psgs_w100.tsv``: ``id<TAB>text<TAB>title``, fields quoted as by Python's ``csv``). A
``title``, when present, is prepended to the text. Two ways to read one: :func:`load_corpus` holds the whole
collection in memory (:class:`Corpus`); :func:`open_corpus` streams it in batches (:class:`CorpusFile`),
for collections too large for memory (DPR's 21M passages are 13 GB).
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from itertools import islice
from pathlib import Path

import numpy as np

from deepretrieval.files import write_text
from deepretrieval.paths import cache_dir

ID_KEYS = ("_id", "id", "doc_id", "docid")
TEXT_KEYS = ("text", "contents", "body", "abstract")
FINGERPRINT_FORMAT = "corpus-v1"  # bump when document_line changes
BATCH = 10_000  # documents per batch of a streamed corpus


class CorpusError(ValueError):
    """A corpus file that cannot be read as documents; the message names the file and line."""


def document_line(doc_id: str, text: str) -> bytes:
    """One document as the JSONL line that index document stores hold and corpus fingerprints hash."""
    return json.dumps({"id": doc_id, "text": text}, ensure_ascii=False).encode() + b"\n"


@dataclass(frozen=True)
class Corpus:
    """Documents in file order, in memory: ``ids[i]`` is the id of ``texts[i]`` (title and body joined).
    ``source`` is the file it was read from, if any (recorded in index manifests)."""

    ids: list[str]
    texts: list[str]
    source: Path | None = None
    _stamp: str | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.ids)

    def batches(self, size: int = BATCH) -> Iterator[tuple[list[str], list[str]]]:
        """The documents as ``(ids, texts)`` batches of at most ``size``, in order (as :class:`CorpusFile`)."""
        for start in range(0, len(self.ids), size):
            yield self.ids[start : start + size], self.texts[start : start + size]

    @cached_property
    def fingerprint(self) -> str:
        """sha256 over the documents (ids and texts, in order); equal for equal collections whatever file
        they came from. Remembered on disk for the file it was read from (see :func:`corpus_fingerprint`)."""
        digest = hashlib.sha256()
        for doc_id, text in zip(self.ids, self.texts, strict=True):
            digest.update(document_line(doc_id, text))
        value = digest.hexdigest()
        if self._stamp is not None:
            _remember(self._stamp, value)
        return value


class CorpusFile:
    """A corpus file read as a stream: :meth:`batches` yields the documents a batch at a time and checks
    them as it goes (bad lines, duplicate ids), so the collection is never in memory.

    The document count and the fingerprint (equal to :attr:`Corpus.fingerprint` of the same documents)
    are recorded by the first complete pass over :meth:`batches`; asking for them before that makes a
    pass of its own (reading, not keeping). An index build makes that pass anyway."""

    def __init__(self, path: str | Path, *, id_key: str | None = None, text_key: str | None = None):
        self.path = corpus_file(path)
        if not self.path.is_file():
            raise CorpusError(f"corpus file not found: {self.path}")
        self.source = self.path.resolve()
        self.id_key, self.text_key = id_key, text_key
        self._stamp = _stamp_of(self.path, id_key, text_key)  # before reading: a later edit changes it
        self._count: int | None = None
        self._fingerprint: str | None = None

    def __len__(self) -> int:
        if self._count is None:
            self._complete_pass()
        return self._count  # type: ignore[return-value]

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None and self._stamp is not None:
            self._fingerprint = _remembered(self._stamp)
        if self._fingerprint is None:
            self._complete_pass()
        return self._fingerprint  # type: ignore[return-value]

    def _complete_pass(self) -> None:
        for _ in self.batches():
            pass

    def batches(self, size: int = BATCH) -> Iterator[tuple[list[str], list[str]]]:
        """The documents as ``(ids, texts)`` batches of at most ``size``, in file order. Duplicate ids are
        found by a 64-bit hash of every id (8 bytes a document, not a set of strings) and confirmed by a
        second look at the colliding lines, after the last batch."""
        digest = hashlib.sha256()
        hashes: list[np.ndarray] = []
        count = 0
        records = _records(self.path, self.id_key, self.text_key)
        while chunk := list(islice(records, size)):
            ids = [doc_id for _, doc_id, _ in chunk]
            texts = [text for _, _, text in chunk]
            for doc_id, text in zip(ids, texts):
                digest.update(document_line(doc_id, text))
            hashes.append(np.fromiter(map(hash, ids), dtype=np.int64, count=len(ids)))
            count += len(ids)
            yield ids, texts
        if not count:
            raise CorpusError(f"{self.path}: no documents")
        self._check_unique(np.concatenate(hashes))
        self._count, self._fingerprint = count, digest.hexdigest()
        if self._stamp is not None:
            _remember(self._stamp, self._fingerprint)

    def _check_unique(self, hashes: np.ndarray) -> None:
        ordered = np.sort(hashes)
        repeated = set(ordered[1:][ordered[1:] == ordered[:-1]].tolist())
        if not repeated:
            return
        first_line: dict[str, int] = {}
        for line_no, doc_id, _ in _records(self.path, self.id_key, self.text_key):
            if hash(doc_id) in repeated:
                if doc_id in first_line:
                    raise CorpusError(
                        f"{self.path}:{line_no}: duplicate document id {doc_id!r} "
                        f"(first on line {first_line[doc_id]})"
                    )
                first_line[doc_id] = line_no


def corpus_file(path: str | Path) -> Path:
    """The file a corpus argument names: a folder means ``<folder>/corpus.jsonl`` (BEIR layout)."""
    path = Path(path)
    return path / "corpus.jsonl" if path.is_dir() else path


def corpus_fingerprint(source: str | Path | Corpus | CorpusFile) -> str:
    """The fingerprint of a corpus object or file (``Corpus.fingerprint``). For a file it is cached by path,
    size, modification time and inode, so asking again costs one ``stat``, not a read of the collection."""
    if isinstance(source, (Corpus, CorpusFile)):
        return source.fingerprint
    return known_fingerprint(source) or open_corpus(source).fingerprint


def known_fingerprint(path: str | Path) -> str | None:
    """The cached fingerprint of the corpus file at ``path``, or None when it was never computed for the
    file as it is now."""
    stamp = _stamp_of(corpus_file(path))
    return None if stamp is None else _remembered(stamp)


def _remembered(stamp: str) -> str | None:
    try:
        value = _fingerprint_cache(stamp).read_text().strip()
    except OSError:
        return None
    return value if len(value) == 64 else None


def _stamp_of(path: Path, id_key: str | None = None, text_key: str | None = None) -> str | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    key = [FINGERPRINT_FORMAT, str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino]
    return json.dumps(key + [id_key, text_key])


def _fingerprint_cache(stamp: str) -> Path:
    return cache_dir() / "corpus-fingerprints" / hashlib.sha256(stamp.encode()).hexdigest()[:32]


def _remember(stamp: str, value: str) -> None:
    try:
        write_text(_fingerprint_cache(stamp), value)
    except OSError:
        pass  # a read-only cache only costs a recomputation next time


def _pick(record: dict, keys: tuple[str, ...]) -> object:
    for key in keys:
        if key in record:
            return record[key]
    return None


def _decode(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise CorpusError(
            f"{where}: not UTF-8 (byte 0x{raw[err.start]:02x} at column {err.start + 1}); "
            "re-encode the file as UTF-8"
        ) from None


def _parse(raw: bytes, where: str) -> dict:
    line = _decode(raw, where)
    try:
        record = json.loads(line)
    except ValueError as err:
        raise CorpusError(f"{where}: not valid JSON ({err})") from None
    if not isinstance(record, dict):
        raise CorpusError(f"{where}: expected a JSON object, got {type(record).__name__}")
    return record


def _checked_text(value: object, where: str) -> str:
    text = str(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise CorpusError(
            f"{where}: the text holds an unpaired surrogate escape ({text[err.start]!r}), which is not "
            "valid Unicode; fix or drop it"
        ) from None
    return text


def _document(record: dict, where: str, id_key: str | None, text_key: str | None) -> tuple[str, str]:
    """``(id, text)`` of one record (a JSON object or a TSV row by its header's names)."""
    doc_id = record.get(id_key) if id_key else _pick(record, ID_KEYS)
    text = record.get(text_key) if text_key else _pick(record, TEXT_KEYS)
    if doc_id is None or text is None:
        raise CorpusError(
            f"{where}: needs an id ({id_key or '/'.join(ID_KEYS)}) "
            f"and a text ({text_key or '/'.join(TEXT_KEYS)}); keys present: {sorted(record)}"
        )
    title = record.get("title") or ""
    return _checked_text(doc_id, where), _checked_text(f"{title} {text}".strip() if title else text, where)


def _records(path: Path, id_key: str | None, text_key: str | None) -> Iterator[tuple[int, str, str]]:
    """``(line number, id, text)`` of every document of a JSONL or TSV file, in order."""
    reader = _tsv_records if path.suffix.lower() == ".tsv" else _jsonl_records
    yield from reader(path, id_key, text_key)


def _jsonl_records(path: Path, id_key: str | None, text_key: str | None) -> Iterator[tuple[int, str, str]]:
    with path.open("rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            if raw.strip():
                where = f"{path}:{line_no}"
                yield (line_no, *_document(_parse(raw, where), where, id_key, text_key))


def _tsv_records(path: Path, id_key: str | None, text_key: str | None) -> Iterator[tuple[int, str, str]]:
    """Rows of a TSV file with a header; quoted fields as DPR writes them (``csv`` with a tab delimiter)."""
    with path.open("rb") as handle:
        position = {"line": 0}

        def lines() -> Iterator[str]:
            for raw in handle:
                position["line"] += 1
                yield _decode(raw, f"{path}:{position['line']}")

        rows = csv.reader(lines(), delimiter="\t")
        header = next(rows, None)
        if not header:
            raise CorpusError(
                f"{path}: empty TSV file; the first line must name the columns (id, text, title)"
            )
        for row in rows:
            where = f"{path}:{position['line']}"
            if not row or row == [""]:
                continue
            if len(row) != len(header):
                raise CorpusError(
                    f"{where}: {len(row)} tab-separated fields, the header names {len(header)} "
                    f"({', '.join(header)})"
                )
            yield (position["line"], *_document(dict(zip(header, row)), where, id_key, text_key))


def open_corpus(path: str | Path, *, id_key: str | None = None, text_key: str | None = None) -> CorpusFile:
    """A corpus file (JSONL or TSV; a folder means ``<folder>/corpus.jsonl``) to stream in batches: what
    index builds read collections of any size with. Lines are checked as they are read."""
    return CorpusFile(path, id_key=id_key, text_key=text_key)


def load_corpus(path: str | Path, *, id_key: str | None = None, text_key: str | None = None) -> Corpus:
    """Read a JSONL or TSV corpus into memory, checking every line now. A folder means
    ``<folder>/corpus.jsonl`` (BEIR layout).

    Each record has an id (``_id``/``id``/``doc_id``/``docid`` or ``id_key``) and a text
    (``text``/``contents``/``body``/``abstract`` or ``text_key``); a ``title``, when present, is prepended.
    """
    path = corpus_file(path)
    if not path.is_file():
        raise CorpusError(f"corpus file not found: {path}")
    stamp = _stamp_of(path, id_key, text_key)  # taken before reading: a later edit changes the stamp
    ids: list[str] = []
    texts: list[str] = []
    seen: set[str] = set()
    for line_no, doc_id, text in _records(path, id_key, text_key):
        if doc_id in seen:
            raise CorpusError(f"{path}:{line_no}: duplicate document id {doc_id!r}")
        seen.add(doc_id)
        ids.append(doc_id)
        texts.append(text)
    if not ids:
        raise CorpusError(f"{path}: no documents")
    return Corpus(ids=ids, texts=texts, source=path.resolve(), _stamp=stamp)
