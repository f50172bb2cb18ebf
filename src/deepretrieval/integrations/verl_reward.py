"""The reward of a verl run, computed by the same ``BatchReward`` as the TRL path.

verl hands each sample over as ``(data_source, solution_str, ground_truth, extra_info)``, the row written by
``deepretrieval data export-verl`` (or the paper's own files, read as a ``parquet`` task) plus the decoded
completion; a raw prompting's prefill, which ends the row's prompt, is put back before the completion. The task is rebuilt once per process from
the run spec the row carries (``extra_info["deepretrieval"]``, or ``$DEEPRETRIEVAL_VERL_SPEC``: inline JSON
or a run-config file) with ``train.data.build_task`` and ``build_batch_reward``, exactly as TRL training
builds it; each sample's example is looked up in the task by split and id, and the ground truth in the row
must equal it.

Retrieval goes through the retrieval service when ``$DEEPRETRIEVAL_RETRIEVER`` names it
(``http://host:8000``; ``$DEEPRETRIEVAL_RETRIEVER_INDEX`` picks a served index) or
``$DEEPRETRIEVAL_RETRIEVER_CONFIG`` names a YAML/JSON file holding a ``retriever`` section; otherwise the
spec's own retriever section is used (an in-process index per worker, unless it names a service).

A sample the judge could not score (the service kept failing) has no "leave it out" in verl: it scores 0.0
with ``judge_failed`` = 1.0, and a warning is logged.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from deepretrieval.batching import Batcher
from deepretrieval.config import RetrieverConfig, RunConfig, load_config, parse_config
from deepretrieval.integrations.verl_data import SPEC_KEY, truth_json
from deepretrieval.rewards import BatchReward
from deepretrieval.tasks.base import Example, Task
from deepretrieval.tasks.parquet_rows import canonical_truth, row_id

logger = logging.getLogger(__name__)

SPEC_ENV = "DEEPRETRIEVAL_VERL_SPEC"
RETRIEVER_ENV = "DEEPRETRIEVAL_RETRIEVER"
RETRIEVER_INDEX_ENV = "DEEPRETRIEVAL_RETRIEVER_INDEX"
RETRIEVER_CONFIG_ENV = "DEEPRETRIEVAL_RETRIEVER_CONFIG"
# Per-sample calls arriving within this window (from verl's reward threads) are scored as one batch.
WINDOW_S = 0.002
MAX_BATCH = 8192


@dataclass(frozen=True)
class Sample:
    """One completion to score, as verl passes it."""

    data_source: str
    solution_str: str
    ground_truth: Any
    extra_info: Mapping[str, Any] | None


@dataclass
class Judge:
    """A task and its batch reward, built once per process for one run spec and retriever."""

    config: RunConfig
    task: Task
    reward: BatchReward
    _examples: dict[str, dict[str, Example]] = field(default_factory=dict)
    _truths: dict[tuple[str, str], str] = field(default_factory=dict)

    def example(self, split: str, example_id: str, ground_truth: Any) -> Example:
        """The task's example ``example_id`` of ``split`` (of any split for a ``parquet`` task, whose file
        names its splits its own way), checked against the row's ground truth: our JSON text, or the seed's
        ``{"target": ...}`` as the example's row held it."""
        example = self._find(split, example_id)
        where = f"task {self.task.name!r} (data {self.config.task.data})"
        if example is None:
            raise ValueError(
                f"example {example_id!r} of split {split!r} is not in {where}; the parquet was exported from "
                "other data: export it again with `deepretrieval data export-verl`"
            )
        truth = self._truths.get((split, example_id))
        if truth is None:
            truth = self._truths[(split, example_id)] = example.meta.get("ground_truth") or truth_json(
                example
            )
        if canonical_truth(ground_truth) != truth:
            raise ValueError(
                f"the ground truth of example {example_id!r} ({split}) differs from {where}; the parquet was "
                "exported from other data: export it again with `deepretrieval data export-verl`"
            )
        return example

    def _find(self, split: str, example_id: str) -> Example | None:
        splits = [split] if split in self.task.splits else []
        if self.config.task.name == "parquet":
            splits += [other for other in self.task.splits if other != split]
        for name in splits:
            if name not in self._examples:
                self._examples[name] = {example.id: example for example in self.task.examples(name)}
            if example_id in self._examples[name]:
                return self._examples[name][example_id]
        return None


_judges: dict[str, Judge] = {}
_judges_lock = threading.Lock()


def _retriever_override() -> RetrieverConfig | None:
    """The retriever the environment names (service URL, or a config file), if any."""
    endpoint = os.environ.get(RETRIEVER_ENV)
    if endpoint:
        index = os.environ.get(RETRIEVER_INDEX_ENV)
        return RetrieverConfig(
            kind="remote", options={"endpoint": endpoint} | ({"index": index} if index else {})
        )
    path = os.environ.get(RETRIEVER_CONFIG_ENV)
    return _retriever_file(path) if path else None


@lru_cache(maxsize=8)
def _retriever_file(path: str) -> RetrieverConfig:
    return parse_config({"task": {"name": "unused"}, "retriever": _read_mapping(path, "retriever")}).retriever


def _read_mapping(path: str, section: str) -> dict[str, Any]:
    import yaml

    file = Path(path)
    if not file.is_file():
        raise ValueError(f"{path} (from the environment) is not a file")
    raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    if isinstance(raw, dict) and section in raw:
        raw = raw[section]
    if not isinstance(raw, dict):
        raise TypeError(f"{path}: expected a mapping (a run config or its {section} section)")
    return raw


def _spec(extra_info: Mapping[str, Any] | None) -> str:
    spec = extra_info.get(SPEC_KEY) if isinstance(extra_info, Mapping) else None
    if isinstance(spec, str):
        return spec
    from_env = os.environ.get(SPEC_ENV)
    if not from_env:
        raise ValueError(
            f"a sample carries no run spec (extra_info[{SPEC_KEY!r}]) and ${SPEC_ENV} is not set: export the "
            "data with `deepretrieval data export-verl`, or set it to a run config file"
        )
    return _env_spec(from_env)


@lru_cache(maxsize=8)
def _env_spec(value: str) -> str:
    """``$DEEPRETRIEVAL_VERL_SPEC``: inline JSON, or a run config file (read once)."""
    if value.lstrip().startswith("{"):
        return value
    return json.dumps(load_config(value).model_dump(mode="json"), sort_keys=True)


def judge_for(spec: str) -> Judge:
    """The judge of ``spec`` with the environment's retriever, built on first use in this process."""
    override = _retriever_override()
    key = json.dumps([spec, None if override is None else override.model_dump(mode="json")])
    with _judges_lock:
        judge = _judges.get(key)
        if judge is None:
            from deepretrieval.prompting import run_prompting
            from deepretrieval.train.data import build_batch_reward, build_task

            try:
                raw = json.loads(spec)
            except ValueError as err:
                raise ValueError(
                    f"the run spec of a sample is not JSON ({err}); export the data again"
                ) from None
            config = parse_config(raw, source="verl run spec")
            if override is not None:
                config.retriever = override
            task = build_task(config)
            reward = build_batch_reward(config, task, run_prompting(config, task))
            judge = _judges[key] = Judge(config, task, reward)
            logger.info("deepretrieval reward for task %s judged by %s", task.name, task.fingerprint)
    return judge


def score_samples(samples: Sequence[Sample]) -> list[dict[str, float]]:
    """Score the samples with one ``BatchReward.score`` call per run spec (one, normally): per sample
    ``{"score", "metric", "format_ok", "judge_failed"}``, ``metric`` being the task's primary metric."""
    results: list[dict[str, float] | None] = [None] * len(samples)
    groups: dict[str, list[int]] = {}
    for i, sample in enumerate(samples):
        groups.setdefault(_spec(sample.extra_info), []).append(i)
    for spec, members in groups.items():
        judge = judge_for(spec)
        examples = [_example(judge, samples[i]) for i in members]
        # a raw prompt (the seed's layout) ends with the prefill; the parser reads it with the completion
        prefill = judge.reward.parse.prompting.prefill
        batch = judge.reward.score([prefill + samples[i].solution_str for i in members], examples)
        failed = 0
        for i, reward, parsed, outcome in zip(members, batch.rewards, batch.parsed, batch.outcomes):
            failed += reward is None
            results[i] = {
                "score": 0.0 if reward is None else float(reward),
                "metric": float((outcome or {}).get(judge.task.primary_metric, 0.0)),
                "format_ok": float(parsed.format_ok),
                "judge_failed": float(reward is None),
            }
        if failed:
            logger.warning("%d of %d samples could not be judged; they score 0.0", failed, len(members))
    return results  # type: ignore[return-value]


def _example(judge: Judge, sample: Sample) -> Example:
    """The sample's example: by ``extra_info.example_id``, or for the seed's own files (no id) by the id
    ``--task parquet`` gives their rows (``<dataset>-<split>-<index>``)."""
    info = sample.extra_info or {}
    split = info.get("split")
    example_id = info.get("example_id")
    if example_id is None and judge.config.task.name == "parquet" and "index" in info:
        example_id = row_id(sample.data_source, info)
    if not isinstance(split, str) or not isinstance(example_id, str):
        raise TypeError(
            "a sample's extra_info names no split and example_id; export it with `deepretrieval data export-verl`"
        )
    return judge.example(split, example_id, sample.ground_truth)


_batcher: Batcher[Sample, dict[str, float]] = Batcher(
    score_samples, window_s=WINDOW_S, max_size=MAX_BATCH, name="deepretrieval-verl-reward"
)


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: Any,
    extra_info: Mapping[str, Any] | None = None,
    **_: Any,
) -> dict[str, float]:
    """verl's per-sample reward (``NaiveRewardManager``, the reward loop): concurrent calls (verl scores
    samples in a thread pool) are coalesced into one batched reward; returns ``{"score", ...}``."""
    return _batcher(Sample(data_source, solution_str, ground_truth, extra_info))


def compute_score_batch(
    data_sources: Sequence[str],
    solution_strs: Sequence[str],
    ground_truths: Sequence[Any],
    extra_infos: Sequence[Mapping[str, Any] | None],
    **_: Any,
) -> list[dict[str, float]]:
    """verl's batch reward (``BatchRewardManager``): the whole rollout batch in one ``BatchReward.score``."""
    return score_samples(
        [
            Sample(*fields)
            for fields in zip(data_sources, solution_strs, ground_truths, extra_infos, strict=True)
        ]
    )
