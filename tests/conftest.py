"""Shared fixtures: the real benchmark data in ../shared/data (skip when absent, fail in CI)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """``$DEEPRETRIEVAL_DATA`` if set, else ``../shared/data`` beside the repository checkout."""
    env = os.environ.get("DEEPRETRIEVAL_DATA")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


def _require(path: Path) -> Path:
    if path.exists():
        return path
    message = f"benchmark data not found at {path} (set DEEPRETRIEVAL_DATA)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + "; CI must have ../shared/data")
    pytest.skip(message)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder holding scifact/, spider/, squad/, nq-open/."""
    return _require(shared_data_dir())


@pytest.fixture(scope="session")
def scifact_dir(shared_data: Path) -> Path:
    return _require(shared_data / "scifact")


@pytest.fixture(scope="session")
def spider_dir(shared_data: Path) -> Path:
    return _require(shared_data / "spider")


@pytest.fixture(scope="session")
def literature(shared_data: Path) -> Path:
    """The literature folder (CLEF TAR 2017 with its corpus, the PICO benchmarks, recorded API answers)."""
    _require(shared_data / "literature" / "clef-tar-2017" / "corpus.jsonl")
    return shared_data / "literature"


@pytest.fixture(scope="session")
def scifact_bm25(scifact_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """A real BM25 index over the full SciFact corpus, built once per test session (~1 s)."""
    from deepretrieval.retrievers.bm25 import BM25Retriever
    from deepretrieval.retrievers.corpus import load_corpus

    return BM25Retriever.build(
        load_corpus(scifact_dir), tmp_path_factory.mktemp("scifact-bm25"), show_progress=False
    )


@pytest.fixture(scope="session")
def scifact_task(scifact_dir: Path, scifact_bm25):
    from deepretrieval.tasks import load_task

    return load_task("beir", scifact_dir, retriever=scifact_bm25, metrics=["ndcg@10", "recall@100"])


@pytest.fixture(scope="session")
def squad_file(shared_data: Path) -> Path:
    return _require(shared_data / "squad" / "dev-v1.1.json")


@pytest.fixture
def python_sigint():
    """Python's own Ctrl-C handler for the test (a shell that starts a job in the background has the job
    ignore SIGINT, and a test of Ctrl-C handling needs it delivered as KeyboardInterrupt)."""
    import signal

    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)
