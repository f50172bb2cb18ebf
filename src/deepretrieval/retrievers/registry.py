"""Retriever kinds by name: ``kind -> "module:Class"``, imported only when the kind is used.

A new retriever is one new module plus one line in ``_BUILTIN`` (or a :func:`register` call). Every class
subclasses :class:`~deepretrieval.retrievers.base.Retriever` and declares whether it is ``indexed``:

- index-backed (:class:`~deepretrieval.retrievers.base.IndexedRetriever`; bm25, dense): ``open_retriever(
  kind, corpus=..., index_dir=..., **options)`` loads the index, or builds it; ``options`` are the class's
  settings (``settings_type`` fields) and its declared ``runtime_options``. ``cls.kind`` must equal the
  registered kind (it is written into the index manifest).
- search engines with no index of their own (APIs, services; pubmed, ctgov): ``open_retriever(kind,
  **options)`` returns ``Cls(**options)``; the constructor's keyword arguments are the engine's options
  and it validates them (a one-line ``ValueError`` for a bad one).
"""

from __future__ import annotations

from deepretrieval.registry import Registry
from deepretrieval.retrievers.base import Retriever

_BUILTIN: dict[str, str | type[Retriever]] = {
    "bm25": "deepretrieval.retrievers.bm25.retriever:BM25Retriever",
    "dense": "deepretrieval.retrievers.dense.exact:DenseRetriever",
    "faiss": "deepretrieval.retrievers.dense.faiss_index:FaissRetriever",
    "boolean": "deepretrieval.retrievers.boolean.engine:BooleanRetriever",
    "pubmed": "deepretrieval.retrievers.web.pubmed:PubMedRetriever",
    "ctgov": "deepretrieval.retrievers.web.ctgov:CTGovRetriever",
    "remote": "deepretrieval.retrievers.web.remote:RemoteRetriever",
}
_KINDS: Registry[type[Retriever]] = Registry("retriever", _BUILTIN)


def register(kind: str, target: str | type[Retriever]) -> None:
    """Make ``kind`` open ``target`` (a class, or ``"package.module:Class"`` imported on first use).
    Registering a kind again with the same target is a no-op; with another target, an error."""
    if not isinstance(target, (str, type)):
        raise TypeError(f"retriever target must be a class or 'package.module:Class', got {target!r}")
    _KINDS.register(kind, target)


def known_kinds() -> list[str]:
    """Every registered kind, sorted."""
    return _KINDS.names()


def retriever_class(kind: str) -> type[Retriever]:
    """The class registered as ``kind`` (its module imported now)."""
    cls = _KINDS.get(kind)
    if not (isinstance(cls, type) and issubclass(cls, Retriever)):
        raise TypeError(
            f"retriever {kind!r}: {cls!r} is not a subclass of deepretrieval.retrievers.Retriever"
        )
    if cls.indexed and cls.kind != kind:
        raise ValueError(
            f"retriever {kind!r}: {cls.__module__}:{cls.__qualname__}.kind must be {kind!r} (it names its indexes)"
        )
    return cls
