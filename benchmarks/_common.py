"""What the benchmarks share and the package must not know: where this checkout's benchmark data is, and
the test doubles kept under ``tests/`` (the stand-in search servers)."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from types import ModuleType

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """``$DEEPRETRIEVAL_DATA`` if set, else ``../shared/data`` beside the repository checkout."""
    env = os.environ.get("DEEPRETRIEVAL_DATA")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


def tests_module(name: str) -> ModuleType:
    """The module ``name`` of the repository's ``tests`` folder (e.g. ``standin``), imported from there."""
    tests = str(REPO_ROOT / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    return importlib.import_module(name)
