"""BM25 on ``bm25s`` (sparse matrices, no Java), with Lucene-style defaults and a memory-mapped on-disk index."""

from __future__ import annotations

import hashlib
import json
import mmap
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import bm25s
import numpy as np
import scipy.sparse
import Stemmer
from sparse_dot_topn import sp_matmul_topn

from deepretrieval.retrievers.base import Ranking
from deepretrieval.retrievers.corpus import Corpus
from deepretrieval.retrievers.doc_store import DocStore

MANIFEST = "deepretrieval_bm25.json"
INDEX_SUBDIR = "bm25s"
MIN_QUERIES_PER_THREAD = 16


@dataclass(frozen=True)
class BM25Settings:
    """Scoring and analysis settings. Defaults are Anserini/Lucene's BM25 (k1=0.9, b=0.4) with
    English Snowball stemming and English stop words."""

    k1: float = 0.9
    b: float = 0.4
    method: Literal["lucene", "robertson", "atire", "bm25l", "bm25+"] = "lucene"
    stemmer: str | None = "english"
    stopwords: str | None = "en"

    def __post_init__(self) -> None:
        if self.k1 < 0 or not 0 <= self.b <= 1:
            raise ValueError(f"BM25 needs k1 >= 0 and 0 <= b <= 1, got k1={self.k1}, b={self.b}")
        if self.stemmer is not None and self.stemmer not in Stemmer.algorithms():
            raise ValueError(
                f"unknown stemmer {self.stemmer!r}; available: {', '.join(Stemmer.algorithms())}"
            )


class BM25Retriever:
    """Batched BM25 search over a fixed collection. Build once, save, load memory-mapped.

    bm25s precomputes BM25 weights as a term x document sparse matrix. Instead of bm25s.retrieve's
    per-query loop we score a whole batch with ONE sparse product (queries x terms) @ (terms x docs)
    fused with top-k selection (``sparse_dot_topn``, multi-threaded C++): the reward path scores
    hundreds of queries at once, and this is what keeps it cheaper than calling bm25s per query.
    """

    def __init__(
        self,
        term_doc: scipy.sparse.csr_matrix,
        vocab: dict[str, int],
        doc_ids: list[str],
        settings: BM25Settings,
        docs: DocStore,
        fingerprint: str,
        threads: int | None = None,
    ):
        self._term_doc = term_doc
        self._vocab = vocab
        self._doc_ids = np.asarray(doc_ids, dtype=object)
        self.settings = settings
        self.docs = docs
        self.fingerprint = fingerprint
        self.threads = threads or os.cpu_count() or 1
        self._stemmer = Stemmer.Stemmer(settings.stemmer) if settings.stemmer else None

    def __len__(self) -> int:
        return len(self._doc_ids)

    @classmethod
    def build(
        cls,
        corpus: Corpus,
        out_dir: str | Path,
        settings: BM25Settings | None = None,
        show_progress: bool = True,
    ) -> BM25Retriever:
        """Index ``corpus`` and write the index to ``out_dir`` (created if missing)."""
        settings = settings or BM25Settings()
        stemmer = Stemmer.Stemmer(settings.stemmer) if settings.stemmer else None
        tokens = bm25s.tokenize(
            corpus.texts, stopwords=settings.stopwords or [], stemmer=stemmer, show_progress=show_progress
        )
        model = bm25s.BM25(k1=settings.k1, b=settings.b, method=settings.method)
        model.index(tokens, show_progress=show_progress)
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        model.save(out_dir / INDEX_SUBDIR)
        docs = DocStore.write(out_dir, corpus)
        fingerprint = _fingerprint(settings, docs.digest)
        manifest = {"settings": asdict(settings), "fingerprint": fingerprint, "documents": len(corpus)}
        (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2))
        return cls.load(out_dir)

    @classmethod
    def load(cls, index_dir: str | Path, mmap: bool = True, threads: int | None = None) -> BM25Retriever:
        """Open an index written by :meth:`build`. With ``mmap`` the score matrix stays on disk, mapped
        copy-on-write (never written: the C++ scorer only needs writable-typed buffers)."""
        index_dir = Path(index_dir)
        manifest_path = index_dir / MANIFEST
        if not manifest_path.is_file():
            raise FileNotFoundError(
                f"{index_dir} is not a deepretrieval BM25 index (missing {MANIFEST}); "
                f"build one with `deepretrieval index build --corpus PATH --out {index_dir}`"
            )
        manifest = json.loads(manifest_path.read_text())
        settings = BM25Settings(**manifest["settings"])
        arrays = index_dir / INDEX_SUBDIR
        mode = "c" if mmap else None
        data = np.load(arrays / "data.csc.index.npy", mmap_mode=mode)
        indices = np.load(arrays / "indices.csc.index.npy", mmap_mode=mode)
        indptr = np.load(arrays / "indptr.csc.index.npy")
        index_dtype = (
            np.int32 if len(data) < np.iinfo(np.int32).max else np.int64
        )  # the scorer needs one width
        vocab = json.loads((arrays / "vocab.index.json").read_text())
        params = json.loads((arrays / "params.index.json").read_text())
        term_doc = scipy.sparse.csr_matrix(
            (data, indices.astype(index_dtype, copy=False), indptr.astype(index_dtype)),
            shape=(len(indptr) - 1, params["num_docs"]),
            copy=False,
        )
        docs = DocStore.open(index_dir)
        return cls(term_doc, vocab, docs.ids, settings, docs, manifest["fingerprint"], threads)

    @property
    def memory_mapped(self) -> bool:
        """Whether the score matrix is read from disk on demand (not held in memory)."""
        base = self._term_doc.data
        while base is not None and not isinstance(base, (np.memmap, mmap.mmap)):
            base = getattr(base, "base", None)
        return base is not None

    def search(self, queries: Sequence[str], k: int) -> list[Ranking]:
        """Top-``k`` documents per query (equal scores in a deterministic, unspecified order). Documents
        that match no query term are not returned, so an empty query, a query of stop words only, or one
        whose terms occur nowhere gets an empty ranking. Repeated query terms count repeatedly (as in
        Lucene and bm25s)."""
        if not queries:
            return []
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        threads = (
            self.threads if len(queries) >= MIN_QUERIES_PER_THREAD * 2 else 1
        )  # threads cost more than tiny batches
        top = sp_matmul_topn(
            self._query_matrix(queries), self._term_doc, top_n=k, threshold=0.0, sort=True, n_threads=threads
        )
        return [
            Ranking(self._doc_ids[top.indices[a:b]].tolist(), top.data[a:b])
            for a, b in zip(top.indptr[:-1], top.indptr[1:])
        ]

    def _query_matrix(self, queries: Sequence[str]) -> scipy.sparse.csr_matrix:
        tokens = bm25s.tokenize(
            list(queries),
            stopwords=self.settings.stopwords or [],
            stemmer=self._stemmer,
            return_ids=False,
            show_progress=False,
        )
        rows, cols = [], []
        for row, words in enumerate(tokens):
            for word in words:
                col = self._vocab.get(word)
                if col is not None:
                    rows.append(row)
                    cols.append(col)
        counts = np.ones(len(rows), dtype=np.float32)
        matrix = scipy.sparse.csr_matrix(
            (counts, (rows, cols)), shape=(len(queries), self._term_doc.shape[0])
        )
        matrix.sum_duplicates()  # a repeated term weighs its count
        dtype = self._term_doc.indptr.dtype
        return scipy.sparse.csr_matrix(
            (matrix.data, matrix.indices.astype(dtype), matrix.indptr.astype(dtype)), shape=matrix.shape
        )

    def text(self, doc_id: str) -> str:
        return self.docs.text(doc_id)


def _fingerprint(settings: BM25Settings, corpus_digest: str) -> str:
    payload = json.dumps(
        {"kind": "bm25s", "version": bm25s.__version__, "settings": asdict(settings)}, sort_keys=True
    )
    return hashlib.sha256(f"{payload}|{corpus_digest}".encode()).hexdigest()[:16]
