"""BM25 on ``bm25s`` (sparse matrices, no Java), with Lucene-style defaults and a memory-mapped on-disk index."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import bm25s
import numpy as np
import scipy.sparse
import Stemmer

from deepretrieval.retrievers.base import Ranking
from deepretrieval.retrievers.corpus import Corpus
from deepretrieval.retrievers.doc_store import DocStore

MANIFEST = "deepretrieval_bm25.json"
INDEX_SUBDIR = "bm25s"


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
    """Batched BM25 search over a fixed collection. Build once, save, load memory-mapped."""

    def __init__(
        self, model: bm25s.BM25, doc_ids: list[str], settings: BM25Settings, docs: DocStore, fingerprint: str
    ):
        self._model = model
        self._doc_ids = np.asarray(doc_ids, dtype=object)
        self.settings = settings
        self.docs = docs
        self.fingerprint = fingerprint
        self._stemmer = Stemmer.Stemmer(settings.stemmer) if settings.stemmer else None
        # bm25s keeps precomputed BM25 weights as a term x document CSR matrix (memory-mapped after load).
        # We score a whole batch with ONE sparse product (queries x terms) @ (terms x docs) instead of
        # bm25s.retrieve's per-query Python loop: the reward path scores hundreds of queries at once.
        scores = model.scores
        self._term_doc = scipy.sparse.csr_matrix(
            (scores["data"], scores["indices"], scores["indptr"]),
            shape=(len(scores["indptr"]) - 1, scores["num_docs"]),
        )
        self._vocab: dict[str, int] = model.vocab_dict

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
    def load(cls, index_dir: str | Path, mmap: bool = True) -> BM25Retriever:
        """Open an index written by :meth:`build`; with ``mmap`` the score matrix stays on disk."""
        index_dir = Path(index_dir)
        manifest_path = index_dir / MANIFEST
        if not manifest_path.is_file():
            raise FileNotFoundError(
                f"{index_dir} is not a deepretrieval BM25 index (missing {MANIFEST}); "
                f"build one with `deepretrieval index build --corpus PATH --out {index_dir}`"
            )
        manifest = json.loads(manifest_path.read_text())
        settings = BM25Settings(**manifest["settings"])
        model = bm25s.BM25.load(index_dir / INDEX_SUBDIR, mmap=mmap)
        docs = DocStore.open(index_dir)
        return cls(model, docs.ids, settings, docs, manifest["fingerprint"])

    def search(self, queries: Sequence[str], k: int) -> list[Ranking]:
        """Top-``k`` documents per query, ties broken by collection order. Documents that match no query
        term are not returned, so an empty query, a query of stop words only, or one whose terms occur
        nowhere gets an empty ranking. Repeated query terms count repeatedly (as in Lucene and bm25s)."""
        if not queries:
            return []
        scores = self._query_matrix(queries) @ self._term_doc  # sparse (queries x docs)
        return [
            self._top_k(scores.indices[a:b], scores.data[a:b], k)
            for a, b in zip(scores.indptr[:-1], scores.indptr[1:])
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
        counts = np.ones(len(rows), dtype=np.float32)  # duplicates are summed by the constructor
        return scipy.sparse.csr_matrix((counts, (rows, cols)), shape=(len(queries), self._term_doc.shape[0]))

    def _top_k(self, docs: np.ndarray, values: np.ndarray, k: int) -> Ranking:
        keep = values > 0
        docs, values = docs[keep], values[keep]
        if len(values) > k:
            kth = values[np.argpartition(-values, k - 1)[k - 1]]
            ties_ok = values >= kth
            docs, values = docs[ties_ok], values[ties_ok]
        order = np.lexsort((docs, -values))[:k]
        return Ranking(self._doc_ids[docs[order]].tolist(), values[order])

    def text(self, doc_id: str) -> str:
        return self.docs.text(doc_id)


def _fingerprint(settings: BM25Settings, corpus_digest: str) -> str:
    payload = json.dumps(
        {"kind": "bm25s", "version": bm25s.__version__, "settings": asdict(settings)}, sort_keys=True
    )
    return hashlib.sha256(f"{payload}|{corpus_digest}".encode()).hexdigest()[:16]
