"""``deepretrieval data ...``: task data in other trainers' formats (``data export-verl``).

Imported whenever the CLI builds its parser, so the work happens in modules imported by the run function.
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="data_command", required=True)
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
        help="a task option, e.g. --option template=keywords (repeatable)",
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


def run(args: argparse.Namespace) -> int:
    from deepretrieval.config import RetrieverConfig, load_config, parse_config
    from deepretrieval.integrations.verl_data import verl_rows, write_parquet
    from deepretrieval.tasks import load_task

    if args.config:
        if args.task or args.data or args.options:
            raise ValueError("give --config or --task/--data/--option, not both")
        config = load_config(args.config)
    elif not args.task:
        raise ValueError("name the task: --task NAME --data PATH (or --config CONFIG.yaml)")
    else:
        options = dict(_key_value(text) for text in args.options)
        config = parse_config({"task": {"name": args.task, "data": args.data, "options": options}})
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
        rows = verl_rows(task, config, split, args.limit)
    finally:
        task.close()
    out = write_parquet(rows, args.out or f"{task.name}-{split}.parquet")
    print(f"wrote {len(rows)} {task.name} {split} examples to {out}", file=sys.stderr)
    return 0


def _key_value(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` with a YAML value, as the eval command's ``--option``."""
    import yaml

    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"--option expects KEY=VALUE, got {text!r}")
    return key.strip(), yaml.safe_load(value)
