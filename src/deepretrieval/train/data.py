"""From a run config to the pieces GRPO needs: the task, its batch reward, and the prompt dataset."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from datasets import Dataset

from deepretrieval.config import RunConfig
from deepretrieval.tasks.base import Example, Task
from deepretrieval.tasks.prompts import render_prompt


def build_task(config: RunConfig) -> Task:
    """Load the configured task; the retriever section travels as ``load_task`` options."""
    from deepretrieval.tasks import load_task

    options: dict[str, Any] = {"retriever": config.retriever.kind}
    if config.retriever.index is not None:
        options["index_dir"] = config.retriever.index
    if config.retriever.options:
        options["retriever_options"] = config.retriever.options
    if config.task.name == "sql":  # judged by a database, not a retriever
        options = {}
    return load_task(config.task.name, config.task.data, **options, **config.task.options)


def build_batch_reward(config: RunConfig, task: Task):
    """The same ``BatchReward`` the evaluation uses: the configured scheme (default: the task's own),
    with the config's overrides validated by the scheme's schema, and the anti-hacking guards."""
    from deepretrieval.rewards import BatchReward, Guards, make_scheme

    overrides = dict(config.reward.overrides)
    if config.reward.scheme is None:
        default = task.default_scheme()
        scheme = type(default)(**{**default.model_dump(), **overrides})
    else:
        scheme = make_scheme(config.reward.scheme, **overrides)
    return BatchReward(task, scheme, reasoning=config.reasoning, guards=Guards(**config.reward.guards))


def training_examples(task: Task, config: RunConfig) -> list[Example]:
    examples = task.examples(config.task.split)
    if not examples:
        raise ValueError(f"task {config.task.name!r} has no examples in split {config.task.split!r}")
    return examples[: config.task.limit] if config.task.limit else examples


def prompt_dataset(
    task: Task,
    examples: Sequence[Example],
    tokenizer,
    *,
    reasoning: bool,
    prefill: str,
    max_prompt_tokens: int,
) -> Dataset:
    """One row per example: the rendered ``prompt`` text and its ``example_id``.

    Prompts are rendered here (not by TRL) so that an assistant prefill can follow the generation prompt,
    and so training and evaluation feed the model byte-identical inputs. Prompts longer than
    ``max_prompt_tokens`` are dropped with a warning rather than silently truncated.
    """
    rows, too_long = [], 0
    for example in examples:
        text = render_prompt(tokenizer, task.messages(example, reasoning), prefill)
        if len(tokenizer(text, add_special_tokens=False)["input_ids"]) > max_prompt_tokens:
            too_long += 1
            continue
        rows.append({"prompt": text, "example_id": example.id})
    if too_long:
        print(
            f"warning: dropped {too_long} prompts longer than rl.max_prompt_length={max_prompt_tokens}",
            file=sys.stderr,
        )
    if not rows:
        raise ValueError(f"no training prompt fits rl.max_prompt_length={max_prompt_tokens}")
    return Dataset.from_list(rows)
