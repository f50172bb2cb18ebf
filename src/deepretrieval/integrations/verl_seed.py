"""Any task's examples as the DeepRetrieval paper's own parquet files (``data export-verl --recipe seed``):
the layout its ``code/data_preprocess/*.py`` wrote and its verl recipe trains on, so the seed's recipe runs
on verl with our data, and ``--task parquet`` reads them back.

=================  ==========================================================================================
``data_source``    the seed's (``pubmed``, ``nq_serini``; BEIR and SQL add ``_<split>``: ``scifact_train``)
``prompt``         one user message holding the seed's raw prompt, prefill included (no chat template:
                   ``configs/verl/`` passes it through verl with a pass-through ``custom_chat_template``)
``ability``        ``literature_mining`` (retrieval) or ``sql_generation``, as the seed
``reward_model``   ``{"style": "rule", "ground_truth": {"target": ...}}``: relevant ids, answer strings, the
                   document of a SciFact (claim, document) pair, ``target`` + ``score`` for the other BEIR
                   sets, gold SQL
``extra_info``     ``split``, ``index`` (and ``db_path`` for SQL) as the seed, plus ``example_id``,
                   ``original`` and ``deepretrieval``: the run spec the reward rebuilds its judge from, naming
                   this very file as a ``parquet`` task (the rows are the examples)
``pub_date``       literature: the review's date (the seed kept its preprocessing columns)
=================  ==========================================================================================
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from deepretrieval.config import RunConfig
from deepretrieval.prompting import Prompting, run_prompting
from deepretrieval.tasks.base import Example, Task
from deepretrieval.tasks.parquet_rows import PAIR_DATASETS
from deepretrieval.tasks.prompts import RawTemplate, prompt_template
from deepretrieval.tasks.seed_prompts import SeedPrompt

ABILITIES = {"sql": "sql_generation"}


def seed_of(prompting: Prompting) -> SeedPrompt:
    """The seed dataset whose template ``prompting`` uses; a one-line error for our own templates."""
    template = prompt_template(prompting.template)
    seed = template.seed if isinstance(template, RawTemplate) else None
    if seed is None:
        raise ValueError(
            "--recipe seed writes the paper's own layout: prompt with its prompting "
            "(--prompting seed:<dataset>, prompting.preset in a config)"
        )
    return seed


def seed_spec(config: RunConfig, task: Task, out: Path) -> str:
    """The run spec of the rows: a ``parquet`` task reading ``out`` itself, judged by the source task's
    collection (its corpus, engine or databases), with the config's retriever, reward and prompting."""
    options: dict[str, Any] = {}
    source = config.task.data
    if config.task.name == "sql":
        examples = task.examples(task.default_split)
        options["databases"] = (
            str(Path(examples[0].meta["db_path"]).resolve().parents[1]) if examples else None
        )
    elif config.task.name in ("beir", "demo") and source is not None:
        options["corpus"] = str(Path(source).resolve())
    elif config.task.name == "evidence":
        options["corpus"] = config.task.options.get("corpus") or str(_evidence_corpus(config))
    elif (
        config.task.name == "literature" and source is not None and (Path(source) / "corpus.jsonl").is_file()
    ):
        options["corpus"] = str((Path(source) / "corpus.jsonl").resolve())
    spec = {
        "task": {"name": "parquet", "data": str(out.resolve()), "options": options},
        "retriever": config.retriever.model_dump(mode="json", exclude_defaults=True),
        "reward": config.reward.model_dump(mode="json", exclude_defaults=True),
        "prompting": config.prompting.model_dump(mode="json", exclude_none=True),
        "rl": {"max_completion_length": config.rl.max_completion_length},
    }
    return json.dumps(spec, sort_keys=True)


def _evidence_corpus(config: RunConfig) -> Path:
    from deepretrieval.tasks import evidence

    options = evidence.EvidenceOptions.model_validate(config.task.options)
    return evidence.corpus_path(Path(str(config.task.data)), options).resolve()


def seed_rows(task: Task, config: RunConfig, split: str, out: Path, limit: int | None = None) -> list[dict]:
    """The rows of ``split`` (the first ``limit`` examples) in the seed's layout (see the module notes)."""
    examples = task.examples(split)[:limit] if limit else task.examples(split)
    if not examples:
        raise ValueError(f"task {task.name!r} has no examples in split {split!r}")
    prompting = run_prompting(config, task)
    seed = seed_of(prompting)
    spec = seed_spec(config, task, out)
    suffix = f"_{split}" if seed.task in ("beir", "sql") else ""
    rows = []
    for example in examples:
        prompt = prompting.render(None, task.messages(example, prompting))
        for example_id, target in _targets(seed, example):
            info: dict[str, Any] = {
                "split": split,
                "index": len(rows),
                "example_id": example_id,
                "original": example.original,
                "deepretrieval": spec,
            }
            if seed.task == "sql":
                info["db_path"] = str(example.meta["db_path"])
            row = {
                "data_source": seed.data_source + suffix,
                "prompt": [{"role": "user", "content": prompt}],
                "ability": ABILITIES.get(seed.task, "literature_mining"),
                "reward_model": {"style": "rule", "ground_truth": target},
                "extra_info": info,
            }
            if seed.task == "literature":
                row["pub_date"] = str(example.meta.get("pub_date") or "")
            rows.append(row)
    return rows


def _targets(seed: SeedPrompt, example: Example) -> list[tuple[str, dict[str, Any]]]:
    """``(example id, ground_truth)`` per row of one example: SciFact makes one row per relevant document."""
    if seed.task in ("sql", "evidence"):
        return [(example.id, {"target": example.truth})]
    relevant = {doc: grade for doc, grade in example.truth.items() if grade > 0}
    if seed.name in PAIR_DATASETS:
        return [(f"{example.id}-{doc}", {"target": doc}) for doc in relevant]
    if seed.task == "literature":
        return [(example.id, {"target": list(relevant)})]
    return [(example.id, {"target": list(relevant), "score": list(relevant.values())})]
