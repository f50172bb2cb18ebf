"""An append-only JSONL of a policy's completions, so that an interrupted evaluation resumes where it stopped.

Line 1 is ``{"key": {...}}``: what the completions depend on (the policy's fingerprint, the task and its
judge, the split, the prompting). Every further line is ``{"id": ..., "completion": ...}``, appended and
flushed to disk batch by batch. On reopening with the same key the logged completions are reused; with
another key the log is started afresh. A torn last line (the process died mid-write) is cut off; a
damaged line before it is an error, since the log can no longer be trusted.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from deepretrieval.files import write_text


class GenerationLogError(ValueError):
    """A log whose contents cannot be trusted; the message says which file to delete."""


class GenerationLog:
    """``done`` maps example id -> completion for what is already logged under ``key``."""

    def __init__(self, path: str | Path, key: Mapping[str, Any]) -> None:
        self.path = Path(path)
        self.key = json.loads(json.dumps(key))  # normalised as it will read back
        self.done: dict[str, str] = {}
        self.restarted = False
        good_bytes = self._read() if self.path.is_file() else None
        if good_bytes is None:
            self.restarted = self.path.is_file()
            self._start()
        else:
            with self.path.open("r+b") as handle:  # drop a torn last line before appending after it
                handle.truncate(good_bytes)
        self._handle = self.path.open("a", encoding="utf-8")

    def _read(self) -> int | None:
        """Load the logged completions; the byte length of the intact part, or None for another key.
        Only newline-terminated lines count: an unterminated last line is a write that was cut short."""
        *lines, _torn = self.path.read_bytes().split(b"\n")
        try:
            header = json.loads(lines[0]) if lines else None
        except ValueError:
            return None
        if not isinstance(header, dict) or header.get("key") != self.key:
            return None
        for number, line in enumerate(lines[1:], 2):
            try:
                record = json.loads(line)
                if not isinstance(record["completion"], str):
                    raise TypeError
                self.done[str(record["id"])] = record["completion"]
            except (ValueError, KeyError, TypeError):
                raise GenerationLogError(
                    f"{self.path}:{number} is damaged; delete the file to generate again"
                ) from None
        return sum(len(line) + 1 for line in lines)

    def _start(self) -> None:
        """A fresh log holding only the header, published atomically."""
        write_text(self.path, json.dumps({"key": self.key}) + "\n")

    def append(self, completions: Iterable[tuple[str, str]]) -> None:
        """Log ``(id, completion)`` pairs and push them to disk (a crash after this loses none of them)."""
        pairs = list(completions)
        if not pairs:
            return
        self._handle.write("".join(json.dumps({"id": k, "completion": c}) + "\n" for k, c in pairs))
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self.done.update(pairs)

    def close(self) -> None:
        self._handle.close()
