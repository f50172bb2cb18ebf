"""Document texts inside an index version, memory-mapped and read one at a time (indexes never hold the
collection in memory, and a rebuild of the folder never pulls the text from under a reader)."""

from __future__ import annotations

import json
import mmap
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import numpy as np

from deepretrieval.retrievers.corpus import Corpus, document_line
from deepretrieval.retrievers.index_store import IndexVersion

TEXTS = "docs.jsonl"  # one document_line per document, in row order
OFFSETS = "docs.offsets.npy"  # int64 [n + 1]: byte offset of every line, then the file size
IDS = "docs.ids.json"  # document ids in row order


class DocStore(Sequence[str]):
    """Indexing by row gives the text of that row; :meth:`text` looks a document up by id."""

    def __init__(self, ids: list[str], offsets: np.ndarray, texts: mmap.mmap):
        self.ids = ids
        self._offsets = offsets
        self._texts = texts

    @staticmethod
    def write(folder: Path, corpus: Corpus) -> None:
        """Write the three files of ``corpus`` into ``folder`` (a version being built)."""
        offsets = np.zeros(len(corpus) + 1, dtype=np.int64)
        with (folder / TEXTS).open("wb") as handle:
            for row, (doc_id, text) in enumerate(zip(corpus.ids, corpus.texts, strict=True)):
                line = document_line(doc_id, text)
                handle.write(line)
                offsets[row + 1] = offsets[row] + len(line)
        np.save(folder / OFFSETS, offsets)
        (folder / IDS).write_text(json.dumps(corpus.ids, ensure_ascii=False), encoding="utf-8")

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
        row = self._row.get(doc_id)
        if row is None:
            raise KeyError(f"unknown document id {doc_id!r} (index has {len(self.ids)} documents)")
        return self[row]

    def close(self) -> None:
        self._texts.close()
