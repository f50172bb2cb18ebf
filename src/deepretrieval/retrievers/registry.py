"""Retriever kinds by name: ``kind -> "module:Class"``, imported only when the kind is used.

A new retriever is one new module plus one line in ``_KINDS`` (or a :func:`register` call). Two shapes of
retriever are registered alike and told apart by whether the class has ``build`` and ``load``:

- index-backed (:class:`~deepretrieval.retrievers.base.IndexedRetriever`; bm25, dense): ``open_retriever(
  kind, corpus=..., index_dir=..., **options)`` loads the index, or builds it; ``options`` are the class's
  settings (``settings_type`` fields) and the runtime options of its ``load``. ``cls.kind`` must equal
  the registered kind (it is written into the index manifest).
- search engines with no index of their own (APIs, services; pubmed, ctgov): ``open_retriever(kind,
  **options)`` returns ``Cls(**options)``; the constructor's keyword arguments are the engine's options
  and it validates them (a one-line ``ValueError`` for a bad one).
"""

from __future__ import annotations

import importlib
import re

_KINDS: dict[str, str | type] = {
    "bm25": "deepretrieval.retrievers.bm25.retriever:BM25Retriever",
    "dense": "deepretrieval.retrievers.dense.exact:DenseRetriever",
    "faiss": "deepretrieval.retrievers.dense.faiss_index:FaissRetriever",
    "boolean": "deepretrieval.retrievers.boolean:BooleanRetriever",
    "pubmed": "deepretrieval.retrievers.web.pubmed:PubMedRetriever",
    "ctgov": "deepretrieval.retrievers.web.ctgov:CTGovRetriever",
    "remote": "deepretrieval.retrievers.web.remote:RemoteRetriever",
}
_KIND = re.compile(r"[a-z][a-z0-9_-]*")
_TARGET = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


def register(kind: str, target: str | type) -> None:
    """Make ``kind`` open ``target`` (a class, or ``"package.module:Class"`` imported on first use).
    Registering a kind again with the same target is a no-op; with another target, an error."""
    if not isinstance(kind, str) or not _KIND.fullmatch(kind):
        raise ValueError(f"retriever kind must be lower-case letters, digits, '-' or '_', got {kind!r}")
    if isinstance(target, str) and not _TARGET.fullmatch(target):
        raise ValueError(f"retriever target must look like 'package.module:Class', got {target!r}")
    if not isinstance(target, (str, type)):
        raise TypeError(f"retriever target must be a class or 'package.module:Class', got {target!r}")
    current = _KINDS.get(kind)
    if current is not None and current != target:
        raise ValueError(f"retriever kind {kind!r} is already registered as {_name(current)}")
    _KINDS[kind] = target


def known_kinds() -> list[str]:
    """Every registered kind, sorted."""
    return sorted(_KINDS)


def retriever_class(kind: str) -> type:
    """The class registered as ``kind`` (its module imported now)."""
    target = _KINDS.get(kind)
    if target is None:
        raise ValueError(f"unknown retriever {kind!r}; known: {', '.join(known_kinds())}")
    if isinstance(target, type):
        cls = target
    else:
        module, _, name = target.partition(":")
        cls = getattr(importlib.import_module(module), name, None)
        if not isinstance(cls, type):
            raise TypeError(f"retriever {kind!r}: {target} is not a class")
    if is_indexed(cls) and getattr(cls, "kind", None) != kind:
        raise ValueError(f"retriever {kind!r}: {_name(cls)}.kind must be {kind!r} (it names its indexes)")
    return cls


def is_indexed(cls: type) -> bool:
    """Whether ``cls`` is index-backed (has ``build`` and ``load``) rather than a search engine."""
    return callable(getattr(cls, "build", None)) and callable(getattr(cls, "load", None))


def _name(target: str | type) -> str:
    return target if isinstance(target, str) else f"{target.__module__}:{target.__qualname__}"
