"""Score any external system's outputs with our judges: ``predictions:PATH``.

Two layouts are read:

* **lines**: one prediction per line, in the order of the split file (Spider's ``SQL<TAB>db_id`` lines
  included: the db_id is checked against the example's database). The file has one line per record of the
  split, so for Spider dev 1,034 lines even though the examples of a missing database are skipped
  (their lines are read and ignored). Examples carrying ``meta["position"]`` (SQL) are matched to the line
  of that 0-based record index, others to their index in the split;
* **JSONL**: one ``{"id": ..., "prediction": ...}`` object per line, matched by example id (detected when
  the first line is such an object).

A file that does not line up with the split (a missing or extra line, a missing id, a db_id of another
database) is a one-line error: a misaligned file would otherwise be scored silently wrong.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

from deepretrieval.tasks.base import Example

logger = logging.getLogger(__name__)


class PredictionsError(ValueError):
    """A predictions file that cannot be read or does not line up with the split."""


class Predictions:
    """An answer policy that reads its answers from a file (see the module docstring for the layouts)."""

    query_mode = "rewrite"

    def __init__(self, path: str | Path, name: str | None = None) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise PredictionsError(f"predictions file {self.path} does not exist")
        try:
            self._lines = self.path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as err:
            raise PredictionsError(f"{self.path} is not UTF-8 text ({err.reason})") from None
        if not self._lines:
            raise PredictionsError(f"predictions file {self.path} is empty")
        self.name = name or f"predictions:{self.path.name}"
        self._by_id = self._read_jsonl() if _is_jsonl_record(self._lines[0]) else None

    def _read_jsonl(self) -> dict[str, str]:
        by_id: dict[str, str] = {}
        for number, line in enumerate(self._lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                raise PredictionsError(f"{self.path}:{number}: not a JSON object") from None
            if not _is_record(record):
                raise PredictionsError(
                    f'{self.path}:{number}: expected {{"id": ..., "prediction": "..."}} with a string prediction'
                )
            key = str(record["id"])
            if key in by_id:
                raise PredictionsError(f"{self.path}:{number}: id {key!r} appears twice")
            by_id[key] = record["prediction"]
        return by_id

    def answers(self, examples: Sequence[Example]) -> list[str]:
        """The prediction of every example of the split (given whole and in split order)."""
        if self._by_id is not None:
            return self._match_ids(examples)
        return self._match_lines(examples)

    def _match_ids(self, examples: Sequence[Example]) -> list[str]:
        assert self._by_id is not None
        missing = [ex.id for ex in examples if ex.id not in self._by_id]
        if missing:
            raise PredictionsError(
                f"{self.path} has no prediction for {len(missing)} of the {len(examples)} examples "
                f"(first: {missing[0]!r}); is it for this task and split?"
            )
        extra = set(self._by_id) - {ex.id for ex in examples}
        if extra:  # e.g. the examples of a database that is absent here: harmless, but said
            logger.warning("%s: %d ids are not examples of this split (ignored)", self.path, len(extra))
        return [self._by_id[ex.id] for ex in examples]

    def _match_lines(self, examples: Sequence[Example]) -> list[str]:
        positions = [int(ex.meta.get("position", index)) for index, ex in enumerate(examples)]
        expected = max(positions, default=-1) + 1
        if len(self._lines) != expected:
            raise PredictionsError(
                f"{self.path} has {len(self._lines)} lines but the split has {expected} records: the file "
                "needs one prediction per line in split order (or JSONL with id and prediction)"
            )
        answers = []
        for example, position in zip(examples, positions):
            line = self._lines[position]
            db_id = example.meta.get("db_id")
            if db_id is not None and "\t" in line:
                line, found = (part.strip() for part in line.rsplit("\t", 1))
                if found != db_id:
                    raise PredictionsError(
                        f"{self.path}:{position + 1}: db_id {found!r} but example {example.id} is on "
                        f"{db_id!r}; are the lines in split order?"
                    )
            answers.append(line.strip())
        return answers


def _is_record(value: object) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("id"), (str, int))
        and isinstance(value.get("prediction"), str)
    )


def _is_jsonl_record(line: str) -> bool:
    """Whether the first line looks like ``{"id": ..., "prediction": ...}`` (never true of SQL or a query)."""
    if not line.lstrip().startswith("{"):
        return False
    try:
        value = json.loads(line)
    except ValueError:
        return False
    return isinstance(value, dict) and "id" in value
