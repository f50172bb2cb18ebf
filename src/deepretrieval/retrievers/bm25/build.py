"""The BM25 term x document score matrix of a collection of any size, built in bounded memory.

``bm25s.BM25.index`` needs every document's token list as Python objects at once: tens of GB for DPR's
21M Wikipedia passages. This module computes the same matrix (equal to bm25s's to float rounding, checked
by ``tests/test_streaming_index.py``) a batch of documents at a time, with bm25s still doing the analysis:

1. stream: tokenize a batch with ``bm25s.tokenize``, count its (term, document) pairs with numpy, spill
   them to disk, append the documents to the document store; the vocabulary (one dict of terms),
   document frequencies and lengths are the only things that grow, by a few bytes a document;
2. number the terms in sorted order (term ids never depend on the order of the collection or on
   ``PYTHONHASHSEED``), then re-sort every spilled batch by term number;
3. merge: for one slice of the term numbers at a time (about ``MERGE_PAIRS`` pairs), gather the slices of
   every batch, weight them with BM25 and append them to the final arrays, written sequentially.

Memory: one batch of token lists, one slice of pairs, the vocabulary, and 16 bytes a document.
"""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path
from typing import BinaryIO, Self

import bm25s
import numpy as np
from tqdm.auto import tqdm

from deepretrieval.retrievers.bm25.settings import BM25Settings, stemmer_of
from deepretrieval.retrievers.corpus import Corpus, CorpusFile
from deepretrieval.retrievers.storage.doc_store import DocStoreWriter

DATA, INDICES, INDPTR, VOCAB = "bm25.data.npy", "bm25.indices.npy", "bm25.indptr.npy", "bm25.vocab.json"
BATCH_DOCS = 20_000  # documents tokenized at once (~100 MB of token lists at 100 words a document)
MERGE_PAIRS = 1 << 23  # (term, document) pairs weighted at once (~400 MB of temporaries)
SPILL = "spill"  # folder of the spilled batches inside the version being built (removed before publishing)


def write_index_files(
    corpus: Corpus | CorpusFile, folder: Path, settings: BM25Settings, *, show_progress: bool = True
) -> int:
    """Write the BM25 matrix files and the document store of ``corpus`` into ``folder`` (a version being
    built); returns the number of terms. Raises ``ValueError`` for a collection with no term to index."""
    spill = folder / SPILL
    spill.mkdir()
    with DocStoreWriter(folder) as store:
        counted = _count_pairs(corpus, store, settings, spill, show_progress)
    if not counted.terms:
        raise ValueError(
            f"corpus {corpus.source or f'of {len(corpus)} documents'} has no term to index: every "
            f"document is empty or stop words only (stopwords={settings.stopwords!r})"
        )
    names = sorted(counted.terms)
    rank = np.empty(len(names), dtype=np.int64)  # provisional term id -> position in sorted order
    rank[np.fromiter((counted.terms[name] for name in names), dtype=np.int64, count=len(names))] = np.arange(
        len(names)
    )
    del counted.terms
    _write_vocabulary(folder / VOCAB, names)
    del names
    df = np.zeros(len(rank), dtype=np.int64)
    df[rank] = counted.df
    indptr = np.concatenate([np.zeros(1, dtype=np.int64), np.cumsum(df)])
    slices = _slices(indptr)
    cuts = [_sort_batch(path, rank, slices) for path in counted.batches]
    lengths = np.concatenate(counted.lengths)
    weights = _Weights(settings, df, lengths)
    width = np.int32 if indptr[-1] < np.iinfo(np.int32).max else np.int64  # the scorer needs one width
    np.save(folder / INDPTR, indptr.astype(width))
    ceiling, highest = weight_ceiling(settings, len(lengths)), 0.0
    with (
        _NpyAppender(folder / DATA, np.float32, int(indptr[-1])) as data,
        _NpyAppender(folder / INDICES, width, int(indptr[-1])) as indices,
    ):
        steps = tqdm(range(len(slices) - 1), desc="BM25 merge", disable=not show_progress, leave=False)
        for part in steps:
            terms, docs, tfs = _gather(counted.batches, cuts, part)
            values = weights(terms, docs, tfs)
            highest = max(highest, _checked(values, ceiling, settings))
            data.append(values)
            indices.append(docs.astype(width))
    if highest == 0:
        raise ValueError(
            f"every BM25 weight is 0 with {_described(settings)} over {len(lengths)} documents: no search "
            "could match; choose another method or k1"
        )
    shutil.rmtree(spill)
    return len(rank)


def weight_ceiling(settings: BM25Settings, documents: int) -> float:
    """The largest weight BM25 with ``settings`` can give in a collection of ``documents``: the idf of a
    term found in one document times the limit of the tf part (1 for lucene and robertson, k1 + 1 for
    the others), with room for float32 rounding. Every weight also is >= 0."""
    idf = float(_idf(settings.method, np.ones(1), float(documents))[0])
    limit = 1.0 if settings.method in ("lucene", "robertson") else settings.k1 + 1
    return idf * limit * (1 + 1e-5)


def _checked(values: np.ndarray, ceiling: float, settings: BM25Settings) -> float:
    """The largest of ``values``, after checking every one is a finite weight in [0, ceiling]."""
    if not len(values):
        return 0.0
    low, high = float(values.min()), float(values.max())
    if not (low >= 0 and high <= ceiling):  # NaN fails both
        raise ValueError(
            f"{_described(settings)} gives BM25 weights outside [0, {ceiling:.4g}] (min {low:.4g}, max "
            f"{high:.4g}): these settings cannot make a usable index; choose k1 and b nearer the defaults"
        )
    return high


def _described(settings: BM25Settings) -> str:
    return f"k1={settings.k1:g}, b={settings.b:g}, method={settings.method}"


class _Counted:
    """What streaming the collection leaves: the vocabulary (term -> provisional id), document
    frequencies by provisional id, document lengths, and the spilled batches."""

    def __init__(self) -> None:
        self.terms: dict[str, int] = {}
        self.df = np.zeros(0, dtype=np.int64)
        self.lengths: list[np.ndarray] = []
        self.batches: list[Path] = []


def _count_pairs(
    corpus: Corpus | CorpusFile, store: DocStoreWriter, settings: BM25Settings, spill: Path, progress: bool
) -> _Counted:
    counted = _Counted()
    stemmer = stemmer_of(settings)
    first = 0
    # closed (its line cleared) on an error too, so the one-line error starts its own line
    with tqdm(desc="BM25 index", unit=" docs", disable=not progress, leave=False) as bar:
        for ids, texts in corpus.batches(BATCH_DOCS):
            store.add(ids, texts)
            tokens = bm25s.tokenize(
                texts, stopwords=settings.stopwords or [], stemmer=stemmer, show_progress=False
            )
            local = np.empty(len(tokens.vocab), dtype=np.int64)  # the batch's term ids -> provisional ids
            for term, local_id in tokens.vocab.items():
                local[local_id] = counted.terms.setdefault(term, len(counted.terms))
            lengths = np.fromiter(map(len, tokens.ids), dtype=np.int64, count=len(tokens.ids))
            flat = np.fromiter(
                itertools.chain.from_iterable(tokens.ids), dtype=np.int64, count=int(lengths.sum())
            )
            pairs, tf = np.unique(
                local[flat] * len(ids) + np.repeat(np.arange(len(ids)), lengths), return_counts=True
            )
            terms, docs = np.divmod(pairs, len(ids))
            path = spill / f"{len(counted.batches):06d}"
            _save_batch(path, terms, docs + first, tf)
            counted.batches.append(path)
            counted.df = np.concatenate(
                [counted.df, np.zeros(len(counted.terms) - len(counted.df), np.int64)]
            )
            counted.df += np.bincount(terms, minlength=len(counted.terms))
            counted.lengths.append(lengths)
            first += len(ids)
            bar.update(len(ids))
    return counted


def _save_batch(path: Path, terms: np.ndarray, docs: np.ndarray, tf: np.ndarray) -> None:
    """A batch's pairs as three raw files (read back by offset, never memory-mapped)."""
    terms.astype(np.int64).tofile(path.with_suffix(".terms"))
    docs.astype(np.int64).tofile(path.with_suffix(".docs"))
    tf.astype(np.int32).tofile(path.with_suffix(".tf"))


def _slices(indptr: np.ndarray) -> np.ndarray:
    """Boundaries of runs of consecutive term numbers holding about ``MERGE_PAIRS`` pairs each."""
    bounds, start, terms = [0], 0, len(indptr) - 1
    while start < terms:
        stop = int(np.searchsorted(indptr, indptr[start] + MERGE_PAIRS, side="right")) - 1
        start = max(stop, start + 1)
        bounds.append(min(start, terms))
    return np.asarray(bounds, dtype=np.int64)


def _sort_batch(path: Path, rank: np.ndarray, slices: np.ndarray) -> np.ndarray:
    """Renumber a spilled batch's terms in sorted order and sort it by them (stable: documents stay in
    increasing order within a term); returns where each slice of term numbers starts in it."""
    terms = rank[np.fromfile(path.with_suffix(".terms"), dtype=np.int64)]
    order = np.argsort(terms, kind="stable")
    terms = terms[order]
    terms.tofile(path.with_suffix(".terms"))
    np.fromfile(path.with_suffix(".docs"), dtype=np.int64)[order].tofile(path.with_suffix(".docs"))
    np.fromfile(path.with_suffix(".tf"), dtype=np.int32)[order].tofile(path.with_suffix(".tf"))
    return np.searchsorted(terms, slices)


def _gather(batches: list[Path], cuts: list[np.ndarray], part: int) -> tuple[np.ndarray, ...]:
    """The pairs of slice ``part`` from every batch, ordered by term, then document."""
    found: list[tuple[np.ndarray, ...]] = []
    for path, cut in zip(batches, cuts):
        start, count = int(cut[part]), int(cut[part + 1] - cut[part])
        if count:
            found.append(
                tuple(
                    np.fromfile(path.with_suffix(suffix), dtype=dtype, count=count, offset=start * size)
                    for suffix, dtype, size in (
                        (".terms", np.int64, 8),
                        (".docs", np.int64, 8),
                        (".tf", np.int32, 4),
                    )
                )
            )
    terms, docs, tfs = (np.concatenate(column) for column in zip(*found))
    order = np.argsort(terms, kind="stable")  # batches come in document order: stable keeps it per term
    return terms[order], docs[order], tfs[order]


class _Weights:
    """BM25 weights of (term, document, tf) triples, with bm25s's formulas and float types step by step
    (float32 idf, float64 arithmetic, float32 result), so that the matrix equals bm25s's."""

    def __init__(self, settings: BM25Settings, df: np.ndarray, lengths: np.ndarray):
        self.k1, self.b, self.method, self.delta = settings.k1, settings.b, settings.method, 0.5
        self.lengths = lengths
        self.avg = lengths.mean()  # as bm25s: the mean of an int64 array
        idf = _idf(self.method, df.astype(np.float64), float(len(lengths)))
        self.idf = idf.astype(np.float32)
        self.absent = None
        if self.method in ("bm25l", "bm25+"):  # bm25s subtracts the score of a term that does not occur
            self.absent = (idf * self._tfc(np.float64(0), self.avg)).astype(np.float32)

    def _tfc(self, tf: np.ndarray, length: np.ndarray) -> np.ndarray:
        k1, b, avg, delta = self.k1, self.b, self.avg, self.delta
        if self.method in ("lucene", "robertson"):
            return tf / (k1 * ((1 - b) + b * length / avg) + tf)
        if self.method == "atire":
            return (tf * (k1 + 1)) / (tf + k1 * (1 - b + b * length / avg))
        if self.method == "bm25l":
            c = tf / (1 - b + b * length / avg)
            return ((k1 + 1) * (c + delta)) / (k1 + c + delta)
        return ((k1 + 1) * tf) / (k1 * (1 - b + b * length / avg) + tf) + delta  # bm25+

    def __call__(self, terms: np.ndarray, docs: np.ndarray, tfs: np.ndarray) -> np.ndarray:
        scores = self.idf[terms] * self._tfc(tfs.astype(np.float32), self.lengths[docs])
        if self.absent is not None:
            scores -= self.absent[terms]
        return scores.astype(np.float32)


def _idf(method: str, df: np.ndarray, n: float) -> np.ndarray:
    """bm25s's idf of every term from its document frequency, in float64."""
    if method == "lucene":
        return np.log(1 + (n - df + 0.5) / (df + 0.5))
    if method == "robertson":
        return np.log(np.maximum((n - df + 0.5) / (df + 0.5), 1))
    if method == "atire":
        return np.log(n / df)
    if method == "bm25l":
        return np.log((n + 1) / (df + 0.5))
    return np.log((n + 1) / df)  # bm25+


def _write_vocabulary(path: Path, names: list[str]) -> None:
    """``{term: row}`` in row order, written a piece at a time; the same bytes as ``json.dumps``."""
    with path.open("w", encoding="utf-8") as handle:
        handle.write("{")
        for start in range(0, len(names), 100_000):
            piece = dict(zip(names[start : start + 100_000], range(start, start + 100_000)))
            handle.write((", " if start else "") + json.dumps(piece, ensure_ascii=False)[1:-1])
        handle.write("}")


class _NpyAppender:
    """A ``.npy`` file of a known length filled by appending pieces in order (no memory map: what is
    written leaves memory at once). Leaving the block checks the length was reached."""

    def __init__(self, path: Path, dtype: type, length: int):
        self.path, self.dtype, self.length, self.written = path, np.dtype(dtype), length, 0
        self._handle: BinaryIO | None = None

    def __enter__(self) -> Self:
        self._handle = self.path.open("wb")
        header = {
            "descr": np.lib.format.dtype_to_descr(self.dtype),
            "fortran_order": False,
            "shape": (self.length,),
        }
        np.lib.format.write_array_header_2_0(self._handle, header)
        return self

    def append(self, values: np.ndarray) -> None:
        assert self._handle is not None
        self._handle.write(np.ascontiguousarray(values, dtype=self.dtype).tobytes())
        self.written += len(values)

    def __exit__(self, *exc: object) -> None:
        assert self._handle is not None
        self._handle.close()
        if exc[0] is None and self.written != self.length:
            raise RuntimeError(f"{self.path}: wrote {self.written} values, expected {self.length}")
