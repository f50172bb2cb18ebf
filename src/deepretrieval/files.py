"""Writing files so that no reader ever sees half of one: write a temporary file beside the target, flush
it to disk, then rename it over the target (``os.replace`` is atomic on POSIX and Windows)."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


@contextlib.contextmanager
def atomic_write(path: str | Path) -> Iterator[BinaryIO]:
    """A binary handle whose content replaces ``path`` only when the block ends without an error.

    The temporary name is unique, so concurrent writers of the same target never share a partial file
    (the last rename wins, whole). A failed or interrupted block leaves ``path`` untouched."""
    target = Path(path)
    partial = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.partial")
    try:
        with partial.open("wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> Path:
    """Replace ``path`` with ``text`` (UTF-8) atomically; the parent folder is created if missing."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(target) as handle:
        handle.write(text.encode("utf-8"))
    return target


def write_json(path: str | Path, payload: object, indent: int | None = 1) -> Path:
    """Replace ``path`` with ``payload`` as JSON (UTF-8, non-ASCII kept) atomically."""
    return write_text(path, json.dumps(payload, indent=indent, ensure_ascii=False) + "\n")
