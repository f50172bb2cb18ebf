"""Dense retrieval on a FAISS index: exact inner product by default, HNSW or IVF when asked.

Same embeddings, encoder and lifecycle as :class:`~deepretrieval.retrievers.dense.exact.DenseRetriever` (it
embeds with the same code); only the vectors' store and search differ. Files of an index version (besides
the document store)::

    faiss.index    the FAISS index (``faiss.write_index``): IndexFlatIP, IndexHNSWFlat or IndexIVFFlat,
                   inner-product metric, rows in corpus order

Settings decide the index (``index``, ``hnsw_m``, ``ef_construction``, ``nlist``); search-time knobs are
runtime options of ``load``: ``ef_search`` (HNSW: candidates explored per query) and ``nprobe`` (IVF:
clusters visited per query). Larger values find more of the exact top k, slower.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field

from deepretrieval.retrievers.dense.embedding import DenseSettings, EmbeddingRetriever, check_batch_size
from deepretrieval.retrievers.storage.doc_store import DocStore
from deepretrieval.retrievers.storage.index_store import IndexVersion, load_index

if TYPE_CHECKING:
    import faiss

INDEX = "faiss.index"
TYPES = {"flat": "IndexFlatIP", "hnsw": "IndexHNSWFlat", "ivf": "IndexIVFFlat"}


def _faiss() -> Any:
    try:
        import faiss
    except ImportError as err:
        raise ImportError("the faiss retriever needs faiss: pip install 'deepretrieval[faiss]'") from err
    return faiss


class FaissSettings(DenseSettings):
    """Dense settings plus the FAISS index type: ``flat`` (exact), ``hnsw`` (graph; ``hnsw_m`` links a
    node, ``ef_construction`` candidates while building) or ``ivf`` (``nlist`` k-means clusters, default
    4 x sqrt(documents); needs at least ``nlist`` documents to train on)."""

    index: Literal["flat", "hnsw", "ivf"] = "flat"
    hnsw_m: int = Field(32, ge=2, le=512)
    ef_construction: int = Field(80, ge=1)
    nlist: int | None = Field(None, ge=1)


class FaissRetriever(EmbeddingRetriever):
    """Inner-product search over sentence embeddings on a FAISS index (see the module notes)."""

    kind = "faiss"
    settings_type = FaissSettings
    runtime_options = frozenset({"device", "batch_size", "ef_search", "nprobe", "threads", "verify"})

    def __init__(
        self,
        version: IndexVersion,
        index: faiss.Index,
        docs: DocStore,
        *,
        device: str | None = None,
        batch_size: int = 32,
        ef_search: int = 128,
        nprobe: int = 16,
        threads: int | None = None,
    ) -> None:
        super().__init__(version, docs, device=device, batch_size=batch_size)
        self.index = index
        faiss = _faiss()
        if threads is not None:
            faiss.omp_set_num_threads(threads)
        if isinstance(index, faiss.IndexHNSWFlat):
            index.hnsw.efSearch = ef_search
        elif isinstance(index, faiss.IndexIVFFlat):
            index.nprobe = nprobe

    @property
    def dim(self) -> int:
        return int(self.index.d)

    @classmethod
    def _save_vectors(cls, folder: Path, embeddings: np.ndarray, settings: DenseSettings) -> dict[str, Any]:
        assert isinstance(settings, FaissSettings)
        faiss = _faiss()
        count, dim = embeddings.shape
        if settings.index == "flat":
            index = faiss.IndexFlatIP(dim)
        elif settings.index == "hnsw":
            index = faiss.IndexHNSWFlat(dim, settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = settings.ef_construction
        else:
            nlist = settings.nlist or max(1, int(4 * math.sqrt(count)))
            if nlist > count:
                raise ValueError(f"nlist={nlist} needs at least {nlist} documents to train on, got {count}")
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
            index.train(embeddings)
        index.add(embeddings)
        faiss.write_index(index, str(folder / INDEX))
        return {"faiss": faiss.__version__, "faiss_type": TYPES[settings.index]}

    @classmethod
    def load(
        cls,
        index_dir: str | Path,
        *,
        device: str | None = None,
        batch_size: int = 32,
        ef_search: int = 128,
        nprobe: int = 16,
        threads: int | None = None,
        verify: bool = False,
    ) -> FaissRetriever:
        """Open the published index in ``index_dir`` (the FAISS index is read into memory). ``verify``
        also checks the checksum of every file."""
        check_batch_size(batch_size)
        if ef_search < 1 or nprobe < 1:
            raise ValueError(f"ef_search and nprobe must be >= 1, got {ef_search} and {nprobe}")
        faiss = _faiss()

        def open_files(version: IndexVersion) -> FaissRetriever:
            settings = version.settings(FaissSettings)
            try:
                index = faiss.read_index(str(version.path(INDEX)))
            except RuntimeError:
                raise version.fail(f"{INDEX} is not a readable FAISS index") from None
            dim = version.info.get("dim")
            if (
                type(index).__name__ != TYPES[settings.index]
                or index.metric_type != faiss.METRIC_INNER_PRODUCT
                or index.ntotal != version.documents
                or index.d != dim
            ):
                raise version.fail(
                    f"{INDEX} is a {type(index).__name__} of {index.ntotal} vectors of {index.d} dimensions, "
                    f"expected a {TYPES[settings.index]} of {version.documents} x {dim}"
                )
            return cls(
                version,
                index,
                DocStore.open(version),
                device=device,
                batch_size=batch_size,
                ef_search=ef_search,
                nprobe=nprobe,
                threads=threads,
            )

        return load_index(index_dir, cls.kind, open_files, verify=verify)

    def top_k(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows (-1 where an approximate index found fewer than k) and scores, best first."""
        scores, rows = self.index.search(
            np.ascontiguousarray(vectors, dtype=np.float32), min(k, len(self.ids))
        )
        return rows, scores
