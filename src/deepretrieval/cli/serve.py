"""``deepretrieval serve``: the query-rewriting API over HTTP (FastAPI on uvicorn)."""

from __future__ import annotations

import argparse
import sys

from deepretrieval.cli._rewriting import add_model_args, load_rewriter, open_index

# An untrained model's generation cap when serving (no policy card, no reasoning, no --max-new-tokens).
# The embedded SmolLM2 on 96 demo and SciFact queries (classic_ir, greedy): 60 of 96 completions run to
# 64 tokens, yet 95 of 96 served rewrites are the same at 32 tokens as at 64 (the untrained model rarely
# closes its <answer>: the original query is served), and a batch costs about half as long.
SERVE_UNTRAINED_TOKENS = 32


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_args(parser, untrained_tokens=SERVE_UNTRAINED_TOKENS)
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (0.0.0.0: every interface; default %(default)s)",
    )
    parser.add_argument(
        "--port", type=int, default=8000, help="port to listen on (0: any free port; default %(default)s)"
    )
    parser.add_argument(
        "--index",
        dest="indexes",
        action="append",
        default=[],
        metavar="NAME=[KIND:]DIR",
        help="an index the /rewrite search option may name (repeatable), e.g. --index scifact=runs/scifact-bm25",
    )
    parser.add_argument(
        "--max-batch", type=int, default=32, help="most queries in one generation call (default %(default)s)"
    )
    parser.add_argument(
        "--max-wait-ms", type=float, default=10.0, help="how long a batch waits to fill (default %(default)s)"
    )
    parser.add_argument(
        "--max-queue",
        type=int,
        default=None,
        help="queries that may wait for generation; beyond, requests get 503 with Retry-After "
        "(default: 2 x --max-batch, at least 64)",
    )
    parser.add_argument(
        "--request-timeout-s",
        type=float,
        default=60.0,
        help="how long a request may wait for its generation to start before a 504 (default %(default)s)",
    )
    parser.add_argument(
        "--body-timeout-s",
        type=float,
        default=10.0,
        help="the longest pause inside a request body before a 408 (default %(default)s)",
    )


def run(args: argparse.Namespace) -> int:
    app = build_app(args)  # first: it says so when the serve extras are missing
    from deepretrieval.serve import http

    sock = http.listen(args.host, args.port)
    print(
        f"serving {app.state.rewriter.policy.name} on http://{args.host}:{sock.getsockname()[1]} "
        f"({app.state.rewriter.prompting.max_new_tokens} new tokens; "
        "POST /rewrite, POST /v1/chat/completions, GET /health)",
        file=sys.stderr,
        flush=True,
    )
    http.run(app, sock, on_shutdown=lambda: app.state.batcher.close(0, abort=True))
    return 0


def build_app(args: argparse.Namespace):
    """The app over the loaded policy and indexes, as the flags say (checked first)."""
    try:
        from deepretrieval.serve.rewrite import Limits, create_app
    except ImportError as err:
        raise OSError(
            f"`deepretrieval serve` needs the serve extras: pip install 'deepretrieval[serve]' ({err})"
        ) from None
    if not 0 <= args.port <= 65535:  # every argument is checked before an index or the model is loaded
        raise ValueError(f"--port must be 0..65535, got {args.port}")
    for flag in ("max_batch", "request_timeout_s", "body_timeout_s"):
        if getattr(args, flag) <= 0:
            raise ValueError(f"--{flag.replace('_', '-')} must be positive, got {getattr(args, flag)}")
    if args.max_wait_ms < 0:
        raise ValueError(f"--max-wait-ms must be >= 0, got {args.max_wait_ms}")
    if args.max_queue is not None and args.max_queue < 1:
        raise ValueError(f"--max-queue must be >= 1, got {args.max_queue}")
    named = [spec.partition("=") for spec in args.indexes]
    for (name, sep, folder), spec in zip(named, args.indexes):
        if not sep or not name or not folder:
            raise ValueError(f"--index expects NAME=DIR, got {spec!r}")
    indexes = {name: open_index(folder) for name, _, folder in named}
    first = next(iter(indexes.values()), None)  # a policy trained with feedback reads the first --index
    rewriter = load_rewriter(args, feedback_from=first, untrained_tokens=SERVE_UNTRAINED_TOKENS)
    return create_app(
        rewriter,
        indexes=indexes,
        limits=Limits(body_timeout_s=args.body_timeout_s),
        max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms,
        max_queue=args.max_queue,
        timeout_s=args.request_timeout_s,
    )
