"""BM25 over a sparse term x document matrix (no Java), Lucene's defaults, memory-mapped on disk.

What comes from ``bm25s``: only the text analysis, ``bm25s.tokenize`` (lower-casing, words of two or more
word characters, its stop-word lists by language code, and the PyStemmer Snowball stemmer it is handed),
the same for indexing and search; its version is recorded in the index. What is computed here: the BM25
weights of every (term, document) pair, with bm25s's formulas for its five variants but a batch of
documents at a time (``build``, bounded memory for any collection), and the batched scoring: one sparse
product of all queries with the matrix, fused with top-k selection by ``sparse_dot_topn`` (``retriever``).

Modules: ``settings`` (:class:`BM25Settings`, the tokenizer), ``build`` (writing the index files),
``retriever`` (:class:`BM25Retriever`).
"""

from deepretrieval.retrievers.bm25.retriever import BM25Retriever
from deepretrieval.retrievers.bm25.settings import BM25Settings

__all__ = ["BM25Retriever", "BM25Settings"]
