"""Document texts on disk, read one at a time by id (so indexes never hold the collection in memory)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from deepretrieval.retrievers.corpus import Corpus

TEXTS = "docs.jsonl"
OFFSETS = "docs.offsets.npy"
IDS = "docs.ids.json"


class DocStore:
    """``docs.jsonl`` (one ``{"id", "text"}`` per line) plus a byte-offset table for random access."""

    def __init__(self, folder: Path, ids: list[str], offsets: np.ndarray, digest: str):
        self.folder = folder
        self.ids = ids
        self.digest = digest
        self._offsets = offsets
        self._row = {doc_id: row for row, doc_id in enumerate(ids)}

    @classmethod
    def write(cls, folder: Path, corpus: Corpus) -> DocStore:
        offsets = np.zeros(len(corpus) + 1, dtype=np.int64)
        digest = hashlib.sha256()
        with (folder / TEXTS).open("wb") as handle:
            for row, (doc_id, text) in enumerate(zip(corpus.ids, corpus.texts)):
                line = json.dumps({"id": doc_id, "text": text}, ensure_ascii=False).encode() + b"\n"
                handle.write(line)
                digest.update(line)
                offsets[row + 1] = offsets[row] + len(line)
        np.save(folder / OFFSETS, offsets)
        (folder / IDS).write_text(json.dumps(corpus.ids))
        (folder / "docs.sha256").write_text(digest.hexdigest())
        return cls.open(folder)

    @classmethod
    def open(cls, folder: Path) -> DocStore:
        offsets = np.load(folder / OFFSETS, mmap_mode="r")
        ids = json.loads((folder / IDS).read_text())
        return cls(folder, ids, offsets, (folder / "docs.sha256").read_text().strip())

    def text(self, doc_id: str) -> str:
        row = self._row.get(doc_id)
        if row is None:
            raise KeyError(f"unknown document id {doc_id!r}")
        start, end = int(self._offsets[row]), int(self._offsets[row + 1])
        with (self.folder / TEXTS).open("rb") as handle:
            handle.seek(start)
            return json.loads(handle.read(end - start))["text"]
