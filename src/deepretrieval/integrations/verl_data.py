"""Any task's examples as a verl RL dataset (parquet), in the layout of verl's own preprocessing scripts
(``examples/data_preprocess/gsm8k.py``; read by ``verl.utils.dataset.rl_dataset.RLHFDataset``):

=================  ==========================================================================================
``data_source``    the task's name (``scifact``, ``spider``...): verl groups validation metrics by it
``prompt``         the chat messages ``[{"role", "content"}, ...]``; verl applies the chat template itself
``ability``        ``retrieval`` or ``sql``
``reward_model``   ``{"style": "rule", "ground_truth": JSON}``: the example's truth as JSON text (qrels
                   ``{doc_id: grade}``, answer strings, gold SQL); JSON text because qrels of different
                   queries have different keys, which a parquet struct column cannot hold
``extra_info``     ``{"split", "index", "example_id", "original", "meta", "deepretrieval"}``: where the
                   example is in the task, its metadata (JSON text: a review's date...), and the run spec
                   the reward rebuilds the task from (JSON text, see :func:`run_spec`)
=================  ==========================================================================================

The reward (``integrations.verl``) looks each sample's example up in the task by split and id and checks
that its truth is the ``ground_truth`` written here, so a parquet exported from other data fails loudly.
The paper's own layout (raw prompts, ``{"target": ...}`` ground truths) is ``integrations.verl_seed``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from deepretrieval.config import RunConfig
from deepretrieval.files import atomic_write
from deepretrieval.prompting import run_prompting
from deepretrieval.tasks.base import Example, Task

SPEC_KEY = "deepretrieval"
ABILITIES = {"query": "retrieval", "sql": "sql"}


def truth_json(example: Example) -> str:
    """The canonical JSON text of an example's truth (what ``reward_model.ground_truth`` holds)."""
    return json.dumps(example.truth, sort_keys=True, ensure_ascii=False)


def run_spec(config: RunConfig) -> str:
    """The part of a run config that decides the reward, as JSON text: the task (data path made
    absolute, since rollout workers run elsewhere), the retriever, the reward scheme and guards, and the
    prompting (how completions are parsed). Read back with ``deepretrieval.config.parse_config``."""
    if config.prompting.prefill:
        raise ValueError(
            "verl renders prompts itself (chat template + generation prompt), so an assistant prefill "
            f"({config.prompting.prefill!r}) cannot be exported; drop prompting.prefill"
        )
    if config.prompting.preset or config.prompting.rendering == "raw":
        raise ValueError(
            "a raw prompting (the seed's) is exported in the seed's own layout: add --recipe seed"
        )
    task = config.task.model_dump(mode="json")
    if task["data"] is not None:
        task["data"] = str(Path(task["data"]).resolve())
    spec = {
        "task": task,
        "retriever": config.retriever.model_dump(mode="json", exclude_defaults=True),
        "reward": config.reward.model_dump(mode="json", exclude_defaults=True),
        "prompting": config.prompting.model_dump(mode="json", exclude_none=True),
        "rl": {"max_completion_length": config.rl.max_completion_length},
    }
    return json.dumps(spec, sort_keys=True)


def verl_rows(task: Task, config: RunConfig, split: str, limit: int | None = None) -> list[dict[str, Any]]:
    """One row per example of ``split`` (the first ``limit``), in verl's layout, prompted as the run
    config's prompting says."""
    examples = task.examples(split)[:limit] if limit else task.examples(split)
    if not examples:
        raise ValueError(f"task {task.name!r} has no examples in split {split!r}")
    spec = run_spec(config)
    prompting = run_prompting(config, task)
    ability = ABILITIES.get(task.answer_key, task.answer_key)
    return [
        {
            "data_source": task.name,
            "prompt": task.messages(example, prompting),
            "ability": ability,
            "reward_model": {"style": "rule", "ground_truth": truth_json(example)},
            "extra_info": {
                "split": split,
                "index": index,
                "example_id": example.id,
                "original": example.original,
                "meta": json.dumps(dict(example.meta), sort_keys=True, ensure_ascii=False),
                SPEC_KEY: spec,
            },
        }
        for index, example in enumerate(examples)
    ]


def write_parquet(rows: list[dict[str, Any]], out: str | Path) -> Path:
    """Write ``rows`` as one parquet file, atomically (a reader never sees half a file)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(rows)
    with atomic_write(out) as handle:
        pq.write_table(table, handle)
    return out
