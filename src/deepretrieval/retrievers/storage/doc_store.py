"""Document texts inside an index version, memory-mapped and read on demand (indexes never hold the
collection in memory, and a rebuild of the folder never pulls the text from under a reader)."""

from __future__ import annotations

import json
import mmap
from collections.abc import Iterable, Sequence
from functools import cached_property
from pathlib import Path
from typing import BinaryIO, Self

import numpy as np

from deepretrieval.retrievers.corpus import document_line
from deepretrieval.retrievers.storage.index_store import IndexVersion

TEXTS = "docs.jsonl"  # one document_line per document, in row order
OFFSETS = "docs.offsets.npy"  # int64 [n + 1]: byte offset of every line, then the file size
IDS = "docs.ids.json"  # document ids in row order


class DocStoreWriter:
    """Writes the three files of a store into ``folder`` (a version being built) a batch at a time, so a
    collection of any size streams through: ``with DocStoreWriter(folder) as store: store.add(ids, texts)``.
    Memory: 8 bytes a document (its offset) until the end."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.count = 0
        self._size = 0
        self._ends: list[np.ndarray] = []
        self._texts: BinaryIO | None = None
        self._ids: BinaryIO | None = None

    def __enter__(self) -> Self:
        self._texts = (self.folder / TEXTS).open("wb")
        self._ids = (self.folder / IDS).open("wb")
        self._ids.write(b"[")
        return self

    def add(self, ids: Sequence[str], texts: Sequence[str]) -> None:
        assert self._texts is not None and self._ids is not None, "use DocStoreWriter in a with block"
        lines = [document_line(doc_id, text) for doc_id, text in zip(ids, texts, strict=True)]
        self._texts.write(b"".join(lines))
        ends = self._size + np.cumsum(np.fromiter(map(len, lines), dtype=np.int64, count=len(lines)))
        if len(ends):
            self._size = int(ends[-1])
            self._ends.append(ends)
        separator = b", " if self.count else b""  # the bytes json.dumps writes for the whole list
        self._ids.write(separator + ", ".join(json.dumps(i, ensure_ascii=False) for i in ids).encode())
        self.count += len(lines)

    def __exit__(self, *exc: object) -> None:
        assert self._texts is not None and self._ids is not None
        self._ids.write(b"]")
        self._ids.close()
        self._texts.close()
        if exc[0] is None:
            np.save(self.folder / OFFSETS, np.concatenate([np.zeros(1, dtype=np.int64), *self._ends]))


class DocStore(Sequence[str]):
    """Indexing by row gives the text of that row; :meth:`text` looks a document up by id, :meth:`texts`
    reads many at once."""

    def __init__(self, ids: list[str], offsets: np.ndarray, texts: mmap.mmap):
        self.ids = ids
        self._offsets = offsets
        self._texts = texts

    @classmethod
    def open(cls, version: IndexVersion) -> DocStore:
        """Open and check the store of ``version``: ids (checksummed), offsets consistent with them and
        with the text file's size, so every row reads exactly its own line."""
        count = version.documents
        ids = version.read_json(IDS)
        if not isinstance(ids, list) or len(ids) != count or not all(isinstance(i, str) for i in ids):
            raise version.fail(f"{IDS} does not list the {count} document ids")
        offsets = version.load_array(OFFSETS, mmap_mode="r")
        size = version.manifest["files"][TEXTS]["size"]
        if (
            offsets.dtype != np.int64
            or offsets.shape != (count + 1,)
            or offsets[0] != 0
            or offsets[-1] != size
            or not bool(np.all(offsets[1:] > offsets[:-1]))
        ):
            raise version.fail(f"{OFFSETS} does not match {IDS} and {TEXTS}")
        with version.path(TEXTS).open("rb") as handle:
            texts = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        return cls(ids, offsets, texts)

    @cached_property
    def _row(self) -> dict[str, int]:
        return {doc_id: row for row, doc_id in enumerate(self.ids)}

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, row):  # type: ignore[override]
        if isinstance(row, slice):
            return [self[i] for i in range(*row.indices(len(self)))]
        if row < 0:
            row += len(self)
        if not 0 <= row < len(self):
            raise IndexError(f"row {row} out of range for {len(self)} documents")
        start, end = int(self._offsets[row]), int(self._offsets[row + 1])
        return json.loads(self._texts[start:end])["text"]

    def text(self, doc_id: str) -> str:
        return self[self.row_of(doc_id)]

    def row_of(self, doc_id: str) -> int:
        row = self._row.get(doc_id)
        if row is None:
            raise KeyError(f"unknown document id {doc_id!r} (index has {len(self.ids)} documents)")
        return row

    def texts(self, keys: Iterable[str] | Iterable[int]) -> list[str]:
        """The texts of many documents, given by id or by row, in the order given. The lines are read in
        file order (offsets sorted), one pass over the map instead of a jump per document."""
        keys = list(keys)
        if not keys:
            return []
        if isinstance(keys[0], str):
            rows = np.fromiter(map(self.row_of, keys), dtype=np.int64, count=len(keys))
        else:
            rows = np.asarray(keys, dtype=np.int64)
            rows = np.where(rows < 0, rows + len(self), rows)
            if rows.min() < 0 or rows.max() >= len(self):
                bad = int(rows[(rows < 0) | (rows >= len(self))][0])
                raise IndexError(f"row {bad} out of range for {len(self)} documents")
        order = np.argsort(rows, kind="stable")
        found: list[str] = [""] * len(rows)
        starts, ends = self._offsets[rows[order]].tolist(), self._offsets[rows[order] + 1].tolist()
        for slot, start, end in zip(order.tolist(), starts, ends):
            found[slot] = json.loads(self._texts[start:end])["text"]
        return found

    def close(self) -> None:
        self._texts.close()
