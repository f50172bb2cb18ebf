"""The paper's own no-model baseline for literature search: its "original query" of a PICO topic is the
four PICO parts joined by OR (``code/src/eval/SearchEngine/eval_pubmed_base.py`` and
``eval_ctgov_base.py`` @ 001a563: ``f"{P} OR {I} OR {C} OR {O}"``), not the description as written."""

from __future__ import annotations

from collections.abc import Sequence

from deepretrieval.tasks.base import Example

PICO_PARTS = ("P", "I", "C", "O")


def pico_parts(text: str) -> dict[str, str]:
    """The ``P: ...`` / ``I: ...`` / ``C: ...`` / ``O: ...`` lines of a PICO description."""
    parts = {}
    for line in text.splitlines():
        key, sep, value = line.partition(": ")
        if sep and key in PICO_PARTS:
            parts[key] = value.strip()
    return parts


class PicoOr:
    """Answers ``P OR I OR C OR O`` for each PICO topic, as the paper's search-engine baseline did."""

    name = "pico-or"
    query_mode = "rewrite"

    def answers(self, examples: Sequence[Example]) -> list[str]:
        answers = []
        for example in examples:
            parts = pico_parts(example.original)
            if set(parts) != set(PICO_PARTS):
                raise ValueError(
                    f"--policy pico-or needs PICO descriptions (P:, I:, C:, O: lines); example {example.id!r} "
                    "has none: use it on pubmed-pico / ctgov-pico or the seed's literature files"
                )
            answers.append(" OR ".join(parts[key] for key in PICO_PARTS))
        return answers
