"""Text-to-SQL examples read from the seed's parquet files, judged like Spider / BIRD by the sandboxed
executor (``SqlTask``), with the examples given instead of read from a Spider or BIRD folder."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from deepretrieval.sql.compare import Dialect
from deepretrieval.tasks.base import Example
from deepretrieval.tasks.sql import SqlTask

logger = logging.getLogger(__name__)


class ParquetSqlTask(SqlTask):
    """A ``SqlTask`` over given examples (each with ``meta["db_path"]``); the dialect is BIRD's when the
    rows are the seed's BIRD files (execution compared as BIRD's evaluator does), else Spider's. Examples
    whose database file is missing are left out with one warning that counts them."""

    def __init__(
        self,
        name: str,
        splits: dict[str, list[Example]],
        datasets: Sequence[str],
        metrics: Sequence[str] | None = None,
    ):
        dialect: Dialect = "bird" if list(datasets) == ["bird"] else "spider"
        kept = {split: _present(split, examples) for split, examples in splits.items()}
        first = min(kept, key=lambda split: (split != "test", split))
        folder = next((Path(e.meta["db_path"]).parents[1] for e in kept[first]), Path("."))
        super().__init__(
            folder if folder.is_dir() else Path("."), dialect, first, metrics=metrics or ("ex", "executed")
        )
        self.name = name
        self._examples = kept

    @property
    def splits(self) -> list[str]:
        return sorted(self._examples)

    def examples(self, split: str | None = None) -> list[Example]:
        split = split or self.split
        if split not in self._examples:
            raise KeyError(f"task {self.name!r} has no split {split!r}; available: {', '.join(self.splits)}")
        return self._examples[split]


def _present(split: str, examples: list[Example]) -> list[Example]:
    missing = Counter(e.meta["db_id"] for e in examples if not Path(e.meta["db_path"]).is_file())
    if missing:
        logger.warning(
            "%s: left out %d of %d examples whose database file is missing (%s); give the databases' folder "
            "with --option databases=PATH",
            split,
            sum(missing.values()),
            len(examples),
            ", ".join(f"{db}: {n}" for db, n in missing.most_common(5)),
        )
    return [e for e in examples if e.meta["db_id"] not in missing]
