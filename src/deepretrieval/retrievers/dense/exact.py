"""``DenseRetriever``: exact inner-product top-k over sentence embeddings, memory-mapped from disk.

Files of an index version (besides the document store, see ``storage.doc_store``)::

    embeddings.npy     float32 [count, dim], L2-normalised unless built with normalize=False
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from deepretrieval.retrievers.dense.embedding import DenseSettings, EmbeddingRetriever, check_batch_size
from deepretrieval.retrievers.storage.doc_store import DocStore
from deepretrieval.retrievers.storage.index_store import IndexVersion, load_index

EMBEDDINGS = "embeddings.npy"
SCORE_BLOCK = 1 << 24  # floats in one block of the query x document score matrix (64 MiB)


class DenseRetriever(EmbeddingRetriever):
    """Exact inner-product search over sentence embeddings (cosine when normalised), the embeddings
    memory-mapped from ``embeddings.npy``. Equal scores inside the top k: lower row first."""

    kind = "dense"
    settings_type = DenseSettings
    runtime_options = frozenset({"device", "batch_size", "mmap", "verify"})

    def __init__(
        self,
        version: IndexVersion,
        embeddings: np.ndarray,
        docs: DocStore,
        *,
        device: str | None = None,
        batch_size: int = 32,
    ) -> None:
        super().__init__(version, docs, device=device, batch_size=batch_size)
        self.embeddings = embeddings

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1])

    @classmethod
    def _save_vectors(cls, folder: Path, embeddings: np.ndarray, settings: DenseSettings) -> dict[str, Any]:
        np.save(folder / EMBEDDINGS, embeddings)
        return {}

    @classmethod
    def load(
        cls,
        index_dir: str | Path,
        *,
        device: str | None = None,
        batch_size: int = 32,
        mmap: bool = True,
        verify: bool = False,
    ) -> DenseRetriever:
        """Open the published index in ``index_dir``; with ``mmap`` the embeddings stay on disk. ``verify``
        also checks the checksum of every file (reads the whole index)."""
        check_batch_size(batch_size)

        def open_files(version: IndexVersion) -> DenseRetriever:
            embeddings = version.load_array(EMBEDDINGS, mmap_mode="r" if mmap else None)
            dim = version.info.get("dim")
            if embeddings.dtype != np.float32 or embeddings.shape != (version.documents, dim):
                raise version.fail(
                    f"{EMBEDDINGS} holds {embeddings.dtype} {embeddings.shape}, "
                    f"expected float32 {(version.documents, dim)}"
                )
            _check_values(version, embeddings, version.settings(DenseSettings).normalize)
            docs = DocStore.open(version)
            return cls(version, embeddings, docs, device=device, batch_size=batch_size)

        return load_index(index_dir, cls.kind, open_files, verify=verify)

    def top_k(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows and scores of the ``min(k, len(self))`` best documents for every query vector.

        Exact: the full score matrix, a block of queries at a time to bound memory, then
        ``argpartition`` (linear) for the candidates and a sort of only those k."""
        count = len(self.ids)
        k = min(k, count)
        rows = np.empty((len(vectors), k), dtype=np.int64)
        scores = np.empty((len(vectors), k), dtype=np.float32)
        block = max(1, SCORE_BLOCK // count)
        for start in range(0, len(vectors), block):
            stop = start + block
            block_scores = vectors[start:stop] @ self.embeddings.T
            if k < count:
                candidates = np.argpartition(-block_scores, k - 1, axis=1)[:, :k]
            else:
                candidates = np.broadcast_to(np.arange(count), block_scores.shape)
            candidate_scores = np.take_along_axis(block_scores, candidates, axis=1)
            order = np.lexsort((candidates, -candidate_scores), axis=1)
            rows[start:stop] = np.take_along_axis(candidates, order, axis=1)
            scores[start:stop] = np.take_along_axis(candidate_scores, order, axis=1)
        return rows, scores


def _check_values(version: IndexVersion, embeddings: np.ndarray, normalized: bool) -> None:
    """Every value finite, and within [-1, 1] (float32 rounding allowed for) when the vectors are unit
    length: a vectorised min and max over the whole array, the cost of one brute-force search. A flipped
    sign bit only a checksum finds (small files on every load, all with ``verify``)."""
    if not embeddings.size:
        return
    low, high = float(embeddings.min()), float(embeddings.max())
    limit = 1 + 1e-3 if normalized else float(np.finfo(np.float32).max)
    if not (-limit <= low and high <= limit):  # NaN fails both
        shape = "unit-length vectors" if normalized else "finite vectors"
        raise version.fail(
            f"{EMBEDDINGS} holds values that {shape} cannot have (min {low:.4g}, max {high:.4g})"
        )
