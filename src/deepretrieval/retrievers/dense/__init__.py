"""Dense retrieval over sentence embeddings: one lifecycle and search (``embedding``), two vector stores.

- ``exact``: :class:`DenseRetriever`, exact inner-product top-k with NumPy over memory-mapped embeddings;
- ``faiss_index``: :class:`FaissRetriever`, the same embeddings in a FAISS index (flat, HNSW or IVF);
- ``encoder``: the sentence-transformers model (by name, offline for the packaged default), on torch or
  on ONNX Runtime (``onnx_encoder``, imported only when an onnx backend is chosen).
"""

from deepretrieval.retrievers.dense.embedding import DenseSettings, EmbeddingRetriever
from deepretrieval.retrievers.dense.encoder import DEFAULT_MODEL, load_encoder
from deepretrieval.retrievers.dense.exact import DenseRetriever
from deepretrieval.retrievers.dense.faiss_index import FaissRetriever, FaissSettings

__all__ = [
    "DEFAULT_MODEL",
    "DenseRetriever",
    "DenseSettings",
    "EmbeddingRetriever",
    "FaissRetriever",
    "FaissSettings",
    "load_encoder",
]
