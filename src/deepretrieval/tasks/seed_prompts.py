"""The DeepRetrieval paper's own prompts, read from ``data/seed_prompts.yaml``: one :class:`SeedPrompt` per
seed dataset (its template text up to the seed reward's cut point, the prefill after it, where it comes
from) and the published checkpoints each was trained with (:data:`CHECKPOINTS`).

The text is data, not code: slots are ``{name}`` (lower-case letters and ``_``) and are filled by name only,
so the templates' literal JSON braces (``{\\n    "query": "...."\\n}``) stay text. SQL templates derive their
``{schema}`` from the example's database the way the seed's preprocessing did (:func:`spider_schema`,
:func:`bird_schema`).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import Literal

import yaml

DATA_FILE = Path(__file__).resolve().parents[1] / "data" / "seed_prompts.yaml"
CUT_MARKERS = ("Assistant:", "<|im_start|>assistant")
"""Where the seed's reward cuts the decoded text (``extract_solution``): the first ``Assistant:``, else the
first ``<|im_start|>assistant``; what follows (stripped) is the response its format check reads."""
SEED_TOKENS = 512
"""Every seed evaluation script generates up to 512 new tokens (``max_new_tokens=512``)."""
SLOT = re.compile(r"\{([a-z_]+)\}")


def cut(text: str) -> int | None:
    """The offset just after the seed's cut marker in ``text`` (None when it has neither)."""
    for marker in CUT_MARKERS:
        at = text.find(marker)
        if at != -1:
            return at + len(marker)
    return None


@lru_cache(maxsize=256)
def spider_schema(db_path: str) -> str:
    """The seed's Spider schema (``data_preprocess/spider.py`` ``generate_schema_prompt``): ``schema.sql``
    beside the database (else ``<db_id>.sql``) without its lines containing ``insert`` (any case),
    stripped; ``""`` when neither file exists, as in the seed."""
    folder = Path(db_path).parent
    for candidate in (folder / "schema.sql", folder / f"{folder.name}.sql"):
        if candidate.is_file():
            with candidate.open(encoding="utf-8") as handle:
                return "".join(line for line in handle if "insert" not in line.lower()).strip()
    return ""


@lru_cache(maxsize=256)
def bird_schema(db_path: str) -> str:
    """The seed's BIRD schema (``data_preprocess/bird.py`` ``generate_schema_prompt``, no sample rows): the
    ``CREATE`` statement of every table in ``sqlite_master`` order, joined by blank lines. The seed meant to
    skip ``sqlite_sequence`` but compared a row tuple with a string, so it is kept, as here."""
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT sql FROM sqlite_master WHERE type='table'").fetchall()
    return "\n\n".join(sql for (sql,) in rows)


DERIVED: dict[str, Callable[[str], str]] = {"spider_schema": spider_schema, "bird_schema": bird_schema}
"""Slot values computed from the example's database file (``db_path``), by name."""


@dataclass(frozen=True)
class SeedPrompt:
    """One seed dataset's prompt. ``text`` ends at the cut marker; ``text`` + ``prefill`` with the slots
    filled is the seed's string byte for byte. ``data_source`` is the seed parquet's (BEIR and SQL files add
    ``_<split>``), ``task`` our family that judges it, ``answer_key`` the JSON key of its answers,
    ``base_model`` the model its training script starts from, ``derived`` the slots computed from the
    example's database."""

    name: str
    source: str
    function: str
    data_source: str
    task: Literal["literature", "evidence", "beir", "sql"]
    answer_key: str
    base_model: str
    cut: str
    prefill: str
    text: str
    commit: str
    derived: Mapping[str, str] = field(default_factory=dict)

    @property
    def slots(self) -> frozenset[str]:
        return frozenset(SLOT.findall(self.text))

    def fill(self, fields: Mapping[str, str]) -> str:
        """The text with its slots filled (derived slots from ``fields["db_path"]``); a missing field is a
        ``KeyError`` naming it and the fields there are."""
        values = dict(fields)
        for slot, function in self.derived.items():
            if "db_path" not in fields:
                raise KeyError(f"seed template {self.name!r} derives {{{slot}}} from the example's db_path")
            values[slot] = DERIVED[function](str(fields["db_path"]))
        return fill_slots(self.text, values)

    def describe(self) -> str:
        return f"{self.source} {self.function}() @ {self.commit[:7]}"


def fill_slots(text: str, values: Mapping[str, str]) -> str:
    """``text`` with every ``{slot}`` replaced by ``values[slot]`` (the values are not scanned again)."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise KeyError(f"prompt template needs field {name!r}; example has {sorted(values)}")
        return str(values[name])

    return SLOT.sub(value, text)


@dataclass(frozen=True)
class Checkpoint:
    """A published checkpoint: the seed prompt it was trained with, the seed file that says so, and its
    base model when it is not the prompt's training script's."""

    model_id: str
    prompts: str
    evidence: str
    base_model: str | None = None

    @property
    def seed(self) -> SeedPrompt:
        return seed_prompts()[self.prompts]


@cache
def _data() -> dict:
    return yaml.safe_load(DATA_FILE.read_text(encoding="utf-8"))


@cache
def seed_prompts() -> dict[str, SeedPrompt]:
    """Every seed prompt by dataset name (``pubmed``, ``pubmed_32``, ``nq``, ``scifact``, ``spider``...)."""
    raw = _data()
    return {
        name: SeedPrompt(name=name, commit=raw["commit"], **entry) for name, entry in raw["prompts"].items()
    }


@cache
def checkpoints() -> dict[str, Checkpoint]:
    """The published checkpoints by model id (``DeepRetrieval/DeepRetrieval-PubMed-3B``...)."""
    return {model: Checkpoint(model, **entry) for model, entry in _data()["checkpoints"].items()}


def by_data_source(data_source: str) -> SeedPrompt | None:
    """The seed prompt of a seed parquet's ``data_source`` (``pubmed``, ``scifact_train``, ``nq_serini``,
    ``spider_val``...), None when it is not one of the seed's."""
    prompts = seed_prompts().values()
    exact = next((p for p in prompts if p.data_source == data_source), None)
    if exact is not None:
        return exact
    stem, _, _ = data_source.rpartition("_")  # BEIR and SQL files: <data_source>_<split>
    return next((p for p in prompts if p.data_source == stem), None)
