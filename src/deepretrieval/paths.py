"""Where things live: the shared benchmark data and the user cache."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def shared_data_dir() -> Path:
    """``$DEEPRETRIEVAL_DATA`` if set, else ``../shared/data`` beside the repository checkout."""
    env = os.environ.get("DEEPRETRIEVAL_DATA")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


def cache_dir() -> Path:
    """``$DEEPRETRIEVAL_CACHE`` if set, else ``$XDG_CACHE_HOME/deepretrieval`` (``~/.cache/deepretrieval``)."""
    env = os.environ.get("DEEPRETRIEVAL_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "deepretrieval"
