"""The retriever contract: one batched call returning ``Ranking``s, text on demand, the analysed terms.

Every retriever subclasses :class:`Retriever` and declares what it can do on its class. Index-backed ones
(BM25, dense, Boolean) subclass :class:`IndexedRetriever` (``build`` / ``load`` an index folder); search
engines (APIs, services) are constructed from their options and have no index of their own.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self, overload

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from deepretrieval.retrievers.corpus import Corpus

_WORD = re.compile(r"\w+")


@dataclass(frozen=True, slots=True)
class Hit:
    """One retrieved document: its collection id and the retriever's score."""

    doc_id: str
    score: float


@dataclass(frozen=True, slots=True)
class DateRange:
    """Publication-date limits of one search, ``YYYY/MM/DD`` inclusive (either end may be open).

    Literature search passes the review's date as ``end`` so that a policy cannot find papers from its
    future. Engines that cannot filter by date refuse a non-empty range rather than ignore it."""

    start: str | None = None
    end: str | None = None


class Ranking(Sequence[Hit]):
    """One query's hits, best first, stored as parallel id/score arrays; ``Hit`` objects are made only
    when indexed. Retrievers return these so the reward path never builds per-hit Python objects.

    ``total`` is the number of documents that match the query when the engine knows it (a Boolean engine
    or a search API: a query may match 5 or 50,000 documents of which only the top k come back); ``None``
    for ranking retrievers. ``error`` is set when the search itself failed (an API that kept failing
    after its retries): such a ranking is empty and says nothing about the query's quality, so it must
    never be scored as a bad query, nor cached."""

    __slots__ = ("doc_ids", "error", "scores", "total")

    def __init__(
        self, doc_ids: list[str], scores: np.ndarray, *, total: int | None = None, error: str | None = None
    ):
        self.doc_ids = doc_ids
        self.scores = scores
        self.total = total
        self.error = error

    @classmethod
    def failure(cls, error: str) -> Ranking:
        """An empty ranking that records why the search could not be made."""
        return cls([], np.empty(0, dtype=np.float32), error=error)

    @property
    def failed(self) -> bool:
        return self.error is not None

    def __len__(self) -> int:
        return len(self.doc_ids)

    @overload
    def __getitem__(self, index: int) -> Hit: ...
    @overload
    def __getitem__(self, index: slice) -> list[Hit]: ...
    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [Hit(d, float(s)) for d, s in zip(self.doc_ids[index], self.scores[index])]
        return Hit(self.doc_ids[index], float(self.scores[index]))

    def __iter__(self) -> Iterator[Hit]:
        return iter(self[:])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    def __repr__(self) -> str:
        return f"Ranking({self[:3]}{'...' if len(self) > 3 else ''}, n={len(self)})"


class SettingsError(ValueError):
    """Retriever settings that cannot be used; the message names the key and the valid choices."""


class RetrieverSettings(BaseModel):
    """Base of every retriever's settings: the choices that decide the index contents (a change means a
    rebuild). Frozen, unknown keys and non-finite numbers refused, errors on one line."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as err:
            raise SettingsError(_one_line(type(self), err)) from None


def _one_line(settings: type[RetrieverSettings], err: ValidationError) -> str:
    valid = ", ".join(settings.model_fields)
    problems = []
    for problem in err.errors():
        key = ".".join(str(part) for part in problem["loc"]) or "settings"
        if problem["type"] == "extra_forbidden":
            problems.append(f"unknown key {key!r} (valid: {valid})")
        else:
            problems.append(f"{key}: {problem['msg']} (got {problem.get('input')!r:.60})")
    return f"{settings.__name__}: {'; '.join(problems)}"


def word_terms(text: str) -> list[str]:
    """Lower-cased ``\\w+`` words in order, repeats kept: the default ``analyze`` of retrievers that have
    no analyser of their own (dense models see subwords, but words are what a policy can act on)."""
    return _WORD.findall(text.lower())


def refuse_dates(kind: str, queries: Sequence[str], dates: Sequence[DateRange | None] | None) -> None:
    """For retrievers that cannot filter by date: raise unless every range is absent or open."""
    if dates is None:
        return
    if len(dates) != len(queries):
        raise ValueError(f"dates must give one range (or None) per query: {len(dates)} for {len(queries)}")
    if any(d is not None and (d.start or d.end) for d in dates):
        raise ValueError(
            f"the {kind} retriever cannot filter by publication date; pass dates=None "
            "or use an engine that can (pubmed, ctgov)"
        )


class Retriever(ABC):
    """Anything that ranks documents for a batch of queries; every retriever subclasses it.

    ``fingerprint`` identifies the index contents (or engine) and settings; caches key on it, so two
    retrievers with the same fingerprint must return the same rankings for the same query. ``kind`` is the
    registry kind (a remote retriever gives the served index's); ``corpus_fingerprint`` the collection an
    index was built from (None for a search engine, which has no corpus of its own).

    What a retriever can do beyond the four methods is declared on its class, never probed:

    - ``indexed``: it builds and loads an index folder (:class:`IndexedRetriever`); else it is a search
      engine, opened as ``Cls(**options)``;
    - ``takes_corpus``: (search engines) its constructor takes ``corpus=``, the task's collection;
    - ``streams_corpus``: (indexed) ``build`` reads a :class:`~deepretrieval.retrievers.corpus.CorpusFile`
      in batches, so ``open_retriever`` never loads the collection into memory;
    - ``runtime_options``: (indexed) the keyword-only options of ``load`` (threads, device, ...: nothing
      that changes the index), told apart from settings by ``open_retriever``;
    - ``local_analyzer``: (indexed) ``analyzer(settings)`` reproduces ``analyze`` without the index, so a
      remote client analyses text itself instead of asking the retrieval service;
    - ``lists_all_matches``: a Boolean engine over a local collection: ``search`` with ``k`` at least the
      collection's size lists every matching document, so a query can be judged by its whole result set.
    """

    kind: ClassVar[str | None] = None
    fingerprint: str
    corpus_fingerprint: str | None = None

    indexed: ClassVar[bool] = False
    takes_corpus: ClassVar[bool] = False
    streams_corpus: ClassVar[bool] = False
    runtime_options: ClassVar[frozenset[str]] = frozenset()
    local_analyzer: ClassVar[bool] = False
    lists_all_matches: ClassVar[bool] = False

    @abstractmethod
    def search(
        self, queries: Sequence[str], k: int, *, dates: Sequence[DateRange | None] | None = None
    ) -> list[Ranking]:
        """Top-``k`` documents for every query, best first, in one call. Never raises on odd query text:
        an empty or unmatchable query gets an empty ranking. ``dates`` gives one range (or None) per
        query; a retriever that cannot filter by date raises ``ValueError`` for a non-open range."""

    @abstractmethod
    def text(self, doc_id: str) -> str:
        """The document's text (title and body), loaded on demand."""

    def texts(self, doc_ids: Sequence[str]) -> list[str]:
        """The texts of many documents, in order: one ``text`` call per id unless the retriever reads
        them in one batch (index-backed retrievers read their document store in file order)."""
        return [self.text(doc_id) for doc_id in doc_ids]

    @abstractmethod
    def analyze(self, text: str) -> list[str]:
        """The terms the retriever scores ``text`` by, in order with repeats."""

    def query_errors(self, queries: Sequence[str]) -> list[str | None]:
        """Why each query cannot be searched (``None``: it can): a Boolean query that does not parse, with
        the parser's message. A query this returns a message for is an invalid answer, never an empty
        result. Retrievers that take any text return all ``None``."""
        return [None] * len(queries)

    def analyze_many(self, texts: Sequence[str]) -> list[list[str]]:
        """``analyze`` of every text, in order: one call per text unless the retriever analyses a batch at
        once (BM25: each distinct word stemmed once)."""
        return [self.analyze(text) for text in texts]

    @abstractmethod
    def close(self) -> None:
        """Release files, maps and connections; the retriever is unusable afterwards."""


class IndexedRetriever(Retriever):
    """A retriever over an index folder it builds itself (see ``storage.index_store`` for the folder layout).

    ``build`` writes and publishes the index atomically and returns it loaded; ``load`` opens a published
    index, taking only runtime options (declared in ``runtime_options``). ``kind`` must be the registered
    kind: it is written into the index manifest.
    """

    indexed: ClassVar[bool] = True
    kind: ClassVar[str]
    settings_type: ClassVar[type[RetrieverSettings]]
    settings: RetrieverSettings
    corpus_fingerprint: str

    @classmethod
    @abstractmethod
    def build(
        cls,
        corpus: Corpus,
        index_dir: str | Path,
        settings: RetrieverSettings | None = None,
        *,
        show_progress: bool = True,
        **runtime_options: Any,
    ) -> Self:
        """Index ``corpus`` into ``index_dir``, publish it and return it loaded with ``runtime_options``."""

    @classmethod
    @abstractmethod
    def load(cls, index_dir: str | Path, **runtime_options: Any) -> Self:
        """Open the published index in ``index_dir``."""

    @classmethod
    def analyzer(cls, settings: RetrieverSettings) -> Callable[[Sequence[str]], list[list[str]]]:
        """``analyze_many`` of any index built with ``settings``, without the index (``local_analyzer`` kinds)."""
        raise NotImplementedError(f"the {cls.kind} retriever analyses text with its index only")
