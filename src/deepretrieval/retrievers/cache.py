"""Deduplicating, caching front for any retriever: the reward path makes one batched call per rollout batch."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import diskcache
from cachetools import LRUCache

from deepretrieval.retrievers.base import Hit, Retriever


class CachedRetriever:
    """Wraps a retriever: removes duplicate queries, answers repeats from an in-memory LRU (and, if
    ``disk_dir`` is given, a persistent on-disk cache), and sends only the misses in ONE batched call.

    Keys are ``(index fingerprint, query, k)``, so a rebuilt index never serves stale hits.
    The LRU holds at most ``max_entries`` result lists, which bounds host memory over a long run.
    """

    def __init__(self, inner: Retriever, max_entries: int = 50_000, disk_dir: str | Path | None = None):
        self.inner = inner
        self.fingerprint = inner.fingerprint
        self._memory: LRUCache = LRUCache(maxsize=max_entries)
        self._disk = diskcache.Cache(str(disk_dir)) if disk_dir else None
        self.hits = 0
        self.misses = 0

    def search(self, queries: Sequence[str], k: int) -> list[list[Hit]]:
        found: dict[str, list[Hit]] = {}
        missing: list[str] = []
        for query in dict.fromkeys(queries):  # unique, in first-seen order
            key = (self.fingerprint, query, k)
            cached = self._memory.get(key)
            if cached is None and self._disk is not None:
                cached = self._disk.get(key)
                if cached is not None:
                    self._memory[key] = cached
            if cached is None:
                missing.append(query)
            else:
                found[query] = cached
        self.hits += len(found)
        self.misses += len(missing)
        if missing:
            for query, result in zip(missing, self.inner.search(missing, k)):
                key = (self.fingerprint, query, k)
                self._memory[key] = result
                if self._disk is not None:
                    self._disk.set(key, result)
                found[query] = result
        return [found[query] for query in queries]

    def text(self, doc_id: str) -> str:
        return self.inner.text(doc_id)

    def close(self) -> None:
        if self._disk is not None:
            self._disk.close()
