"""Things found by name: one small registry for retriever kinds, tasks, policies and reward schemes.

A target is given as the object itself or as a ``"package.module:attr"`` string, imported on first use (so
naming a kind never imports its heavy dependencies)::

    KINDS: Registry[type] = Registry("retriever", {"bm25": "deepretrieval.retrievers.bm25:BM25Retriever"})
    KINDS.get("bm25")          # imports the module now, then remembers the class
    KINDS.get("bm52")          # ValueError: unknown retriever 'bm52'; did you mean 'bm25'? known: bm25
"""

from __future__ import annotations

import difflib
import importlib
import re
from collections.abc import Mapping
from typing import Generic, TypeVar, cast

T = TypeVar("T")

NAME = re.compile(r"[a-z][a-z0-9_-]*")
TARGET = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


class Registry(Generic[T]):
    """Names -> targets. ``what`` names the registered things in errors ("retriever", "task", ...)."""

    def __init__(self, what: str, targets: Mapping[str, T | str] | None = None) -> None:
        self.what = what
        self._targets: dict[str, T | str] = {}
        self._loaded: dict[str, T] = {}
        for name, target in (targets or {}).items():
            self.register(name, target)

    def register(self, name: str, target: T | str) -> None:
        """Make ``name`` find ``target``. Registering a name again with the same target is a no-op; with
        another target, an error. Names are lower-case letters, digits, '-' and '_'."""
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise ValueError(f"{self.what} name must be lower-case letters, digits, '-' or '_', got {name!r}")
        if isinstance(target, str) and not TARGET.fullmatch(target):
            raise ValueError(f"{self.what} target must look like 'package.module:attr', got {target!r}")
        current = self._targets.get(name, target)
        if current != target:
            raise ValueError(f"{self.what} {name!r} is already registered as {_describe(current)}")
        self._targets[name] = target

    def get(self, name: str) -> T:
        """The target registered as ``name`` (a string target is imported now, once)."""
        if name in self._loaded:
            return self._loaded[name]
        if name not in self._targets:
            raise ValueError(self._unknown(name))
        target = self._targets[name]
        if isinstance(target, str):
            module, _, attr = target.partition(":")
            loaded = getattr(importlib.import_module(module), attr, _MISSING)
            if loaded is _MISSING:
                raise ImportError(f"{self.what} {name!r}: module {module} has no attribute {attr!r}")
            target = cast(T, loaded)
        self._loaded[name] = target
        return target

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        return sorted(self._targets)

    def __contains__(self, name: object) -> bool:
        return name in self._targets

    def _unknown(self, name: str) -> str:
        close = difflib.get_close_matches(str(name), self.names(), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ";"
        return f"unknown {self.what} {name!r}{hint} known: {', '.join(self.names())}"


_MISSING = object()


def _describe(target: object) -> str:
    if isinstance(target, str):
        return target
    return f"{getattr(target, '__module__', '?')}:{getattr(target, '__qualname__', repr(target))}"
