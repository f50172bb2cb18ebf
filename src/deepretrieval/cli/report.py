"""``deepretrieval report RUN_DIR``: a training run's plots and HTML page."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="a training run folder (holds logs/metrics.jsonl)")
    parser.add_argument("--out", default=None, help="output folder (default: RUN_DIR/report)")


def run(args: argparse.Namespace) -> int:
    from deepretrieval.report import write_report

    page = write_report(args.run_dir, args.out)
    print(f"wrote {page} and its plots")
    return 0
