"""Rows of a parquet file in verl's layout, read as examples: the DeepRetrieval paper's preprocessed files
(``data_source``, ``prompt`` = one user message holding its raw prompt, ``reward_model.ground_truth.target``,
``extra_info.split/index``, and the columns its preprocessing kept: ``pub_date``, ``query``...) and the rows
``deepretrieval data export-verl`` writes (``extra_info.example_id``, ``original``, ``meta``; ground truth as
JSON text).

A seed row keeps its stored prompt as the example's ``prompt`` field (minus the seed's prefill, which the
prompting adds back), so a policy reading the seed's files sees the seed's inputs byte for byte. The
template's slots are recovered from the prompt where the text matches the seed's template (the ``original``
baseline's query, a SQL question and schema); where it does not, the prompt alone is kept.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deepretrieval.tasks.base import Example
from deepretrieval.tasks.seed_prompts import SLOT, SeedPrompt, by_data_source

FAMILY_OF_SPEC_TASK = {"beir": "beir", "demo": "beir", "evidence": "evidence", "literature": "literature"}
PAIR_DATASETS = frozenset({"scifact", "scifact_dense"})
"""Seed datasets whose files hold one row per (query, relevant document) pair."""


class ParquetDataError(ValueError):
    """A parquet file that is not in verl's layout as the seed or ``export-verl`` writes it."""


def read_table(path: Path) -> list[dict[str, Any]]:
    """The rows of one parquet file as Python objects (nested structs and lists included)."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ImportError(
            "reading parquet needs pyarrow: pip install pyarrow (or deepretrieval[train])"
        ) from None
    try:
        return pq.read_table(path).to_pylist()
    except (OSError, ValueError) as err:  # ArrowInvalid is a ValueError, ArrowIOError an OSError
        raise ParquetDataError(f"{path}: not a readable parquet file ({err})") from None


def parquet_files(data: Path) -> dict[str, Path]:
    """``data`` as ``{split: file}``: a folder gives one split per ``*.parquet`` file (its stem: train, test,
    val, test_full...); a single file is read whole (its rows name their splits)."""
    if data.is_dir():
        files = {path.stem: path for path in sorted(data.glob("*.parquet"))}
        if not files:
            raise ParquetDataError(f"{data} holds no *.parquet file")
        return files
    if not data.is_file():
        raise ParquetDataError(f"no parquet file or folder at {data}")
    return {"": data}


@dataclass(frozen=True)
class Layout:
    """What a file holds: the family that judges it, and for seed files the seed prompt of every row."""

    family: str
    seed: SeedPrompt | None


def layout(row: Mapping[str, Any], where: str) -> Layout:
    """The layout of one row: a seed data source, or our export (its run spec names the task)."""
    info = row.get("extra_info") or {}
    spec = info.get("deepretrieval")
    seed = by_data_source(str(row.get("data_source", "")))
    if seed is not None and _raw_prompt(row) is not None:
        return Layout(seed.task, seed)
    if isinstance(spec, str):
        task = json.loads(spec)["task"]["name"]
        if task not in FAMILY_OF_SPEC_TASK:
            raise ParquetDataError(
                f"{where}: rows exported from task {task!r} cannot be read back; read its data"
            )
        return Layout(FAMILY_OF_SPEC_TASK[task], None)
    raise ParquetDataError(
        f"{where}: data_source {row.get('data_source')!r} is none of the seed's datasets and the row carries "
        "no deepretrieval run spec: not a seed file nor a `deepretrieval data export-verl` file"
    )


def _raw_prompt(row: Mapping[str, Any]) -> str | None:
    prompt = row.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], Mapping):
        content = prompt[0].get("content")
        return content if isinstance(content, str) else None
    return None


def row_id(data_source: str, info: Mapping[str, Any]) -> str:
    """The example id of a seed row: ``<dataset>-<split>-<index>`` (``pubmed-test-0``, ``scifact-train-12``;
    the split suffix of BEIR and SQL data sources dropped), unless the row names its own."""
    if info.get("example_id"):
        return str(info["example_id"])
    split = str(info.get("split", ""))
    return f"{data_source.removesuffix('_' + split)}-{split}-{info.get('index')}"


def canonical_truth(ground_truth: Any) -> str:
    """A row's ground truth as canonical JSON text (numpy arrays, as verl hands them over, become lists)."""
    if isinstance(ground_truth, str):
        return ground_truth
    return json.dumps(_plain(ground_truth), sort_keys=True, ensure_ascii=False)


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def recover(seed: SeedPrompt, head: str) -> dict[str, str]:
    """The slot values of ``head`` (a prompt up to the seed's cut) when it matches the seed's template,
    else ``{}``."""
    parts = SLOT.split(seed.text)  # literal, slot, literal, slot, ..., literal
    pattern = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>.*?)" for i, p in enumerate(parts))
    match = re.fullmatch(pattern, head, re.DOTALL)
    return dict(match.groupdict()) if match else {}


def seed_example(row: Mapping[str, Any], seed: SeedPrompt, where: str, databases: Path | None) -> Example:
    """One seed row as an example (see the module notes)."""
    prompt = _raw_prompt(row) or ""
    if not prompt.endswith(seed.prefill):
        raise ParquetDataError(
            f"{where}: the prompt does not end with the seed's prefill for {seed.name} ({seed.prefill!r}): "
            "not the seed's file of that dataset"
        )
    head = prompt[: len(prompt) - len(seed.prefill)]
    info = row.get("extra_info") or {}
    fields = {**recover(seed, head), "prompt": head}
    target = (row.get("reward_model") or {}).get("ground_truth")
    meta: dict[str, Any] = {"ground_truth": canonical_truth(target), "data_source": row.get("data_source")}
    if row.get("pub_date"):
        meta["pub_date"] = str(row["pub_date"])
    original = info.get("original") or fields.get("query") or fields.get("question") or _kept_column(row)
    if seed.task == "sql":
        meta |= _database(info, databases, where)
        fields.setdefault("evidence", "")
    return Example(
        id=row_id(str(row.get("data_source", "")), info),
        fields=fields,
        truth=_seed_truth(seed, target, where),
        original=original,
        meta=meta,
    )


def _kept_column(row: Mapping[str, Any]) -> str:
    """The original text from the columns the seed's preprocessing kept beside the prompt, if any."""
    for column in ("query", "question", "input"):
        if isinstance(row.get(column), str):
            return row[column].rstrip("\n")
    return ""


def _seed_truth(seed: SeedPrompt, target: Any, where: str) -> Any:
    """The seed's ``ground_truth`` as our truth: qrels (literature, BEIR), answer strings, gold SQL."""
    if not isinstance(target, Mapping) or "target" not in target:
        raise ParquetDataError(f"{where}: reward_model.ground_truth has no 'target'")
    value = _plain(target["target"])
    if seed.task == "sql" or (seed.task == "beir" and isinstance(value, str)):
        return value if seed.task == "sql" else {value: 1}  # SciFact: one row per (claim, document)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ParquetDataError(f"{where}: ground_truth.target must be a list of strings, got {value!r:.80}")
    if seed.task == "evidence":
        return value
    scores = _plain(target.get("score")) or [1] * len(value)
    return {doc: int(score) for doc, score in zip(value, scores)}


def _database(info: Mapping[str, Any], databases: Path | None, where: str) -> dict[str, Any]:
    """``db_id`` and ``db_path`` of a SQL row: the seed's path, re-rooted under ``databases`` when given."""
    path = info.get("db_path")
    if not isinstance(path, str):
        raise ParquetDataError(f"{where}: a SQL row needs extra_info.db_path")
    db_id = Path(path).parent.name
    resolved = databases / db_id / Path(path).name if databases is not None else Path(path)
    return {"db_id": db_id, "db_path": str(resolved), "position": int(info.get("index") or 0)}


def export_example(row: Mapping[str, Any], where: str) -> Example:
    """A row written by ``data export-verl`` (chat-message prompts) as the example it was made from."""
    info = row.get("extra_info") or {}
    if not info.get("example_id"):
        raise ParquetDataError(f"{where}: an exported row needs extra_info.example_id")
    original = str(info.get("original") or "")
    ground_truth = (row.get("reward_model") or {}).get("ground_truth")
    meta = json.loads(info["meta"]) if isinstance(info.get("meta"), str) else {}
    return Example(
        id=str(info["example_id"]),
        fields={"query": original},
        truth=json.loads(ground_truth) if isinstance(ground_truth, str) else _plain(ground_truth),
        original=original,
        meta=meta,
    )


def group_pairs(examples: Sequence[Example]) -> list[Example]:
    """Rows of one query (SciFact's files: one per relevant document) merged into one example whose truth
    is all their documents, in first-seen order; the first row's id, prompt and fields are kept."""
    merged: dict[str, Example] = {}
    for example in examples:
        key = example.fields.get("prompt", example.original)
        first = merged.get(key)
        if first is None:
            merged[key] = example
        else:
            meta = {k: v for k, v in first.meta.items() if k != "ground_truth"}  # no longer one row's
            merged[key] = Example(
                first.id, first.fields, {**first.truth, **example.truth}, first.original, meta
            )
    return list(merged.values())
