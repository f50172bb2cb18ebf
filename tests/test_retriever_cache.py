"""CachedRetriever: one deduplicated batched call per batch, keys with the date range, failed searches
never cached, rankings kept on disk, and the wrapped retriever's protocol forwarded."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from deepretrieval.retrievers import Corpus, DateRange, Ranking, Retriever
from deepretrieval.retrievers.bm25 import BM25Retriever
from deepretrieval.retrievers.cache import CachedRetriever

DOCS = Corpus(
    ["a", "b", "c"],
    ["Aspirin lowers the risk of infarction", "Vitamin D and fractures", "Aspirin and stroke prevention"],
)


class RecordingRetriever(Retriever):
    """Forwards to a real retriever and records every batch it is sent (to prove batching and dedupe).
    A query starting with "flaky" fails the first time it is searched, as an API that gave up would."""

    def __init__(self, inner: BM25Retriever):
        self.inner, self.fingerprint, self.kind = inner, inner.fingerprint, inner.kind
        self.corpus_fingerprint = inner.corpus_fingerprint
        self.calls: list[tuple[list[str], list[DateRange | None] | None]] = []
        self.closed = False

    def search(
        self, queries: Sequence[str], k: int, *, dates: Sequence[DateRange | None] | None = None
    ) -> list[Ranking]:
        failing = {q for q in queries if q.startswith("flaky") and not any(q in c[0] for c in self.calls)}
        self.calls.append((list(queries), None if dates is None else list(dates)))
        plain = self.inner.search(queries, k)  # the date limits are recorded, not applied
        return [
            Ranking.failure("gave up after 3 tries") if q in failing else r for q, r in zip(queries, plain)
        ]

    def text(self, doc_id: str) -> str:
        return self.inner.text(doc_id)

    def analyze(self, text: str) -> list[str]:
        return self.inner.analyze(text)

    def close(self) -> None:
        self.closed = True
        self.inner.close()


@pytest.fixture()
def recording(tmp_path: Path) -> RecordingRetriever:
    return RecordingRetriever(BM25Retriever.build(DOCS, tmp_path / "index", show_progress=False))


def test_duplicates_go_out_once_and_repeats_come_from_memory(recording: RecordingRetriever) -> None:
    cached = CachedRetriever(recording)
    batch = ["aspirin", "vitamin", "aspirin", "stroke", "vitamin"]
    first = cached.search(batch, 10)
    assert recording.calls == [(["aspirin", "vitamin", "stroke"], None)]
    assert [r.doc_ids for r in first] == [r.doc_ids for r in recording.inner.search(batch, 10)]
    assert all(isinstance(r, Ranking) for r in first)
    again = cached.search(["stroke", "aspirin", "fractures"], 10)
    assert recording.calls[1] == (["fractures"], None) and again[0] == first[3]
    assert (cached.hits, cached.misses) == (2, 4)


def test_date_ranges_are_part_of_the_key_and_passed_through(recording: RecordingRetriever) -> None:
    cached = CachedRetriever(recording)
    early, late = DateRange(end="2000/12/31"), DateRange(start="2001/01/01")
    cached.search(["aspirin", "aspirin", "aspirin"], 5, dates=[early, late, early])
    assert recording.calls == [(["aspirin", "aspirin"], [early, late])]
    cached.search(["aspirin", "aspirin"], 5, dates=[late, None])
    assert recording.calls[1] == (["aspirin"], None)  # only the undated search was new
    with pytest.raises(ValueError, match="one range \\(or None\\) per query: 1 for 2"):
        cached.search(["a", "b"], 5, dates=[None])


def test_failed_rankings_are_returned_but_never_cached(recording: RecordingRetriever, tmp_path: Path) -> None:
    cached = CachedRetriever(recording, disk_dir=tmp_path / "disk")
    (failed, fine) = cached.search(["flaky aspirin", "aspirin"], 5)
    assert failed.failed and failed.error == "gave up after 3 tries" and not fine.failed
    (retried,) = cached.search(["flaky aspirin"], 5)
    assert not retried.failed and retried.doc_ids == recording.inner.search(["flaky aspirin"], 5)[0].doc_ids
    assert [call[0] for call in recording.calls] == [["flaky aspirin", "aspirin"], ["flaky aspirin"]]
    cached.search(["flaky aspirin"], 5)
    assert len(recording.calls) == 2  # cached once it succeeded


def test_disk_cache_keeps_rankings_across_instances(recording: RecordingRetriever, tmp_path: Path) -> None:
    first = CachedRetriever(recording, disk_dir=tmp_path / "disk")
    (ranking,) = first.search(["aspirin"], 5, dates=[DateRange(end="2020/01/01")])
    first._disk.close()  # type: ignore[union-attr]  # as a finished process would, keeping the index open
    second = CachedRetriever(recording, disk_dir=tmp_path / "disk")
    (again,) = second.search(["aspirin"], 5, dates=[DateRange(end="2020/01/01")])
    assert isinstance(again, Ranking) and again.doc_ids == ranking.doc_ids
    assert np.array_equal(again.scores, ranking.scores) and len(recording.calls) == 1


def test_the_wrapper_is_a_retriever_of_the_same_index(recording: RecordingRetriever) -> None:
    cached = CachedRetriever(recording)
    assert isinstance(cached, Retriever)
    assert (cached.kind, cached.fingerprint) == ("bm25", recording.inner.fingerprint)
    assert cached.corpus_fingerprint == DOCS.fingerprint
    assert cached.analyze("Strokes prevented") == ["stroke", "prevent"]
    assert cached.text("b") == "Vitamin D and fractures"
    cached.close()
    assert recording.closed
