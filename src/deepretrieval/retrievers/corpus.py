"""Reading document collections (BEIR ``corpus.jsonl`` or any JSONL with an id and text fields), and the
corpus fingerprint that ties an index to the collection it was built from."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from deepretrieval.files import write_text
from deepretrieval.paths import cache_dir

ID_KEYS = ("_id", "id", "doc_id", "docid")
TEXT_KEYS = ("text", "contents", "body", "abstract")
FINGERPRINT_FORMAT = "corpus-v1"  # bump when document_line changes


class CorpusError(ValueError):
    """A corpus file that cannot be read as documents; the message names the file and line."""


def document_line(doc_id: str, text: str) -> bytes:
    """One document as the JSONL line that index document stores hold and corpus fingerprints hash."""
    return json.dumps({"id": doc_id, "text": text}, ensure_ascii=False).encode() + b"\n"


@dataclass(frozen=True)
class Corpus:
    """Documents in file order: ``ids[i]`` is the id of ``texts[i]`` (title and body joined).
    ``source`` is the file it was read from, if any (recorded in index manifests)."""

    ids: list[str]
    texts: list[str]
    source: Path | None = None
    _stamp: str | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.ids)

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


def corpus_file(path: str | Path) -> Path:
    """The JSONL file a corpus argument names: a folder means ``<folder>/corpus.jsonl`` (BEIR layout)."""
    path = Path(path)
    return path / "corpus.jsonl" if path.is_dir() else path


def corpus_fingerprint(source: str | Path | Corpus) -> str:
    """The fingerprint of a corpus object or file (``Corpus.fingerprint``). For a file it is cached by path,
    size, modification time and inode, so asking again costs one ``stat``, not a read of the collection."""
    if isinstance(source, Corpus):
        return source.fingerprint
    return known_fingerprint(source) or load_corpus(source).fingerprint


def known_fingerprint(path: str | Path) -> str | None:
    """The cached fingerprint of the corpus file at ``path``, or None when it was never computed for the
    file as it is now."""
    stamp = _stamp_of(corpus_file(path))
    if stamp is None:
        return None
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


def _parse(raw: bytes, where: str) -> dict:
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise CorpusError(
            f"{where}: not UTF-8 (byte 0x{raw[err.start]:02x} at column {err.start + 1}); "
            "re-encode the file as UTF-8"
        ) from None
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


def load_corpus(path: str | Path, *, id_key: str | None = None, text_key: str | None = None) -> Corpus:
    """Read a JSONL corpus. A folder means ``<folder>/corpus.jsonl`` (BEIR layout).

    Each line is an object with an id (``_id``/``id``/``doc_id``/``docid`` or ``id_key``) and a text
    (``text``/``contents``/``body``/``abstract`` or ``text_key``); a ``title``, when present, is prepended.
    """
    path = corpus_file(path)
    if not path.is_file():
        raise CorpusError(f"corpus file not found: {path}")
    stamp = _stamp_of(path, id_key, text_key)  # taken before reading: a later edit changes the stamp
    ids: list[str] = []
    texts: list[str] = []
    seen: set[str] = set()
    with path.open("rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            where = f"{path}:{line_no}"
            record = _parse(raw, where)
            doc_id = record.get(id_key) if id_key else _pick(record, ID_KEYS)
            text = record.get(text_key) if text_key else _pick(record, TEXT_KEYS)
            if doc_id is None or text is None:
                raise CorpusError(
                    f"{where}: needs an id ({id_key or '/'.join(ID_KEYS)}) "
                    f"and a text ({text_key or '/'.join(TEXT_KEYS)}); keys present: {sorted(record)}"
                )
            doc_id = _checked_text(doc_id, where)
            if doc_id in seen:
                raise CorpusError(f"{where}: duplicate document id {doc_id!r}")
            seen.add(doc_id)
            title = record.get("title") or ""
            ids.append(doc_id)
            texts.append(_checked_text(f"{title} {text}".strip() if title else text, where))
    if not ids:
        raise CorpusError(f"{path}: no documents")
    return Corpus(ids=ids, texts=texts, source=path.resolve(), _stamp=stamp)
