"""The retriever registry: kinds by name, lazy classes, engines opened from options, new index kinds in one
class, open_retriever's split of settings from runtime options, and the capabilities classes declare."""

from __future__ import annotations

import inspect
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from deepretrieval.registry import Registry
from deepretrieval.retrievers import (
    BadIndexError,
    Corpus,
    DateRange,
    Ranking,
    Retriever,
    SettingsError,
    known_kinds,
    load_corpus,
    open_retriever,
    register,
    registry,
    retriever_class,
)
from deepretrieval.retrievers.base import IndexedRetriever, word_terms
from deepretrieval.retrievers.bm25 import BM25Retriever, BM25Settings


@pytest.fixture(autouse=True)
def _own_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kinds registered by a test vanish after it."""
    monkeypatch.setattr(registry, "_KINDS", Registry("retriever", registry._BUILTIN))


class TitleEngine(Retriever):
    """A search engine with no index (as PubMed or a remote service are): a fixed list of dated titles,
    a document matches when it holds every query word; opened as ``TitleEngine(**options)``."""

    def __init__(self, titles: dict[str, tuple[str, str]], min_words: int = 1):
        if min_words < 1:
            raise ValueError(f"min_words must be >= 1, got {min_words}")
        self.titles = titles
        self.min_words = min_words
        self.fingerprint = f"titles-{len(titles)}-{min_words}"

    def search(
        self, queries: Sequence[str], k: int, *, dates: Sequence[DateRange | None] | None = None
    ) -> list[Ranking]:
        rankings = []
        for query, limit in zip(queries, dates or [None] * len(queries)):
            words = set(self.analyze(query))
            found = [
                doc_id
                for doc_id, (title, date) in self.titles.items()
                if len(words) >= self.min_words
                and words <= set(self.analyze(title))
                and (limit is None or ((limit.start or "") <= date <= (limit.end or "9999")))
            ][:k]
            rankings.append(Ranking(found, np.ones(len(found), dtype=np.float32), total=len(found)))
        return rankings

    def text(self, doc_id: str) -> str:
        return self.titles[doc_id][0]

    def analyze(self, text: str) -> list[str]:
        return word_terms(text)

    def close(self) -> None:
        self.titles = {}


TITLES = {
    "p1": ("Vitamin D and fractures", "2001/05/01"),
    "p2": ("Vitamin D in pregnancy", "2015/02/11"),
    "p3": ("Aspirin and stroke", "2010/09/30"),
}


class DemoBM25(BM25Retriever):
    """A new index-backed kind in one class: BM25 indexes that say so in their manifests."""

    kind = "bm25-demo"


def test_builtin_kinds_and_unknown_kind() -> None:
    assert {"bm25", "dense"} <= set(known_kinds())
    assert retriever_class("bm25") is BM25Retriever
    known = ", ".join(known_kinds())
    with pytest.raises(
        ValueError, match=f"unknown retriever 'bm52'; did you mean 'bm25'. known: {known}$"
    ) as caught:
        retriever_class("bm52")
    assert "\n" not in str(caught.value)
    with pytest.raises(ValueError, match="unknown retriever 'bm52'"):
        open_retriever("bm52", corpus="unused")


def test_engine_kind_opens_from_its_options() -> None:
    register("titles-test", f"{__name__}:TitleEngine")  # lazy: imported on first use
    register("titles-test", f"{__name__}:TitleEngine")  # the same target again is fine
    engine = open_retriever("titles-test", titles=TITLES, min_words=2)
    assert isinstance(engine, TitleEngine) and isinstance(engine, Retriever)
    assert "titles-test" in known_kinds()
    (both, one_word) = engine.search(["vitamin d", "vitamin"], 10)
    assert both.doc_ids == ["p1", "p2"] and both.total == 2 and len(one_word) == 0
    (early,) = engine.search(["vitamin d"], 10, dates=[DateRange(end="2005/12/31")])
    assert early.doc_ids == ["p1"]
    with pytest.raises(ValueError, match="search engine with no index: it takes no corpus or index_dir"):
        open_retriever("titles-test", corpus="corpus.jsonl", titles=TITLES)
    with pytest.raises(ValueError, match="min_words must be >= 1"):
        open_retriever("titles-test", titles=TITLES, min_words=0)


def test_register_refuses_conflicts_and_malformed_entries() -> None:
    register("titles-class", TitleEngine)
    with pytest.raises(ValueError, match="'titles-class' is already registered as .*TitleEngine"):
        register("titles-class", "somewhere.else:Engine")
    with pytest.raises(ValueError, match="lower-case letters"):
        register("Titles", TitleEngine)
    with pytest.raises(ValueError, match="must look like 'package.module:attr'"):
        register("titles-bad", "no_colon_here")
    with pytest.raises(TypeError, match="must be a class or 'package.module:Class'"):
        register("titles-object", TitleEngine({}))  # type: ignore[arg-type]
    register("titles-missing", f"{__name__}:NoSuchClass")
    with pytest.raises(ImportError, match="has no attribute 'NoSuchClass'"):
        retriever_class("titles-missing")
    register("not-a-retriever", f"{__name__}:TITLES")
    with pytest.raises(TypeError, match="is not a subclass of deepretrieval.retrievers.Retriever"):
        retriever_class("not-a-retriever")
    register("bm25-alias", BM25Retriever)
    with pytest.raises(ValueError, match="BM25Retriever.kind must be 'bm25-alias'"):
        retriever_class("bm25-alias")


def test_new_index_kind_shares_the_lifecycle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEEPRETRIEVAL_CACHE", str(tmp_path / "cache"))
    register("bm25-demo", DemoBM25)
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"_id": "1", "text": "aspirin stroke"}\n{"_id": "2", "text": "vitamin d"}\n')
    built = open_retriever("bm25-demo", corpus=corpus, show_progress=False, k1=1.5, threads=1)
    assert isinstance(built, DemoBM25) and built.settings.k1 == 1.5 and built.threads == 1
    assert built.index_dir.name.startswith("bm25-demo-")
    assert json.loads((built.index_dir / "index.json").read_text())["kind"] == "bm25-demo"
    assert built.search(["strokes"], 5)[0].doc_ids == ["1"]
    again = open_retriever("bm25-demo", corpus=corpus, show_progress=False, k1=1.5)
    assert again.index_dir == built.index_dir and again.fingerprint == built.fingerprint
    with pytest.raises(BadIndexError, match="it is a bm25-demo index, not bm25"):
        BM25Retriever.load(built.index_dir)


def test_open_retriever_splits_settings_from_runtime_options(tmp_path: Path) -> None:
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"_id": "1", "text": "aspirin stroke"}\n')
    with pytest.raises(
        SettingsError,
        match="unknown bm25 option 'treads'; settings: k1, b, .*; runtime options: mmap, threads, verify",
    ):
        open_retriever("bm25", corpus=corpus, index_dir=tmp_path / "i", treads=2)
    with pytest.raises(SettingsError, match="k1: Input should be a finite number"):
        open_retriever("bm25", corpus=corpus, index_dir=tmp_path / "i", k1=float("inf"))
    assert not (tmp_path / "i").exists()  # refused before anything was read
    with pytest.raises(
        BadIndexError, match=f"index folder {tmp_path / 'i'} does not exist .*; build it with"
    ):
        open_retriever("bm25", corpus=corpus, index_dir=tmp_path / "i", b=0.75)  # a given folder: never built
    BM25Retriever.build(
        load_corpus(corpus), tmp_path / "i", BM25Settings(b=0.75), show_progress=False
    ).close()
    retriever = open_retriever("bm25", corpus=corpus, index_dir=tmp_path / "i", b=0.75, mmap=False)
    assert retriever.settings.b == 0.75 and not retriever.memory_mapped
    with pytest.raises(ValueError, match="needs a corpus or an index_dir"):
        open_retriever("bm25")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadIndexError, match="empty holds no published index .*--corpus CORPUS --out"):
        open_retriever("bm25", index_dir=tmp_path / "empty")


# --------------------------------------------------------------------------- declared capabilities


@pytest.mark.parametrize("kind", registry._BUILTIN)
def test_every_builtin_kind_declares_its_capabilities(kind: str) -> None:
    """What open_retriever and the retrieval service read from a class is what its code really does."""
    cls = retriever_class(kind)
    assert issubclass(cls, Retriever) and not inspect.isabstract(cls)
    assert cls.indexed == issubclass(cls, IndexedRetriever)
    if cls.indexed:
        load = inspect.signature(cls.load).parameters.values()
        assert cls.runtime_options == {p.name for p in load if p.kind is inspect.Parameter.KEYWORD_ONLY}
        assert cls.streams_corpus == (kind != "boolean") and not cls.takes_corpus
        assert cls.kind == kind and set(cls.settings_type.model_fields).isdisjoint(cls.runtime_options)
    else:
        assert cls.takes_corpus == ("corpus" in inspect.signature(cls).parameters)
        assert not (cls.runtime_options or cls.streams_corpus or cls.local_analyzer)
    assert cls.local_analyzer == (kind == "bm25")


def test_local_analyzer_is_the_index_analysis(tmp_path: Path) -> None:
    index = BM25Retriever.build(
        Corpus(["1"], ["Running runners ran"]),
        tmp_path / "i",
        BM25Settings(stemmer="english"),
        show_progress=False,
    )
    analyze = BM25Retriever.analyzer(index.settings)
    assert (
        analyze(["The runners were running"])
        == [index.analyze("The runners were running")]
        == [["runner", "were", "run"]]
    )
    with pytest.raises(NotImplementedError, match="the dense retriever analyses text with its index only"):
        retriever_class("dense").analyzer(retriever_class("dense").settings_type())


def test_default_texts_read_one_text_at_a_time() -> None:
    engine = TitleEngine(TITLES)
    assert engine.texts(["p3", "p1"]) == ["Aspirin and stroke", "Vitamin D and fractures"]
    assert engine.kind is None and engine.corpus_fingerprint is None
    assert not (engine.indexed or engine.takes_corpus or engine.local_analyzer)


def test_a_class_that_is_not_a_full_retriever_cannot_be_made() -> None:
    class NoText(Retriever):
        def search(self, queries, k, *, dates=None):
            return []

        def analyze(self, text):
            return []

        def close(self):
            pass

    with pytest.raises(TypeError, match="abstract method.*text"):
        NoText()
