"""Command-line front: parses arguments and calls the library. ``deepretrieval --help``."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence


def _index_build(args: argparse.Namespace) -> int:
    """Build an index from a corpus file read as a stream (never whole in memory: DPR's 21M passages fit).
    Settings are checked before any reading."""
    from deepretrieval.retrievers.corpus import open_corpus

    if args.retriever == "bm25":
        from deepretrieval.retrievers.bm25 import BM25Retriever as Builder
        from deepretrieval.retrievers.bm25 import BM25Settings

        settings = BM25Settings(
            k1=args.k1,
            b=args.b,
            method=args.method,
            stemmer=None if args.stemmer == "none" else args.stemmer,
            stopwords=None if args.stopwords == "none" else args.stopwords,
        )
    else:
        from deepretrieval.retrievers.dense import DenseRetriever as Builder
        from deepretrieval.retrievers.dense import DenseSettings

        settings = DenseSettings(model=args.model) if args.model else DenseSettings()
    corpus = open_corpus(args.corpus, id_key=args.id_key, text_key=args.text_key)
    print(f"reading {args.corpus}", file=sys.stderr)
    retriever = Builder.build(corpus, args.out, settings)
    print(f"indexed {len(corpus)} documents into {args.out} (fingerprint {retriever.fingerprint})")
    return 0


def _add_index(sub: argparse._SubParsersAction) -> None:
    index = sub.add_parser("index", help="build retrieval indexes").add_subparsers(
        dest="index_command", required=True
    )
    build = index.add_parser(
        "build", help="index a BEIR corpus.jsonl, any JSONL collection or a DPR-style TSV (id, text, title)"
    )
    build.add_argument(
        "--corpus", required=True, help="corpus JSONL or TSV file, or a BEIR folder holding corpus.jsonl"
    )
    build.add_argument("--out", required=True, help="index folder to write")
    build.add_argument("--retriever", choices=["bm25", "dense"], default="bm25")
    build.add_argument(
        "--id-key", default=None, help="JSON key of the document id (default: _id/id/doc_id/docid)"
    )
    build.add_argument(
        "--text-key", default=None, help="JSON key of the text (default: text/contents/body/abstract)"
    )
    build.add_argument("--k1", type=float, default=0.9)
    build.add_argument("--b", type=float, default=0.4)
    build.add_argument(
        "--method", default="lucene", choices=["lucene", "robertson", "atire", "bm25l", "bm25+"]
    )
    build.add_argument("--stemmer", default="english", help="Snowball language, or 'none'")
    build.add_argument("--stopwords", default="en", help="stop-word list name, or 'none'")
    build.add_argument(
        "--model", default=None, help="dense: sentence-transformers model (default all-MiniLM-L6-v2)"
    )
    build.set_defaults(func=_index_build)


def _add_lazy(
    sub: argparse._SubParsersAction, name: str, help_text: str, module: str, add: str, run: str
) -> None:
    """A subcommand whose arguments and code live in ``module`` (imported only when used)."""
    parser = sub.add_parser(name, help=help_text)
    try:
        mod = importlib.import_module(module)
    except ImportError as err:
        reason = str(err)
        parser.set_defaults(func=lambda _args: _missing(name, reason))
        return
    getattr(mod, add)(parser)
    parser.set_defaults(func=getattr(mod, run))


def _missing(name: str, reason: str) -> int:
    print(
        f"`deepretrieval {name}` needs the training extras: pip install 'deepretrieval[train]' ({reason})",
        file=sys.stderr,
    )
    return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deepretrieval",
        description="Train LLMs to write search queries with the retrieval outcome as the RL reward.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _add_index(sub)
    _add_lazy(sub, "eval", "evaluate policies", "deepretrieval.eval_cli", "add_eval_args", "run_eval")
    _add_lazy(sub, "report", "plot a training run", "deepretrieval.report", "add_report_args", "run_report")
    _add_lazy(sub, "rewrite", "rewrite a query", "deepretrieval.serve.cli", "add_rewrite_args", "run_rewrite")
    _add_lazy(sub, "serve", "serve the rewrite API", "deepretrieval.serve.cli", "add_serve_args", "run_serve")
    _add_lazy(
        sub,
        "train",
        "train a query-writing policy with GRPO",
        "deepretrieval.train.cli",
        "add_train_args",
        "run_train",
    )
    _add_lazy(
        sub,
        "serve-retriever",
        "serve indexes over HTTP",
        "deepretrieval.serve.retriever_cli",
        "add_serve_retriever_args",
        "run_serve_retriever",
    )
    _add_lazy(
        sub, "data", "export task data (verl parquet)", "deepretrieval.data_cli", "add_data_args", "run_data"
    )
    _add_lazy(
        sub,
        "quickstart",
        "train the default model on the demo collection (CPU)",
        "deepretrieval.train.cli",
        "add_quickstart_args",
        "run_quickstart",
    )
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


if __name__ == "__main__":
    sys.exit(main())
