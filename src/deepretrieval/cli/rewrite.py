"""``deepretrieval rewrite "text"``: one query rewritten by a policy, optionally searched."""

from __future__ import annotations

import argparse
import sys

from deepretrieval.cli._rewriting import add_model_args, load_rewriter, open_index


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("query", help="the query to rewrite")
    add_model_args(parser)
    parser.add_argument(
        "--search",
        default=None,
        metavar="INDEX",
        help="search this index folder ([KIND:]DIR) with the rewritten query; required for a policy trained with "
        "feedback (default: none, print the query only)",
    )
    parser.add_argument("--k", type=int, default=10, help="hits to show with --search (default %(default)s)")


def run(args: argparse.Namespace) -> int:
    from deepretrieval.serve.rewrite import hits_json

    if not args.query.strip():
        raise ValueError("the query to rewrite is empty")
    if args.k < 1:
        raise ValueError(f"--k must be positive, got {args.k}")
    retriever = open_index(args.search) if args.search else None
    (result,) = load_rewriter(args, feedback_from=retriever).rewrite([args.query])
    if result.note:
        print(f"note: {result.note}", file=sys.stderr)
    print(result.query)
    if retriever is not None:
        (hits,) = hits_json(retriever, retriever.search([result.query], args.k))
        for rank, hit in enumerate(hits, 1):
            print(f"{rank:>3}  {hit['id']}  {hit['score']:.3f}  {hit['text']}")
    return 0
