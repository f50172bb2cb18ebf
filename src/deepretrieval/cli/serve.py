"""``deepretrieval serve``: the query-rewriting API over HTTP (FastAPI on uvicorn)."""

from __future__ import annotations

import argparse
import sys

from deepretrieval.cli._rewriting import add_model_args, load_rewriter, open_index


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_args(parser)
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (0.0.0.0: every interface; default %(default)s)",
    )
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default %(default)s)")
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


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from deepretrieval.serve.rewrite import create_app
    except ImportError as err:
        raise OSError(
            f"`deepretrieval serve` needs the serve extras: pip install 'deepretrieval[serve]' ({err})"
        ) from None
    if not 0 <= args.port <= 65535:  # every argument is checked before an index or the model is loaded
        raise ValueError(f"--port must be 0..65535, got {args.port}")
    if args.max_batch < 1 or args.max_wait_ms < 0:
        raise ValueError(
            f"--max-batch must be >= 1 and --max-wait-ms >= 0, got {args.max_batch}, {args.max_wait_ms}"
        )
    named = [spec.partition("=") for spec in args.indexes]
    for (name, sep, folder), spec in zip(named, args.indexes):
        if not sep or not name or not folder:
            raise ValueError(f"--index expects NAME=DIR, got {spec!r}")
    indexes = {name: open_index(folder) for name, _, folder in named}
    rewriter = load_rewriter(args, feedback_from=next(iter(indexes.values()), None))  # the first --index
    app = create_app(rewriter, indexes=indexes, max_batch=args.max_batch, max_wait_ms=args.max_wait_ms)
    print(
        f"serving {rewriter.policy.name} on http://{args.host}:{args.port} "
        "(POST /rewrite, POST /v1/chat/completions, GET /health)",
        file=sys.stderr,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
