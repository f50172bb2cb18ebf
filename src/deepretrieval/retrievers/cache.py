"""Deduplicating, caching front for any retriever: the reward path makes one batched call per rollout batch."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import diskcache
from cachetools import LRUCache

from deepretrieval.retrievers.base import DateRange, Ranking, Retriever

Key = tuple[str, str, int, tuple[str | None, str | None] | None]


class CachedRetriever(Retriever):
    """Wraps a retriever: removes duplicate searches, answers repeats from an in-memory LRU (and, if
    ``disk_dir`` is given, a persistent on-disk cache), and sends only the misses in ONE batched call.

    Keys are ``(index fingerprint, query, k, date range)``, so a rebuilt index never serves stale
    rankings. A failed ranking (an engine that gave up) is returned but never cached. The LRU holds at
    most ``max_entries`` rankings, which bounds host memory over a long run. A retriever like the one it
    wraps (its kind, fingerprints and texts); ``close`` closes both.
    """

    def __init__(self, inner: Retriever, max_entries: int = 50_000, disk_dir: str | Path | None = None):
        self.inner = inner
        self.fingerprint = inner.fingerprint
        self._memory: LRUCache = LRUCache(maxsize=max_entries)
        self._disk = diskcache.Cache(str(disk_dir)) if disk_dir else None
        self.hits = 0
        self.misses = 0

    @property  # type: ignore[override]
    def kind(self) -> str | None:
        """The wrapped retriever's registry kind."""
        return self.inner.kind

    @property  # type: ignore[override]
    def lists_all_matches(self) -> bool:
        """Whether the wrapped retriever lists every match (a local Boolean engine)."""
        return self.inner.lists_all_matches

    @property  # type: ignore[override]
    def corpus_fingerprint(self) -> str | None:
        """The wrapped index's corpus fingerprint (None for a search engine, which has no corpus)."""
        return self.inner.corpus_fingerprint

    def _key(self, query: str, date: DateRange | None, k: int) -> Key:
        return (self.fingerprint, query, k, None if date is None else (date.start, date.end))

    def search(
        self, queries: Sequence[str], k: int, *, dates: Sequence[DateRange | None] | None = None
    ) -> list[Ranking]:
        if dates is not None and len(dates) != len(queries):
            raise ValueError(
                f"dates must give one range (or None) per query: {len(dates)} for {len(queries)}"
            )
        searches = list(zip(queries, dates if dates is not None else [None] * len(queries)))
        found: dict[tuple[str, DateRange | None], Ranking] = {}
        missing: list[tuple[str, DateRange | None]] = []
        for search in dict.fromkeys(searches):  # unique, in first-seen order
            key = self._key(*search, k)
            cached = self._memory.get(key)
            if cached is None and self._disk is not None:
                cached = self._disk.get(key)
                if cached is not None:
                    self._memory[key] = cached
            if cached is None:
                missing.append(search)
            else:
                found[search] = cached
        self.hits += len(found)
        self.misses += len(missing)
        if missing:
            ranges = [date for _, date in missing]
            limits = {"dates": ranges} if any(date is not None for date in ranges) else {}
            for search, ranking in zip(missing, self.inner.search([q for q, _ in missing], k, **limits)):
                found[search] = ranking
                if not ranking.failed:
                    key = self._key(*search, k)
                    self._memory[key] = ranking
                    if self._disk is not None:
                        self._disk.set(key, ranking)
        return [found[search] for search in searches]

    def text(self, doc_id: str) -> str:
        return self.inner.text(doc_id)

    def texts(self, doc_ids: Sequence[str]) -> list[str]:
        return self.inner.texts(doc_ids)

    def analyze(self, text: str) -> list[str]:
        return self.inner.analyze(text)

    def analyze_many(self, texts: Sequence[str]) -> list[list[str]]:
        return self.inner.analyze_many(texts)

    def query_errors(self, queries: Sequence[str]) -> list[str | None]:
        return self.inner.query_errors(queries)

    def close(self) -> None:
        if self._disk is not None:
            self._disk.close()
        self.inner.close()
