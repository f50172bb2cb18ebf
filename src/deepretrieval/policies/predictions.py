"""Score any external system's outputs with our judges: ``predictions:PATH``.

Two layouts are read:

* **lines**: one prediction per line, in the order of the split file (Spider's ``SQL<TAB>db_id`` lines
  included: the db_id is checked against the example's database). The file has one line per record of the
  split, so for Spider dev 1,034 lines even though the examples of a missing database are skipped
  (their lines are read and ignored). Examples carrying ``meta["position"]`` (SQL) are matched to the line
  of that 0-based record index, others to their index in the split;
* **JSONL**: one ``{"id": ..., "prediction": ...}`` object per line, matched by example id (``qid``,
  ``query_id`` and ``_id`` name the id too).

The file is UTF-8 (a byte-order mark is dropped) and lines end at ``\\n`` only (``\\r\\n`` too): a query
holding U+2028 or another character Python's ``splitlines`` breaks at stays one line. The layout is decided
from the whole file: JSONL when every non-blank line is a JSON object, lines when none is, and an error
naming the first line of each kind when they are mixed. A file that does not line up with the split (a
missing or extra line, a missing id, a record without an id, a db_id of another database) is a one-line
error: a misaligned file would otherwise be scored silently wrong.
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


ID_KEYS = ("id", "qid", "query_id", "_id")
"""The keys a JSONL record may name its example by, in the order they are looked for."""


class Predictions:
    """An answer policy that reads its answers from a file (see the module docstring for the layouts)."""

    query_mode = "rewrite"

    def __init__(self, path: str | Path, name: str | None = None) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise PredictionsError(
                f"predictions:{self.path} is a folder; give the predictions file (one prediction per line "
                'in split order, or JSONL {"id": ..., "prediction": ...})'
            )
        if not self.path.is_file():
            raise PredictionsError(f"predictions file {self.path} does not exist")
        self._lines = read_lines(self.path)
        if not any(line.strip() for line in self._lines):
            raise PredictionsError(f"predictions file {self.path} is empty")
        self.name = name or f"predictions:{self.path.name}"
        records = [_json_object(line) if line.strip() else None for line in self._lines]
        self._by_id = self._read_jsonl(records) if self._is_jsonl(records) else None

    def _is_jsonl(self, records: list[dict | None]) -> bool:
        """JSONL when every non-blank line is a JSON object, lines when none is; both is an error."""
        kinds: dict[bool, int] = {}  # is a JSON object -> first line number of that kind
        for number, (line, record) in enumerate(zip(self._lines, records), 1):
            if line.strip():
                kinds.setdefault(record is not None, number)
        if len(kinds) == 2:
            raise PredictionsError(
                f"{self.path} mixes JSON records (line {kinds[True]}) with plain lines (line {kinds[False]}); "
                'give JSONL {"id": ..., "prediction": ...} on every line, or one prediction per line'
            )
        return True in kinds

    def _read_jsonl(self, records: list[dict | None]) -> dict[str, str]:
        by_id: dict[str, str] = {}
        for number, record in enumerate(records, 1):
            if record is None:
                continue
            key = next((k for k in ID_KEYS if isinstance(record.get(k), (str, int))), None)
            if key is None or not isinstance(record.get("prediction"), str):
                raise PredictionsError(
                    f'{self.path}:{number}: expected {{"id": ..., "prediction": "..."}} with a string '
                    f"prediction (the id may be named {', '.join(ID_KEYS)}); got keys {', '.join(record) or 'none'}"
                )
            example_id = str(record[key])
            if example_id in by_id:
                raise PredictionsError(f"{self.path}:{number}: id {example_id!r} appears twice")
            by_id[example_id] = record["prediction"]
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


def read_lines(path: Path) -> list[str]:
    """The lines of a UTF-8 text file, split at ``\\n`` only (a ``\\r`` before it and a leading byte-order
    mark are dropped; no trailing empty line for a final ``\\n``)."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise PredictionsError(f"{path} is not UTF-8 text ({err.reason} at byte {err.start})") from None
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    return lines[:-1] if lines and lines[-1] == "" else lines


def _json_object(line: str) -> dict | None:
    """The JSON object a line holds, else None (a SQL statement or a query is never one)."""
    if not line.lstrip().startswith("{"):
        return None
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
