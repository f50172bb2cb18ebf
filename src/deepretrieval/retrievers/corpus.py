"""Reading document collections: BEIR ``corpus.jsonl`` or any JSONL with an id and text fields."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

ID_KEYS = ("_id", "id", "doc_id", "docid")
TEXT_KEYS = ("text", "contents", "body", "abstract")


class CorpusError(ValueError):
    """A corpus file that cannot be read as documents; the message names the file and line."""


@dataclass(frozen=True)
class Corpus:
    """Documents in file order: ``ids[i]`` is the id of ``texts[i]`` (title and body joined)."""

    ids: list[str]
    texts: list[str]

    def __len__(self) -> int:
        return len(self.ids)


def _pick(record: dict, keys: tuple[str, ...]) -> object:
    for key in keys:
        if key in record:
            return record[key]
    return None


def load_corpus(path: str | Path, *, id_key: str | None = None, text_key: str | None = None) -> Corpus:
    """Read a JSONL corpus. A folder means ``<folder>/corpus.jsonl`` (BEIR layout).

    Each line is an object with an id (``_id``/``id``/``doc_id``/``docid`` or ``id_key``) and a text
    (``text``/``contents``/``body``/``abstract`` or ``text_key``); a ``title``, when present, is prepended.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "corpus.jsonl"
    if not path.is_file():
        raise CorpusError(f"corpus file not found: {path}")
    ids: list[str] = []
    texts: list[str] = []
    seen: set[str] = set()
    with path.open("rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except (ValueError, UnicodeDecodeError) as err:
                raise CorpusError(f"{path}:{line_no}: not valid JSON ({err})") from None
            if not isinstance(record, dict):
                raise CorpusError(f"{path}:{line_no}: expected a JSON object, got {type(record).__name__}")
            doc_id = record.get(id_key) if id_key else _pick(record, ID_KEYS)
            text = record.get(text_key) if text_key else _pick(record, TEXT_KEYS)
            if doc_id is None or text is None:
                raise CorpusError(
                    f"{path}:{line_no}: needs an id ({id_key or '/'.join(ID_KEYS)}) "
                    f"and a text ({text_key or '/'.join(TEXT_KEYS)}); keys present: {sorted(record)}"
                )
            doc_id = str(doc_id)
            if doc_id in seen:
                raise CorpusError(f"{path}:{line_no}: duplicate document id {doc_id!r}")
            seen.add(doc_id)
            title = record.get("title") or ""
            ids.append(doc_id)
            texts.append(f"{title} {text}".strip() if title else str(text))
    if not ids:
        raise CorpusError(f"{path}: no documents")
    return Corpus(ids=ids, texts=texts)
