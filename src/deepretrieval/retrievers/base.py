"""The retriever contract: one batched call, hits = doc id + score, text on demand."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence, runtime_checkable


@dataclass(frozen=True, slots=True)
class Hit:
    """One retrieved document: its collection id and the retriever's score."""

    doc_id: str
    score: float


@runtime_checkable
class Retriever(Protocol):
    """Anything that ranks documents for a batch of queries.

    ``fingerprint`` identifies the index contents and settings; caches key on it, so two
    retrievers with the same fingerprint must return the same hits for the same query.
    """

    fingerprint: str

    def search(self, queries: Sequence[str], k: int) -> list[list[Hit]]:
        """Top-``k`` hits for every query, best first. Never raises on odd query text:
        an empty or unmatchable query returns an empty list."""
        ...

    def text(self, doc_id: str) -> str:
        """The document's text (title and body), loaded on demand."""
        ...
