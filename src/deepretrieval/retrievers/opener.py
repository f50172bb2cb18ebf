"""``open_retriever``: a retriever by kind, its index loaded and checked against the corpus (a given
index folder), or loaded from the cache and built there when missing."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from filelock import FileLock

from deepretrieval.paths import cache_dir
from deepretrieval.retrievers.base import IndexedRetriever, Retriever, SettingsError
from deepretrieval.retrievers.corpus import (
    Corpus,
    CorpusFile,
    corpus_file,
    corpus_fingerprint,
    known_fingerprint,
    load_corpus,
    open_corpus,
)
from deepretrieval.retrievers.registry import retriever_class
from deepretrieval.retrievers.storage.index_store import (
    FORMAT_VERSION,
    BadIndexError,
    IndexMismatchError,
    build_command,
    check_index_path,
    has_index,
    rebuild_hint,
)

logger = logging.getLogger(__name__)


def open_retriever(
    kind: str = "bm25",
    *,
    corpus: str | Path | None = None,
    index_dir: str | Path | None = None,
    show_progress: bool = True,
    **options: Any,
) -> Retriever:
    """The retriever registered as ``kind`` (see ``registry``), ready to search.

    Index-backed kinds load the index published in ``index_dir``, which is never built here: a folder
    with no index is a :class:`BadIndexError` that names ``deepretrieval index build``, an index built
    from another corpus than ``corpus`` or with other settings than those given an
    :class:`IndexMismatchError`. Without ``index_dir`` the index is built from ``corpus`` into a cache
    folder keyed by the corpus contents and the settings, and loaded from there next time (a damaged
    cached index is rebuilt: it is only a cache). ``options`` are the kind's settings and runtime
    options. Search engines (no index) take only ``options``, and the corpus when they declare
    ``takes_corpus`` (the remote retriever checks that the served index was built from it)."""
    cls = retriever_class(kind)
    if not cls.indexed:
        if (corpus is not None and not cls.takes_corpus) or index_dir is not None:
            raise ValueError(
                f"the {kind} retriever is a search engine with no index: it takes no corpus or index_dir"
            )
        return cls(**options) if corpus is None else cls(corpus=corpus, **options)
    chosen, runtime = _split_options(cls, kind, options)
    settings = cls.settings_type(**chosen)
    corpus_path = corpus_file(corpus) if corpus is not None else None
    if index_dir is not None:
        return _open_given(cls, Path(index_dir), corpus_path, settings, set(chosen), runtime)
    if corpus_path is None:
        raise ValueError("open_retriever needs a corpus or an index_dir")
    return _open_cached(cls, corpus_path, settings, set(chosen), runtime, show_progress)


def _open_given(
    cls: type[IndexedRetriever],
    index_dir: Path,
    corpus_path: Path | None,
    settings: Any,
    chosen: set[str],
    runtime: dict[str, Any],
) -> IndexedRetriever:
    """The index published in a folder the caller named, checked against the corpus and settings asked
    for; never built (a folder whose build failed must not silently become a default index)."""
    check_index_path(index_dir)
    if not has_index(index_dir):
        where = "does not exist" if not index_dir.exists() else "holds no published index"
        raise BadIndexError(
            f"index folder {index_dir} {where} (a given index is loaded, never built); build it with "
            f"{build_command(index_dir, cls.kind, str(corpus_path) if corpus_path else None)}"
        )
    retriever = cls.load(index_dir, **runtime)
    try:
        _check_match(retriever, index_dir, corpus_path, settings, chosen)
    except IndexMismatchError:
        retriever.close()
        raise
    return retriever


def _open_cached(
    cls: type[IndexedRetriever],
    corpus_path: Path,
    settings: Any,
    chosen: set[str],
    runtime: dict[str, Any],
    show_progress: bool,
) -> IndexedRetriever:
    """The index of ``corpus_path`` with ``settings`` in the cache, built there when it is missing,
    damaged or stale."""
    # builders that read the corpus in batches get it as a stream: collections of any size fit in memory
    read: Callable[[Path], Corpus | CorpusFile] = open_corpus if cls.streams_corpus else load_corpus
    source: Corpus | CorpusFile | None = None
    fingerprint = known_fingerprint(corpus_path)
    if fingerprint is None:  # read it once: the build below reads from the same object
        source = read(corpus_path)
        fingerprint = source.fingerprint
    index_dir = _cache_folder(cls.kind, corpus_path, fingerprint, settings.model_dump())
    index_dir.parent.mkdir(parents=True, exist_ok=True)
    # Several processes (ranks of a distributed run, parallel evaluations) may open the same index at
    # once: the first builds it under the lock, the others wait and then load what it wrote.
    with FileLock(f"{index_dir}.lock"):
        if has_index(index_dir):
            try:
                retriever = cls.load(index_dir, **runtime)
            except BadIndexError as err:
                logger.warning("rebuilding the cached index %s: %s", index_dir, err)
            else:
                try:
                    _check_match(retriever, index_dir, corpus_path, settings, chosen)
                except IndexMismatchError as err:
                    retriever.close()
                    logger.warning("rebuilding the cached index %s: %s", index_dir, err)
                else:
                    return retriever
        return cls.build(
            source or read(corpus_path), index_dir, settings, show_progress=show_progress, **runtime
        )


def _split_options(
    cls: type[IndexedRetriever], kind: str, options: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Settings (they decide the index) apart from the declared runtime options (those of ``load``)."""
    fields = set(cls.settings_type.model_fields)
    runtime_names = cls.runtime_options
    unknown = sorted(set(options) - fields - runtime_names)
    if unknown:
        raise SettingsError(
            f"unknown {kind} option {unknown[0]!r}; settings: {', '.join(cls.settings_type.model_fields)}; "
            f"runtime options: {', '.join(sorted(runtime_names))}"
        )
    chosen = {key: value for key, value in options.items() if key in fields}
    return chosen, {key: value for key, value in options.items() if key in runtime_names}


def _cache_folder(kind: str, corpus_path: Path, fingerprint: str, settings: dict[str, Any]) -> Path:
    key = json.dumps([FORMAT_VERSION, kind, fingerprint, settings], sort_keys=True)
    name = f"{kind}-{corpus_path.parent.name}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    return cache_dir() / "indexes" / name


def _check_match(
    retriever: IndexedRetriever, index_dir: Path, corpus_path: Path | None, settings: Any, chosen: set[str]
) -> None:
    """Refuse an index built from another corpus than ``corpus_path`` or with other explicit settings."""
    kind = retriever.kind
    if corpus_path is not None:
        wanted = corpus_fingerprint(corpus_path)
        if wanted != retriever.corpus_fingerprint:
            raise IndexMismatchError(
                f"index {index_dir} was built from another corpus than {corpus_path} (corpus fingerprint "
                f"{retriever.corpus_fingerprint[:12]}, not {wanted[:12]}); "
                f"{rebuild_hint(index_dir, kind, str(corpus_path))}"
            )
    asked = settings.model_dump(include=chosen)
    built = retriever.settings.model_dump(include=chosen)
    for key in sorted(asked):
        if asked[key] != built[key]:
            raise IndexMismatchError(
                f"index {index_dir} was built with {key}={built[key]!r}, not {asked[key]!r}; leave {key} "
                f"out to use the index as built, or build another index with {key}={asked[key]!r}"
            )
