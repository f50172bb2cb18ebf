"""The policy card: how a trained policy must be prompted, written beside its weights and read back.

Training writes it into ``final/`` (and every checkpoint); evaluation, the rewrite API and the server read
it so that a policy is prompted exactly as it was trained (reasoning or not, the assistant prefill, the
prompt template, the query mode). Anything the user passes explicitly wins over the card.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from deepretrieval.files import write_json
from deepretrieval.tasks.retrieval import DEFAULT_FEEDBACK_WORDS

CARD_FILE = "deepretrieval_policy.json"


class PolicyCardError(ValueError):
    """A policy card that cannot be read; the message names the file."""


@dataclass(frozen=True)
class PolicyCard:
    """What a policy was trained with. ``template`` is the task's prompt template name (None: the task's
    default); ``query_mode`` how its answers reach the retriever (``rewrite`` or ``expand``); ``feedback``
    how many top results of the user's query its prompt showed (``feedback_words`` words each; 0: none)."""

    reasoning: bool
    prompt_prefill: str = ""
    task: str | None = None
    template: str | None = None
    query_mode: str = "rewrite"
    base_model: str | None = None
    feedback: int = 0
    feedback_words: int = DEFAULT_FEEDBACK_WORDS

    def write(self, folder: str | Path) -> Path:
        """Write ``deepretrieval_policy.json`` into ``folder`` atomically."""
        return write_json(Path(folder) / CARD_FILE, asdict(self), indent=2)

    @classmethod
    def read(cls, folder: str | Path) -> PolicyCard | None:
        """The card in ``folder``; ``None`` when there is none (a plain Hugging Face model)."""
        path = Path(folder) / CARD_FILE
        if not path.is_file():
            return None
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as err:
            raise PolicyCardError(f"{path}: not valid JSON ({err})") from None
        known = {f.name for f in fields(cls)}
        if not isinstance(raw, dict) or "reasoning" not in raw:
            raise PolicyCardError(f"{path}: expected a JSON object with at least 'reasoning'")
        unknown = sorted(set(raw) - known)
        if unknown:
            raise PolicyCardError(f"{path}: unknown keys {unknown}; known: {sorted(known)}")
        for key, value in raw.items():
            expected = _TYPES.get(key, str)
            wrong_type = not isinstance(value, expected) or (expected is int and isinstance(value, bool))
            if wrong_type and not (value is None and key not in _REQUIRED_TEXT):
                raise PolicyCardError(f"{path}: {key} must be {expected.__name__}, got {value!r}")
        return cls(**raw)


_REQUIRED_TEXT = {"reasoning", "prompt_prefill", "query_mode", "feedback", "feedback_words"}
_TYPES: dict[str, type] = {"reasoning": bool, "feedback": int, "feedback_words": int}
