"""Retrievers: one batched ``search(queries, k)`` returning ``Ranking``s over BM25, dense and remote engines.

``open_retriever(kind, ...)`` opens any registered kind (``registry``); index-backed kinds share one
lifecycle (``build`` / ``load``) over atomically published, verified index folders (``storage``).
"""

from deepretrieval.retrievers.base import (
    DateRange,
    Hit,
    IndexedRetriever,
    Ranking,
    Retriever,
    RetrieverSettings,
    SettingsError,
)
from deepretrieval.retrievers.corpus import Corpus, CorpusError, corpus_fingerprint, load_corpus
from deepretrieval.retrievers.opener import open_retriever
from deepretrieval.retrievers.registry import known_kinds, register, retriever_class
from deepretrieval.retrievers.storage.index_store import BadIndexError, IndexMismatchError

__all__ = [
    "BadIndexError",
    "Corpus",
    "CorpusError",
    "DateRange",
    "Hit",
    "IndexMismatchError",
    "IndexedRetriever",
    "Ranking",
    "Retriever",
    "RetrieverSettings",
    "SettingsError",
    "corpus_fingerprint",
    "known_kinds",
    "load_corpus",
    "open_retriever",
    "register",
    "retriever_class",
]
