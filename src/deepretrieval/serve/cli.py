"""``deepretrieval rewrite "text"`` and ``deepretrieval serve``: the query-rewriting API from the command line.

Imported whenever the CLI builds its parser, so heavy libraries are imported inside the run functions.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

INDEX_KINDS = ("bm25", "dense")
REASONING_TOKENS, PLAIN_TOKENS = 256, 64


def _add_model_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", default=None, help="model folder, checkpoint or HF id (default: the embedded SmolLM2)"
    )
    parser.add_argument(
        "--reasoning",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="prompt for <think> reasoning (default: as the policy was trained; off for an untrained model)",
    )
    parser.add_argument(
        "--template", default=None, help="prompt template (default: the policy's, else classic_ir)"
    )
    parser.add_argument(
        "--max-new-tokens",
        type=int,
        default=None,
        help=f"generation cap (default {REASONING_TOKENS} with reasoning, {PLAIN_TOKENS} without)",
    )


def add_rewrite_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("query", help="the query to rewrite")
    _add_model_args(parser)
    parser.add_argument(
        "--search", default=None, metavar="INDEX", help="search this index folder ([KIND:]DIR)"
    )
    parser.add_argument("--k", type=int, default=10, help="hits to show with --search")


def add_serve_args(parser: argparse.ArgumentParser) -> None:
    _add_model_args(parser)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--index",
        dest="indexes",
        action="append",
        default=[],
        metavar="NAME=[KIND:]DIR",
        help="an index the /rewrite search option may name (repeatable), e.g. --index scifact=runs/scifact-bm25",
    )
    parser.add_argument("--max-batch", type=int, default=32, help="most queries in one generation call")
    parser.add_argument("--max-wait-ms", type=float, default=10.0, help="how long a batch waits to fill")


def load_rewriter(args: argparse.Namespace, feedback_from=None):
    """The policy (loaded once) and how it is prompted; the generation cap follows the reasoning choice.
    ``feedback_from``: the index a policy trained with feedback reads each query's top results from."""
    from deepretrieval.policies.hf import HFPolicy
    from deepretrieval.serve.rewrite import Rewriter

    if args.max_new_tokens is not None and args.max_new_tokens < 1:
        raise ValueError(f"--max-new-tokens must be positive, got {args.max_new_tokens}")
    name = "untrained" if args.model is None else Path(args.model).name
    policy = HFPolicy(args.model, name=name, max_new_tokens=args.max_new_tokens or REASONING_TOKENS)
    rewriter = Rewriter(policy, template=args.template, reasoning=args.reasoning, feedback_from=feedback_from)
    if args.max_new_tokens is None and not rewriter.reasoning:
        policy.max_new_tokens = PLAIN_TOKENS
    return rewriter


def open_index(text: str):
    """``[KIND:]DIR`` -> the retriever over that prebuilt index (bm25 unless the kind is named)."""
    from deepretrieval.retrievers import open_retriever

    kind, sep, folder = text.partition(":")
    if not sep or kind not in INDEX_KINDS:
        kind, folder = "bm25", text
    if not Path(folder).is_dir():
        raise FileNotFoundError(
            f"index folder {folder} does not exist (build one: deepretrieval index build)"
        )
    return open_retriever(kind, index_dir=folder, show_progress=False)


def run_rewrite(args: argparse.Namespace) -> int:
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


def run_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from deepretrieval.serve.rewrite import create_app
    except ImportError as err:
        raise OSError(
            f"`deepretrieval serve` needs the serve extras: pip install 'deepretrieval[serve]' ({err})"
        ) from None
    indexes = {}
    for spec in args.indexes:
        name, sep, folder = spec.partition("=")
        if not sep or not name or not folder:
            raise ValueError(f"--index expects NAME=DIR, got {spec!r}")
        indexes[name] = open_index(folder)
    rewriter = load_rewriter(args, feedback_from=next(iter(indexes.values()), None))  # the first --index
    app = create_app(rewriter, indexes=indexes, max_batch=args.max_batch, max_wait_ms=args.max_wait_ms)
    print(
        f"serving {rewriter.policy.name} on http://{args.host}:{args.port} "
        "(POST /rewrite, POST /v1/chat/completions, GET /health)",
        file=sys.stderr,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
