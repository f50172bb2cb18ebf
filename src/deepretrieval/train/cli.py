"""Arguments and entry points of ``deepretrieval train`` and ``deepretrieval quickstart``.

Imported whenever the CLI builds its parser, so heavy libraries are imported inside the run functions.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def _add_overrides(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value by dotted key, e.g. --set rl.max_steps=10 (repeatable)",
    )


def add_train_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="run config YAML (see configs/)")
    parser.add_argument(
        "--resume", action="store_true", help="continue from the last checkpoint of output_dir"
    )
    _add_overrides(parser)


def run_train(args: argparse.Namespace) -> int:
    from deepretrieval.config import load_config
    from deepretrieval.train.grpo import train

    run_dir = train(load_config(args.config, args.overrides), resume=args.resume)
    if os.environ.get("RANK", "0") == "0":  # once, not once per process under a distributed launcher
        print(f"run directory: {run_dir}\nfinal policy: {run_dir / 'final'}")
    return 0


def add_quickstart_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="runs/quickstart", help="output folder (quickstart.json, run/)")
    parser.add_argument("--seed", type=int, default=0)
    _add_overrides(parser)


def run_quickstart(args: argparse.Namespace) -> int:
    from deepretrieval.train.quickstart import run

    run(Path(args.out), seed=args.seed, overrides=args.overrides)
    return 0
