"""``deepretrieval quickstart``: train the embedded model on the demo collection (CPU), then compare."""

from __future__ import annotations

import argparse
from pathlib import Path

from deepretrieval.cli._options import add_set


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        default="runs/quickstart",
        help="output folder: quickstart.json, per_query.jsonl, run/ (default %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=0, help="training seed (default %(default)s)")
    add_set(parser)


def run(args: argparse.Namespace) -> int:
    from deepretrieval.train.quickstart import run as quickstart

    quickstart(Path(args.out), seed=args.seed, overrides=args.overrides)
    return 0
