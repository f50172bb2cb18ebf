"""``deepretrieval serve-retriever``: the arguments, and the call into ``serve.retrieval_service`` (imported
only when the command runs, so building the parser never needs the web stack)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--index",
        dest="indexes",
        action="append",
        required=True,
        metavar="[NAME=][KIND:]DIR",
        help="a published index folder to serve (repeatable); NAME defaults to the folder's name, KIND to "
        "the one in its index.json",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (0: any free port)")
    parser.add_argument("--max-queries", type=int, default=4096, help="queries per request")
    parser.add_argument("--max-k", type=int, default=10_000, help="largest k a request may ask for")
    parser.add_argument("--max-query-chars", type=int, default=10_000, help="longest query, in characters")
    parser.add_argument("--max-body-mb", type=float, default=32.0, help="largest request body, in MiB")
    parser.add_argument(
        "--batch-window-ms",
        type=float,
        default=2.0,
        help="how long a search waits for others to join its batch",
    )
    parser.add_argument("--max-batch", type=int, default=4096, help="queries per coalesced search")
    parser.add_argument(
        "--max-pending",
        type=int,
        default=65_536,
        help="queries queued for one index before requests get 503 with Retry-After",
    )
    parser.add_argument(
        "--request-timeout-s",
        type=float,
        default=60.0,
        help="how long a search may wait for its turn (then a 504)",
    )
    parser.add_argument(
        "--body-timeout-s",
        type=float,
        default=10.0,
        help="the longest pause inside a request body (then a 408)",
    )
    parser.add_argument("--log-level", default="warning", help="uvicorn's log level (info shows requests)")


def run(args: argparse.Namespace) -> int:
    try:
        from deepretrieval.serve.retrieval_service import IndexSpec, ServiceLimits, serve
    except ImportError as err:
        raise ValueError(
            f"serve-retriever needs the serve extras: pip install 'deepretrieval[serve]' ({err})"
        ) from None
    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be 0..65535, got {args.port}")
    limits = ServiceLimits(
        max_queries=args.max_queries,
        max_k=args.max_k,
        max_query_chars=args.max_query_chars,
        max_body_bytes=int(args.max_body_mb * 2**20),
        batch_window_ms=args.batch_window_ms,
        max_batch_queries=args.max_batch,
        max_pending_queries=args.max_pending,
        request_timeout_s=args.request_timeout_s,
        body_timeout_s=args.body_timeout_s,
    )
    specs = [IndexSpec.parse(text) for text in args.indexes]
    serve(specs, host=args.host, port=args.port, limits=limits, log_level=args.log_level)
    return 0
