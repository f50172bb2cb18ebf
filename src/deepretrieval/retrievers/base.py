"""The retriever contract: one batched call returning ``Ranking``s, text on demand, the analysed terms.

Two shapes of retriever share :class:`Retriever`: index-backed ones (BM25, dense) also follow
:class:`IndexedRetriever` (``build`` / ``load`` an index folder); search engines (APIs, services) are
constructed from their options and have no index of their own.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self, overload, runtime_checkable

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


def texts_of(retriever: Retriever, doc_ids: Sequence[str]) -> list[str]:
    """The texts of ``doc_ids``: in one batched read when the retriever has ``texts`` (index-backed
    retrievers read their document store in file order), else one ``text`` call per id (search engines,
    whose protocol only promises ``text``)."""
    many = getattr(retriever, "texts", None)
    return many(doc_ids) if callable(many) else [retriever.text(doc_id) for doc_id in doc_ids]


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


@runtime_checkable
class Retriever(Protocol):
    """Anything that ranks documents for a batch of queries.

    ``fingerprint`` identifies the index contents (or engine) and settings; caches key on it, so two
    retrievers with the same fingerprint must return the same rankings for the same query.
    """

    fingerprint: str

    def search(
        self, queries: Sequence[str], k: int, *, dates: Sequence[DateRange | None] | None = None
    ) -> list[Ranking]:
        """Top-``k`` documents for every query, best first, in one call. Never raises on odd query text:
        an empty or unmatchable query gets an empty ranking. ``dates`` gives one range (or None) per
        query; a retriever that cannot filter by date raises ``ValueError`` for a non-open range."""
        ...

    def text(self, doc_id: str) -> str:
        """The document's text (title and body), loaded on demand."""
        ...

    def analyze(self, text: str) -> list[str]:
        """The terms the retriever scores ``text`` by, in order with repeats."""
        ...

    def close(self) -> None:
        """Release files, maps and connections; the retriever is unusable afterwards."""
        ...


@runtime_checkable
class IndexedRetriever(Retriever, Protocol):
    """A retriever over an index folder it builds itself (see ``storage.index_store`` for the folder layout).

    ``build`` writes and publishes the index atomically and returns it loaded; ``load`` opens a published
    index, taking only runtime options (threads, device, batch size: nothing that changes the index).
    """

    kind: ClassVar[str]
    settings_type: ClassVar[type[RetrieverSettings]]
    settings: RetrieverSettings
    corpus_fingerprint: str

    @classmethod
    def build(
        cls,
        corpus: Corpus,
        index_dir: str | Path,
        settings: RetrieverSettings | None = None,
        *,
        show_progress: bool = True,
        **runtime_options: Any,
    ) -> Self: ...

    @classmethod
    def load(cls, index_dir: str | Path, **runtime_options: Any) -> Self: ...
