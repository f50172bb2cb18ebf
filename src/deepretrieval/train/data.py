"""From a run config to the pieces GRPO needs: the task, its batch reward, and the prompt dataset."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from datasets import Dataset

from deepretrieval.answers import Guards
from deepretrieval.config import RunConfig
from deepretrieval.prompting import Prompting
from deepretrieval.rewards import BatchReward, task_scheme
from deepretrieval.tasks import load_task
from deepretrieval.tasks.base import Example, Task


def build_task(config: RunConfig) -> Task:
    """The configured task with its judge (the one constructor the CLI and the quickstart use too)."""
    return load_task(config.task, retriever=config.retriever)


def build_batch_reward(config: RunConfig, task: Task, prompting: Prompting) -> BatchReward:
    """The same ``BatchReward`` the evaluation's parse path uses: the configured scheme (default: the
    task's own), with the config's overrides validated by the scheme's schema, and the guards."""
    scheme = task_scheme(task, config.reward.scheme, prompting=prompting, **config.reward.overrides)
    return BatchReward(task, scheme, prompting=prompting, guards=Guards(**config.reward.guards))


def training_examples(task: Task, config: RunConfig) -> list[Example]:
    examples = task.examples(config.task.split)
    if not examples:
        raise ValueError(f"task {config.task.name!r} has no examples in split {config.task.split!r}")
    return examples[: config.task.limit] if config.task.limit else examples


def prompt_dataset(
    task: Task,
    examples: Sequence[Example],
    tokenizer,
    prompting: Prompting,
    *,
    max_prompt_tokens: int,
) -> Dataset:
    """One row per example: the rendered ``prompt`` text and its ``example_id``.

    Prompts are rendered here (``Prompting.render``, not by TRL) so that an assistant prefill can follow
    the generation prompt, and so training and evaluation feed the model byte-identical inputs. Prompts
    longer than ``max_prompt_tokens`` are dropped with a warning rather than silently truncated.
    """
    rows, too_long = [], 0
    for example in examples:
        text = prompting.render(tokenizer, task.messages(example, prompting))
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
