"""``BM25Retriever``: batched BM25 search over a memory-mapped index (``build`` writes it, see ``build``).

Files of an index version (besides the document store, see ``storage.doc_store``)::

    bm25.data.npy      float32 [nnz]      BM25 weight of every (term, document) pair, term-major
    bm25.indices.npy   int32/64 [nnz]     the document row of every weight
    bm25.indptr.npy    int32/64 [terms+1] where each term's weights start
    bm25.vocab.json    {term: row}        analysed term -> row of the term x document matrix
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import bm25s
import numpy as np
import scipy.sparse
from sparse_dot_topn import sp_matmul_topn

from deepretrieval.retrievers.base import DateRange, IndexedRetriever, Ranking, refuse_dates
from deepretrieval.retrievers.bm25.build import (
    DATA,
    INDICES,
    INDPTR,
    VOCAB,
    weight_ceiling,
    write_index_files,
)
from deepretrieval.retrievers.bm25.settings import Analyzer, BM25Settings
from deepretrieval.retrievers.corpus import Corpus, CorpusFile
from deepretrieval.retrievers.storage.doc_store import DocStore
from deepretrieval.retrievers.storage.index_store import IndexVersion, IndexWriter, load_index

MIN_QUERIES_PER_THREAD = 16


class BM25Retriever(IndexedRetriever):
    """Batched BM25 search over a fixed collection: :meth:`build` once, :meth:`load` memory-mapped.

    The index holds the BM25 weights as a term x document sparse matrix. Instead of bm25s.retrieve's
    per-query loop we score a whole batch with ONE sparse product (queries x terms) @ (terms x docs)
    fused with top-k selection (``sparse_dot_topn``, multi-threaded C++): the reward path scores
    hundreds of queries at once, and this is what keeps it cheaper than calling bm25s per query.
    """

    kind = "bm25"
    settings_type = BM25Settings
    streams_corpus = True
    runtime_options = frozenset({"threads", "mmap", "verify"})
    local_analyzer = True

    def __init__(
        self,
        version: IndexVersion,
        term_doc: scipy.sparse.csr_matrix,
        vocab: dict[str, int],
        docs: DocStore,
        threads: int | None = None,
    ):
        self.index_dir = version.root
        self.settings = version.settings(BM25Settings)
        self.fingerprint: str = version.manifest["fingerprint"]
        self.corpus_fingerprint: str = version.manifest["corpus"]["fingerprint"]
        self.docs = docs
        self.threads = threads or os.cpu_count() or 1
        self._term_doc = term_doc
        self._vocab = vocab
        self._doc_ids = np.asarray(docs.ids, dtype=object)
        self._tokenize = Analyzer(self.settings)

    def __len__(self) -> int:
        return len(self._doc_ids)

    @classmethod
    def build(
        cls,
        corpus: Corpus | CorpusFile,
        index_dir: str | Path,
        settings: BM25Settings | None = None,
        *,
        show_progress: bool = True,
        threads: int | None = None,
        mmap: bool = True,
        verify: bool = False,
    ) -> BM25Retriever:
        """Index ``corpus`` (in memory, or a :class:`CorpusFile` streamed in batches), publish the index
        in ``index_dir`` (see ``storage.index_store``) and load it. Memory stays bounded whatever the collection's
        size: see ``bm25.build``."""
        settings = settings or BM25Settings()
        writer = IndexWriter(index_dir, cls.kind)
        with writer:
            terms = write_index_files(corpus, writer.folder, settings, show_progress=show_progress)
            writer.publish(
                corpus,
                settings=settings.model_dump(),
                fingerprint=_fingerprint(settings, corpus.fingerprint),
                info={"bm25s": bm25s.__version__, "terms": terms},
            )
            return cls.load(index_dir, threads=threads, mmap=mmap, verify=verify)

    @classmethod
    def load(
        cls, index_dir: str | Path, *, threads: int | None = None, mmap: bool = True, verify: bool = False
    ) -> BM25Retriever:
        """Open the published index in ``index_dir``. With ``mmap`` the score matrix stays on disk, mapped
        copy-on-write (never written: the C++ scorer only needs writable-typed buffers). ``verify`` also
        checks the checksum of every file (reads the whole index)."""

        def open_files(version: IndexVersion) -> BM25Retriever:
            term_doc, vocab = _open_matrix(version, "c" if mmap else None)
            return cls(version, term_doc, vocab, DocStore.open(version), threads)

        return load_index(index_dir, cls.kind, open_files, verify=verify)

    @property
    def memory_mapped(self) -> bool:
        """Whether the score matrix is read from disk on demand (not held in memory)."""
        base = self._term_doc.data
        while base is not None and not isinstance(base, (np.memmap, mmap.mmap)):
            base = getattr(base, "base", None)
        return base is not None

    def search(
        self, queries: Sequence[str], k: int, *, dates: Sequence[DateRange | None] | None = None
    ) -> list[Ranking]:
        """Top-``k`` documents per query (equal scores in a deterministic, unspecified order). Documents
        that match no query term are not returned, so an empty query, a query of stop words only, or one
        whose terms occur nowhere gets an empty ranking. Repeated query terms count repeatedly (as in
        Lucene and bm25s)."""
        refuse_dates(self.kind, queries, dates)
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

    def analyze(self, text: str) -> list[str]:
        """The analysed terms of ``text`` (lower-cased, stop words dropped, stemmed), in order with
        repeats; a term absent from the collection is kept but scores nothing."""
        return self._tokenize([text])[0]

    def analyze_many(self, texts: Sequence[str]) -> list[list[str]]:
        """The analysed terms of every text, in one pass (each distinct word stemmed once)."""
        return self._tokenize(texts)

    @classmethod
    def analyzer(cls, settings: BM25Settings) -> Callable[[Sequence[str]], list[list[str]]]:
        """``analyze_many`` of any index built with ``settings``, without the index: a remote client (see
        ``retrievers.web.remote``) analyses text locally, exactly as the served index does."""
        return Analyzer(settings)

    def _query_matrix(self, queries: Sequence[str]) -> scipy.sparse.csr_matrix:
        rows, cols = [], []
        for row, words in enumerate(self._tokenize(list(queries))):
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

    def texts(self, doc_ids: Sequence[str]) -> list[str]:
        """The texts of many documents, read from the document store in file order."""
        return self.docs.texts(doc_ids)

    def close(self) -> None:
        self.docs.close()


def _open_matrix(version: IndexVersion, mmap_mode: str | None) -> tuple[scipy.sparse.csr_matrix, dict]:
    """The term x document matrix of ``version``, checked so the scorer can never read out of bounds."""
    data = version.load_array(DATA, mmap_mode=mmap_mode)
    indices = version.load_array(INDICES, mmap_mode=mmap_mode)
    indptr = version.load_array(INDPTR, mmap_mode=None)
    vocab = version.read_json(VOCAB)
    count = version.documents
    if (
        data.dtype != np.float32
        or indices.dtype not in (np.int32, np.int64)
        or indptr.dtype != indices.dtype
        or data.ndim != 1
        or indices.shape != data.shape
        or not isinstance(vocab, dict)
        or indptr.shape != (len(vocab) + 1,)
    ):
        raise version.fail("the score matrix arrays do not fit together")
    if len(indptr) and (indptr[0] != 0 or indptr[-1] != len(data) or np.any(indptr[1:] < indptr[:-1])):
        raise version.fail(f"{INDPTR} is not a valid row index")
    if len(indices) and (int(indices.min()) < 0 or int(indices.max()) >= count):
        raise version.fail(f"{INDICES} holds document rows outside 0..{count - 1}")
    _check_weights(version, data, weight_ceiling(version.settings(BM25Settings), count))
    term_doc = scipy.sparse.csr_matrix((data, indices, indptr), shape=(len(vocab), count), copy=False)
    return term_doc, vocab


def _check_weights(version: IndexVersion, data: np.ndarray, ceiling: float) -> None:
    """Every weight finite and in [0, ceiling], at least one above 0: a vectorised pass over the whole
    array (about the cost of the row-id check above; a sampled check would miss the few flipped values
    that matter). A flipped sign bit or high exponent bit is out of these bounds; smaller changes only a
    checksum finds (small files on every load, all with ``verify``)."""
    if not len(data):
        return
    low, high = float(data.min()), float(data.max())
    if not (low >= 0 and 0 < high <= ceiling):  # NaN fails every comparison
        bad = int(np.count_nonzero(~((data >= 0) & (data <= ceiling))))
        raise version.fail(
            f"{DATA} holds {bad} weights outside [0, {ceiling:.4g}] (min {low:.4g}, max {high:.4g})"
            if bad
            else f"{DATA} holds no weight above 0"
        )


def _fingerprint(settings: BM25Settings, corpus_fingerprint: str) -> str:
    payload = json.dumps(
        {"kind": "bm25s", "version": bm25s.__version__, "settings": settings.model_dump()}, sort_keys=True
    )
    return hashlib.sha256(f"{payload}|{corpus_fingerprint}".encode()).hexdigest()[:16]
