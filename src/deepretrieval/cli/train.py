"""``deepretrieval train CONFIG``: GRPO training from a run config (``--set`` overrides by dotted key)."""

from __future__ import annotations

import argparse
import os

from deepretrieval.cli._options import add_set


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="run config YAML (see configs/)")
    parser.add_argument(
        "--resume", action="store_true", help="continue from the last checkpoint of output_dir"
    )
    add_set(parser)


def run(args: argparse.Namespace) -> int:
    from deepretrieval.config import load_config
    from deepretrieval.train.grpo import train

    run_dir = train(load_config(args.config, args.overrides), resume=args.resume)
    if os.environ.get("RANK", "0") == "0":  # once, not once per process under a distributed launcher
        print(f"run directory: {run_dir}\nfinal policy: {run_dir / 'final'}")
    return 0
