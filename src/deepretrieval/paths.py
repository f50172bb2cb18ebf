"""Where the package keeps what it can rebuild: the user cache (indexes, API answers, exported models)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$DEEPRETRIEVAL_CACHE`` if set, else ``$XDG_CACHE_HOME/deepretrieval`` (``~/.cache/deepretrieval``)."""
    env = os.environ.get("DEEPRETRIEVAL_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "deepretrieval"
