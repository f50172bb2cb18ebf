"""Document texts on disk, read one at a time (so indexes never hold the collection in memory)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np

from deepretrieval.retrievers.corpus import Corpus

TEXTS = "docs.jsonl"
OFFSETS = "docs.offsets.npy"
IDS = "docs.ids.json"
DIGEST = "docs.sha256"


@contextlib.contextmanager
def atomic_write(path: Path) -> Iterator[BinaryIO]:
    """Write to ``path`` through a temporary file renamed at the end, so readers (and memory maps of
    the previous file) never see a half-written one."""
    partial = path.with_name(path.name + ".partial")
    try:
        with partial.open("wb") as handle:
            yield handle
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


class DocStore(Sequence[str]):
    """``docs.jsonl`` (one ``{"id", "text"}`` per line) plus a byte-offset table for random access.
    Indexing by row gives the text of that row; :meth:`text` looks a document up by id."""

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
        with atomic_write(folder / TEXTS) as handle:
            for row, (doc_id, text) in enumerate(zip(corpus.ids, corpus.texts, strict=True)):
                line = json.dumps({"id": doc_id, "text": text}, ensure_ascii=False).encode() + b"\n"
                handle.write(line)
                digest.update(line)
                offsets[row + 1] = offsets[row] + len(line)
        with atomic_write(folder / OFFSETS) as handle:
            np.save(handle, offsets)
        with atomic_write(folder / IDS) as handle:
            handle.write(json.dumps(corpus.ids).encode())
        with atomic_write(folder / DIGEST) as handle:
            handle.write(digest.hexdigest().encode())
        return cls.open(folder)

    @classmethod
    def open(cls, folder: Path) -> DocStore:
        for name in (TEXTS, OFFSETS, IDS, DIGEST):
            if not (folder / name).is_file():
                raise FileNotFoundError(f"{folder}: missing {name}; not a complete document store")
        offsets = np.load(folder / OFFSETS, mmap_mode="r")
        ids = json.loads((folder / IDS).read_text())
        if len(offsets) != len(ids) + 1:
            raise ValueError(f"{folder}: {OFFSETS} and {IDS} disagree on the number of documents")
        return cls(folder, ids, offsets, (folder / DIGEST).read_text().strip())

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, row):  # type: ignore[override]
        if isinstance(row, slice):
            return [self[i] for i in range(*row.indices(len(self)))]
        start, end = int(self._offsets[row]), int(self._offsets[row + 1])
        with (self.folder / TEXTS).open("rb") as handle:
            handle.seek(start)
            return json.loads(handle.read(end - start))["text"]

    def __iter__(self) -> Iterator[str]:
        with (self.folder / TEXTS).open("rb") as handle:
            for line in handle:
                yield json.loads(line)["text"]

    def text(self, doc_id: str) -> str:
        row = self._row.get(doc_id)
        if row is None:
            raise KeyError(f"unknown document id {doc_id!r}")
        return self[row]
