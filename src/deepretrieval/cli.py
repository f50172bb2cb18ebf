"""Command-line front: parses arguments and calls the library. ``deepretrieval --help``."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path


def _index_build(args: argparse.Namespace) -> int:
    from deepretrieval.retrievers import load_corpus, retriever_class
    from deepretrieval.retrievers.registry import is_indexed

    cls = retriever_class(args.retriever)
    if not is_indexed(cls):
        raise ValueError(f"the {args.retriever} retriever is a search engine: it has no index to build")
    given = {name: getattr(args, name) for name in ("k1", "b", "method", "stemmer", "stopwords", "model")}
    options = {key: value for key, value in given.items() if value is not None}
    options |= {key: None for key in ("stemmer", "stopwords") if options.get(key) == "none"}
    settings = cls.settings_type(**options)  # before reading the corpus: a typo fails fast
    print(f"reading {args.corpus}", file=sys.stderr)
    corpus = load_corpus(args.corpus, id_key=args.id_key, text_key=args.text_key)
    retriever = cls.build(corpus, args.out, settings)
    print(f"indexed {len(corpus)} documents into {args.out} (fingerprint {retriever.fingerprint})")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from deepretrieval.evaluate import evaluate, format_table
    from deepretrieval.policies import load_policy
    from deepretrieval.tasks import load_task

    options: dict = {}
    if args.task != "sql":
        options["retriever"] = args.retriever
        if args.index:
            options["index_dir"] = args.index
        if args.metrics:
            options["metrics"] = [m.strip() for m in args.metrics.split(",") if m.strip()]
    if args.dialect:
        options["dialect"] = args.dialect
    task = load_task(args.task, args.data, **options)
    policy = load_policy(args.policy)
    split = (
        args.split or getattr(task, "split", None) or ("test" if "test" in task.splits else task.splits[0])
    )
    result = evaluate(task, policy, split, reasoning=not args.no_reasoning, limit=args.limit)
    print(format_table([result]))
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result.to_json(), indent=1))
        print(f"wrote {out}", file=sys.stderr)
    return 0


def _add_index(sub: argparse._SubParsersAction) -> None:
    index = sub.add_parser("index", help="build retrieval indexes").add_subparsers(
        dest="index_command", required=True
    )
    build = index.add_parser("build", help="index a BEIR corpus.jsonl or any JSONL collection")
    build.add_argument(
        "--corpus", required=True, help="corpus JSONL file, or a BEIR folder holding corpus.jsonl"
    )
    build.add_argument("--out", required=True, help="index folder to write")
    build.add_argument("--retriever", default="bm25", help="registered index kind: bm25 (default) or dense")
    build.add_argument(
        "--id-key", default=None, help="JSON key of the document id (default: _id/id/doc_id/docid)"
    )
    build.add_argument(
        "--text-key", default=None, help="JSON key of the text (default: text/contents/body/abstract)"
    )
    build.add_argument("--k1", type=float, default=None, help="bm25: term saturation (default 0.9)")
    build.add_argument("--b", type=float, default=None, help="bm25: length normalisation (default 0.4)")
    build.add_argument(
        "--method", default=None, help="bm25: lucene (default), robertson, atire, bm25l or bm25+"
    )
    build.add_argument("--stemmer", default=None, help="bm25: Snowball language (default english), or 'none'")
    build.add_argument("--stopwords", default=None, help="bm25: stop-word list (default en), or 'none'")
    build.add_argument(
        "--model", default=None, help="dense: sentence-transformers model (default all-MiniLM-L6-v2)"
    )
    build.set_defaults(func=_index_build)


def _add_eval(sub: argparse._SubParsersAction) -> None:
    ev = sub.add_parser("eval", help="evaluate a policy (original query, gold, or a model) on a task split")
    ev.add_argument("--task", required=True, help="beir | demo | sql")
    ev.add_argument("--data", default=None, help="data folder (BEIR folder, Spider/BIRD folder)")
    ev.add_argument("--split", default=None, help="default: the task's own (test for BEIR, dev for Spider)")
    ev.add_argument("--policy", default="original", help="original | gold | HF model id or local folder")
    ev.add_argument("--retriever", default="bm25", choices=["bm25", "dense"])
    ev.add_argument("--index", default=None, help="prebuilt index folder (else built and cached)")
    ev.add_argument("--metrics", default=None, help="comma-separated, e.g. ndcg@10,recall@100,mrr@10")
    ev.add_argument("--dialect", default=None, help="sql: spider | bird (default: detected)")
    ev.add_argument("--no-reasoning", action="store_true", help="prompt for <answer> only, no <think>")
    ev.add_argument("--limit", type=int, default=None, help="only the first N examples")
    ev.add_argument("--out", default=None, help="write results JSON here")
    ev.set_defaults(func=_eval)


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
    _add_eval(sub)
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
        "quickstart",
        "train the default model on the demo collection (CPU)",
        "deepretrieval.train.cli",
        "add_quickstart_args",
        "run_quickstart",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return int(func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, KeyError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
