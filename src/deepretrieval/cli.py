"""Command-line front: parses arguments and calls the library. ``deepretrieval --help``."""

from __future__ import annotations

import argparse
import importlib
import os
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
    from deepretrieval.config import RetrieverConfig, TaskConfig
    from deepretrieval.evaluate import evaluate, format_table
    from deepretrieval.files import write_json
    from deepretrieval.policies import load_policy
    from deepretrieval.tasks import load_task

    out = _output_file(args.out, "--out") if args.out else None
    options = dict(args.options)
    if args.metrics:
        options["metrics"] = [m.strip() for m in args.metrics.split(",") if m.strip()]
    if args.dialect:
        options["dialect"] = args.dialect
    if args.sql_compat:
        options["compat"] = args.sql_compat
    policy = load_policy(args.policy)
    retriever = None
    if args.engine and args.retriever:
        raise ValueError("give --engine (literature search) or --retriever, not both")
    kind = ENGINES.get(args.engine, args.engine) if args.engine else args.retriever
    if args.endpoint:  # a retrieval service; --index names one of its indexes
        if kind not in (None, "remote") or args.engine_url:
            raise ValueError(
                "--endpoint searches a retrieval service: drop --retriever/--engine/--engine-url"
            )
        service = {"endpoint": args.endpoint} | ({"index": args.index} if args.index else {})
        retriever = RetrieverConfig(kind="remote", options=service)
    elif kind or args.index or args.engine_url:
        engine_options = {"engine_url": args.engine_url} if args.engine_url else {}
        retriever = RetrieverConfig(kind=kind, index=args.index, options=engine_options)
    task = load_task(TaskConfig(name=args.task, data=args.data, options=options), retriever=retriever)
    try:
        result = evaluate(
            task,
            policy,
            args.split,
            reasoning=args.reasoning,
            template=args.template,
            query_mode=args.query_mode,
            limit=args.limit,
        )
    finally:
        task.close()
    print(format_table([result]))
    if result.failed_ids:
        print(
            f"warning: {len(result.failed_ids)} examples could not be judged (left out of the means)",
            file=sys.stderr,
        )
    if out is not None:
        write_json(out, result.to_json())
        print(f"wrote {out}", file=sys.stderr)
    return 0


ENGINES = {"local": "boolean", "pubmed": "pubmed", "ctgov": "ctgov"}


def _output_file(path: str, flag: str) -> Path:
    """Check a file to be written before any work is done: not a folder, not under a file."""
    out = Path(path)
    if out.is_dir():
        raise ValueError(f"{flag} {out} is a folder; give a file path such as {out / 'results.json'}")
    for parent in out.parents:
        if parent.exists() and not parent.is_dir():
            raise ValueError(f"{flag} {out}: {parent} is a file, not a folder")
    return out


def _key_value(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` with a YAML value (``metrics=[ndcg@10]``, ``depth=100``, ``template=keywords``)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    import yaml

    return key.strip(), yaml.safe_load(value)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


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
    ev.add_argument("--task", required=True, help="beir | demo | evidence | literature | sql")
    ev.add_argument("--data", default=None, help="data folder (BEIR folder, SQuAD file, Spider/BIRD folder)")
    ev.add_argument("--split", default=None, help="default: the task's own (test for BEIR, dev for Spider)")
    ev.add_argument(
        "--policy", default="original", help="original | gold | expert | HF model id or local folder"
    )
    ev.add_argument("--retriever", default=None, help="retriever kind (default bm25)")
    ev.add_argument("--index", default=None, help="prebuilt index folder (else built and cached)")
    ev.add_argument(
        "--engine",
        choices=sorted(ENGINES),
        default=None,
        help="literature search engine: local (Boolean engine over the folder's corpus), pubmed, ctgov",
    )
    ev.add_argument(
        "--engine-url",
        default=None,
        help="search API base URL (mirror, proxy or stand-in), e.g. https://eutils.ncbi.nlm.nih.gov/entrez/eutils",
    )
    ev.add_argument(
        "--endpoint",
        default=None,
        help="search an index of a retrieval service (`deepretrieval serve-retriever`), e.g. "
        "http://host:8000; --index then names the served index",
    )
    ev.add_argument("--metrics", default=None, help="comma-separated, e.g. ndcg@10,recall@100,mrr@10")
    ev.add_argument("--dialect", default=None, help="sql: spider | bird (default: detected)")
    ev.add_argument(
        "--sql-compat",
        choices=["keep_distinct", "official"],
        default=None,
        help="sql: keep_distinct (default; Spider's evaluator with --keep_distinct) or official (its default "
        "verdicts: DISTINCT removed before executing)",
    )
    ev.add_argument(
        "--option",
        dest="options",
        action="append",
        type=_key_value,
        default=[],
        metavar="KEY=VALUE",
        help="a task option, e.g. --option template=keywords (repeatable)",
    )
    ev.add_argument(
        "--reasoning",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="prompt for <think> reasoning (default: as the policy was trained, else yes)",
    )
    ev.add_argument(
        "--template", default=None, help="prompt template (default: the policy's, else the task's)"
    )
    ev.add_argument(
        "--query-mode",
        choices=["rewrite", "expand"],
        default=None,
        help="rewrite: the policy's query replaces the original; expand: appended to it (default: the policy's)",
    )
    ev.add_argument("--limit", type=_positive_int, default=None, help="only the first N examples")
    ev.add_argument("--out", default=None, help="write results JSON to this file")
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
