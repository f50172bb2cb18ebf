"""``deepretrieval data ...``: task data in other trainers' formats (``data export-verl``) and the exact
input a policy receives for each example (``data prompts``).

Imported whenever the CLI builds its parser, so the work happens in modules imported by the run function.
"""

from __future__ import annotations

import argparse
import sys

from deepretrieval.cli._options import add_set


def add_arguments(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="data_command", required=True)
    _add_prompts(commands.add_parser("prompts", help="print the exact input a policy receives per example"))
    verl = commands.add_parser("export-verl", help="write a task's examples as a verl RL dataset (parquet)")
    verl.add_argument(
        "--config",
        default=None,
        help="take task, retriever and reward from this run config (default: none, --task and --data)",
    )
    verl.add_argument(
        "--task",
        default=None,
        help="beir | demo | evidence | literature | sql (default: the --config file's)",
    )
    verl.add_argument(
        "--data", default=None, help="the task's data folder or file (default: the --config file's)"
    )
    verl.add_argument(
        "--split", default=None, help="default: train if the task has it, else its default split"
    )
    verl.add_argument("--out", default=None, help="parquet file to write (default: <task>-<split>.parquet)")
    verl.add_argument(
        "--reasoning",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="prompt for <think> reasoning before the answer (default: the config's, else no)",
    )
    verl.add_argument(
        "--query-mode",
        choices=["rewrite", "expand"],
        default=None,
        help="how answers reach the judge (default: the config's, else rewrite)",
    )
    verl.add_argument(
        "--option",
        dest="options",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a task option, e.g. --option dialect=bird (repeatable; default: none)",
    )
    verl.add_argument(
        "--endpoint",
        default=None,
        help="judge through this retrieval service (recorded in the rows; DEEPRETRIEVAL_RETRIEVER overrides it; "
        "default: none, the local index)",
    )
    verl.add_argument(
        "--index",
        default=None,
        help="with --endpoint: the served index's name (default: the service's only one)",
    )
    verl.add_argument("--limit", type=int, default=None, help="only the first N examples (default: all)")

    verl.add_argument(
        "--recipe",
        choices=["ours", "seed"],
        default="ours",
        help="ours: chat messages verl renders (GRPO, docs/verl.md); seed: the paper's own layout (raw "
        "prompts, its ground truths) for its PPO recipe in configs/verl/ (needs --prompting seed:<dataset>)",
    )
    verl.add_argument(
        "--prompting",
        default=None,
        help="a prompting preset, e.g. seed:scifact (default: ours, the task template) [prompting.preset]",
    )
    add_set(verl)


def _add_prompts(prompts: argparse.ArgumentParser) -> None:
    prompts.add_argument(
        "--config", default=None, help="take task and prompting from this run config (default: none)"
    )
    prompts.add_argument(
        "--task",
        default=None,
        help="beir | demo | evidence | literature | sql | parquet (default: the --config file's)",
    )
    prompts.add_argument(
        "--data", default=None, help="the task's data folder or file (default: the --config file's)"
    )
    prompts.add_argument("--split", default=None, help="default: the task's own (test, else dev)")
    prompts.add_argument(
        "--prompting",
        default=None,
        help="a prompting preset, e.g. seed:pubmed (default: the policy card's, else ours) [prompting.preset]",
    )
    prompts.add_argument(
        "--model",
        default=None,
        help="a model folder or hub id: its card decides the prompting (the published DeepRetrieval/* ids "
        "have built-in ones) and its tokenizer renders chat prompts (default: the embedded model's)",
    )
    prompts.add_argument("--limit", type=int, default=None, help="only the first N examples (default: all)")
    prompts.add_argument("--jsonl", action="store_true", help='one JSON object per line: {"id", "prompt"}')
    prompts.add_argument(
        "--option",
        dest="options",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a task option, e.g. --option dialect=bird (repeatable)",
    )
    add_set(prompts)


def run(args: argparse.Namespace) -> int:
    if args.data_command == "prompts":
        return _print_prompts(args)
    return _export_verl(args)


def _print_prompts(args: argparse.Namespace) -> int:
    """Build the task's examples only (no index, corpus or database opened) and print what the policy
    would receive for each: the rendered text (the seed's raw string for ``--prompting seed:...``)."""
    import json

    from deepretrieval.config import load_config, parse_config
    from deepretrieval.policies import local_card
    from deepretrieval.prompting import resolve
    from deepretrieval.tasks import load_task

    config = _task_config(args, load_config, parse_config)
    if args.prompting:
        config.prompting.preset = args.prompting
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be a positive integer, got {args.limit}")
    card = local_card(args.model) if args.model else None
    task = load_task(config.task, retriever=config.retriever, judge=False)
    try:
        prompting = resolve(config.prompting, card.prompting if card else None, task)
        tokenizer = None if prompting.rendering == "raw" else _tokenizer(args.model)
        split = args.split or config.task.eval_split or task.default_split
        examples = task.examples(split)[: args.limit] if args.limit else task.examples(split)
        for example in examples:
            text = prompting.render(tokenizer, task.messages(example, prompting))
            if args.jsonl:
                print(json.dumps({"id": example.id, "prompt": text}, ensure_ascii=False))
            else:
                print(f"===== {example.id}\n{text}")
    finally:
        task.close()
    print(f"{len(examples)} prompts of {task.name} {split} ({prompting.describe()})", file=sys.stderr)
    return 0


def _tokenizer(model: str | None):
    """The tokenizer whose chat template renders chat prompts: the model's, else the embedded model's."""
    from transformers import AutoTokenizer

    from deepretrieval.default_model import resolve_model

    return AutoTokenizer.from_pretrained(resolve_model(model))


def _task_config(args: argparse.Namespace, load_config, parse_config):
    """The run config of ``--config`` or of ``--task/--data/--option``, then ``--set``."""
    if args.config:
        if args.task or args.data or args.options:
            raise ValueError("give --config or --task/--data/--option, not both")
        return load_config(args.config, args.overrides)
    if not args.task:
        raise ValueError("name the task: --task NAME --data PATH (or --config CONFIG.yaml)")
    options = dict(_key_value(text) for text in args.options)
    raw = {"task": {"name": args.task, "data": args.data, "options": options}}
    return parse_config(raw, args.overrides, source="data flags")


def _export_verl(args: argparse.Namespace) -> int:
    from pathlib import Path

    from deepretrieval.config import RetrieverConfig, load_config, parse_config
    from deepretrieval.integrations.verl_data import verl_rows, write_parquet
    from deepretrieval.integrations.verl_seed import seed_rows
    from deepretrieval.tasks import load_task

    config = _task_config(args, load_config, parse_config)
    if args.prompting:
        config.prompting.preset = args.prompting
    if args.reasoning is not None:
        config.prompting.reasoning = args.reasoning
    if args.query_mode:
        config.prompting.query_mode = args.query_mode
    if args.endpoint:
        index = {"index": args.index} if args.index else {}
        config.retriever = RetrieverConfig(kind="remote", options={"endpoint": args.endpoint, **index})
    elif args.index:
        raise ValueError("--index names an index of a retrieval service: give --endpoint too")
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be a positive integer, got {args.limit}")
    task = load_task(config.task, retriever=config.retriever)
    try:
        default = (
            config.task.split if args.config else ("train" if "train" in task.splits else task.default_split)
        )
        split = args.split or default
        target = Path(args.out or f"{task.name}-{split}.parquet")
        if args.recipe == "seed":
            rows = seed_rows(task, config, split, target, args.limit)
        else:
            rows = verl_rows(task, config, split, args.limit)
    finally:
        task.close()
    out = write_parquet(rows, target)
    print(f"wrote {len(rows)} rows of {task.name} {split} to {out}", file=sys.stderr)
    return 0


def _key_value(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` with a YAML value, as the eval command's ``--option``."""
    import yaml

    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"--option expects KEY=VALUE, got {text!r}")
    return key.strip(), yaml.safe_load(value)
