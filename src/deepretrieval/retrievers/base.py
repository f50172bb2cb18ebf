"""The retriever contract: one batched call, hits = doc id + score, text on demand."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, overload, runtime_checkable

import numpy as np


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


@runtime_checkable
class Retriever(Protocol):
    """Anything that ranks documents for a batch of queries.

    ``fingerprint`` identifies the index contents and settings; caches key on it, so two
    retrievers with the same fingerprint must return the same hits for the same query.
    """

    fingerprint: str

    def search(self, queries: Sequence[str], k: int) -> Sequence[Sequence[Hit]]:
        """Top-``k`` hits for every query, best first. Never raises on odd query text:
        an empty or unmatchable query returns an empty list."""
        ...

    def text(self, doc_id: str) -> str:
        """The document's text (title and body), loaded on demand."""
        ...
