"""Command-line front: ``deepretrieval COMMAND``, one module per command in this package.

Each command module has ``add_arguments(parser)`` and ``run(args) -> int`` and imports its heavy libraries
inside ``run``, so building the parser stays fast and a missing extra only fails the command that needs it.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence

from deepretrieval import __version__
from deepretrieval.cli._parser import Parser

COMMANDS: dict[str, str] = {
    "index": "build retrieval indexes",
    "eval": "evaluate policies on a task split",
    "train": "train a query-writing policy with GRPO",
    "quickstart": "train the default model on the demo collection (CPU), then compare",
    "report": "plot a training run",
    "rewrite": "rewrite a query",
    "serve": "serve the rewrite API",
    "serve-retriever": "serve indexes over HTTP",
    "data": "task data in other trainers' formats (verl parquet)",
}
"""Command name -> help; the module is ``deepretrieval.cli.<name with _ for ->``."""


def _add_command(sub: argparse._SubParsersAction, name: str, help_text: str) -> None:
    parser = sub.add_parser(name, help=help_text, description=help_text)
    try:
        module = importlib.import_module(f"deepretrieval.cli.{name.replace('-', '_')}")
    except ImportError as err:
        reason = str(err)
        parser.set_defaults(func=lambda _args: _missing(name, reason))
        return
    module.add_arguments(parser)
    parser.set_defaults(func=module.run)


def _missing(name: str, reason: str) -> int:
    print(
        f"`deepretrieval {name}` needs the training extras: pip install 'deepretrieval[train]' ({reason})",
        file=sys.stderr,
    )
    return 2


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="deepretrieval",
        description="Train LLMs to write search queries with the retrieval outcome as the RL reward.",
    )
    parser.add_argument("--version", action="version", version=f"deepretrieval {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in COMMANDS.items():
        _add_command(sub, name, help_text)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. A user error (bad input, missing file, refused index...) is one line on stderr and
    exit status 2; ``DEEPRETRIEVAL_DEBUG=1`` shows the traceback instead."""
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return int(func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, KeyError, TypeError, OSError) as err:
        if os.environ.get("DEEPRETRIEVAL_DEBUG"):
            raise
        message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        print(f"error: {' '.join(str(message).split())}", file=sys.stderr)
        return 2
