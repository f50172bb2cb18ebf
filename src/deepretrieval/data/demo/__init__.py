"""The demo collection shipped with the package: lay queries, formal documents (see README.md here)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def demo_dir() -> Path:
    """The folder holding ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/{train,test}.tsv`` (BEIR layout)."""
    folder = Path(str(files(__name__)))
    if not (folder / "corpus.jsonl").is_file():
        raise FileNotFoundError(
            f"the demo collection is missing from {folder}; reinstall deepretrieval "
            "(or, in a checkout, run `python scripts/build_demo_collection.py`)"
        )
    return folder
