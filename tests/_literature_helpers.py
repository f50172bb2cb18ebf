"""Shared by the PubMed / ClinicalTrials.gov client and stand-in tests: a small literature collection."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

TOPICS = ("aspergillosis", "melasma", "asthma")
N_DOCS = 60


def pmid(i: int) -> str:
    return str(20000 + i)


def nct(i: int) -> str:
    return f"NCT{i:08d}"


def write_corpus(folder: Path, id_of: Callable[[int], str] = pmid) -> Path:
    """60 documents in a BEIR folder: every one has "study", a third each one topic, and each a unique
    marker word ``w<i>x``, so that every query's exact answer is known."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "corpus.jsonl").open("w", encoding="utf-8") as out:
        for i in range(N_DOCS):
            doc = {"_id": id_of(i), "title": f"{TOPICS[i % 3]} study", "text": f"A trial; marker w{i}x."}
            out.write(json.dumps(doc) + "\n")
    return folder


def files_containing(root: Path, secret: str) -> list[Path]:
    """Every file under ``root`` whose bytes contain ``secret``."""
    return [p for p in root.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
