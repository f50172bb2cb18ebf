"""The policy card: how a trained policy must be prompted (its :class:`~deepretrieval.prompting.Prompting`)
plus where it came from, written beside its weights and read back.

Training writes it into ``final/`` (and every checkpoint); evaluation, the rewrite API and the server read
it, through ``prompting.resolve``, so that a policy is prompted exactly as it was trained. Anything the
user chooses explicitly wins over the card.

The paper's published checkpoints (``DeepRetrieval/DeepRetrieval-PubMed-3B``...) carry no card; they get a
built-in one (:func:`published_card`): the seed prompting they were trained with, by model id.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepretrieval.files import write_json
from deepretrieval.prompting import (
    DEFAULT_TEMPLATE,
    PLAIN_TOKENS,
    REASONING_TOKENS,
    SEED_PRESET,
    Prompting,
    preset,
)
from deepretrieval.tasks import task_family
from deepretrieval.tasks.seed_prompts import checkpoints

CARD_FILE = "deepretrieval_policy.json"
CARD_VERSION = 2


class PolicyCardError(ValueError):
    """A policy card that cannot be read; the message names the file."""


@dataclass(frozen=True)
class PolicyCard:
    """How a policy was trained to be prompted, the task family it was trained on, and its base model."""

    prompting: Prompting
    task: str | None = None
    base_model: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "version": CARD_VERSION,
            "prompting": self.prompting.to_json(),
            "task": self.task,
            "base_model": self.base_model,
        }

    def write(self, folder: str | Path) -> Path:
        """Write ``deepretrieval_policy.json`` into ``folder`` atomically."""
        return write_json(Path(folder) / CARD_FILE, self.to_json(), indent=2)

    @classmethod
    def read(cls, folder: str | Path) -> PolicyCard | None:
        """The card in ``folder``; ``None`` when there is none (a plain Hugging Face model). Cards written
        before the prompting had one home (flat ``reasoning``, ``prompt_prefill``...) are read too."""
        path = Path(folder) / CARD_FILE
        if not path.is_file():
            return None
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as err:
            raise PolicyCardError(f"{path}: not valid JSON ({err})") from None
        if not isinstance(raw, dict) or not ("prompting" in raw or "reasoning" in raw):
            raise PolicyCardError(f"{path}: expected a JSON object with 'prompting'")
        try:
            return _from_json(raw) if "prompting" in raw else _from_flat(raw)
        except (TypeError, ValueError) as err:
            raise PolicyCardError(f"{path}: {err}") from None


def _text_or_none(raw: dict[str, Any], key: str) -> str | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{key} must be a string, got {value!r}")
    return value


def _from_json(raw: dict[str, Any]) -> PolicyCard:
    unknown = sorted(set(raw) - {"version", "prompting", "task", "base_model"})
    if unknown:
        raise ValueError(f"unknown keys {unknown}; known: base_model, prompting, task, version")
    if not isinstance(raw["prompting"], dict):
        raise TypeError("prompting must be an object")
    return PolicyCard(
        Prompting.from_json(raw["prompting"]), _text_or_none(raw, "task"), _text_or_none(raw, "base_model")
    )


# The first card format: flat keys, a template of None meaning the task family's own.
_FLAT = {
    "reasoning": "reasoning",
    "prompt_prefill": "prefill",
    "template": "template",
    "query_mode": "query_mode",
    "feedback": "feedback",
    "feedback_words": "feedback_words",
}


def _from_flat(raw: dict[str, Any]) -> PolicyCard:
    unknown = sorted(set(raw) - set(_FLAT) - {"task", "base_model"})
    if unknown:
        raise ValueError(f"unknown keys {unknown}; known: {sorted([*_FLAT, 'task', 'base_model'])}")
    prompting = {new: raw[old] for old, new in _FLAT.items() if raw.get(old) is not None}
    task = _text_or_none(raw, "task")
    if "template" not in prompting:
        prompting["template"] = _family_template(task)
    reasoning = prompting.get("reasoning")
    prompting["max_new_tokens"] = REASONING_TOKENS if reasoning else PLAIN_TOKENS
    return PolicyCard(Prompting.from_json(prompting), task, _text_or_none(raw, "base_model"))


def _family_template(task: str | None) -> str:
    return DEFAULT_TEMPLATE if task is None else task_family(task).template


_HF_CACHE_FOLDER = re.compile(r"models--([^/\\]+?)--([^/\\]+)[/\\]snapshots[/\\][^/\\]+[/\\]?$")


def model_id(spec: str) -> str:
    """The hub id a model spec names: the spec itself, or for a folder of the Hugging Face cache
    (``.../models--ORG--NAME/snapshots/REV``) the ``ORG/NAME`` it caches."""
    match = _HF_CACHE_FOLDER.search(str(spec))
    return f"{match.group(1)}/{match.group(2)}" if match else str(spec)


def published_card(spec: str) -> PolicyCard | None:
    """The built-in card of one of the paper's published checkpoints (by hub id, or its folder in the
    Hugging Face cache): the seed prompting of the dataset it was trained on, its task family and base
    model. None for any other model."""
    checkpoint = checkpoints().get(model_id(spec))
    if checkpoint is None:
        return None
    seed = checkpoint.seed
    prompting = Prompting(**preset(SEED_PRESET + seed.name))
    return PolicyCard(prompting, task=seed.task, base_model=checkpoint.base_model or seed.base_model)
