"""``deepretrieval index build``: an index of any index-backed retriever kind (bm25, dense, faiss, boolean...),
found through the retriever registry, with the kind's own settings (``--option KEY=VALUE``; the common
BM25 and dense ones also as flags). The corpus is read as a stream where the kind can index one (DPR's
21M passages fit).

``deepretrieval index verify DIR``: every file of the published index against its recorded checksum,
and the kind's load-time checks (BM25: every weight finite and within BM25's bounds); exit 1 with the
reason when the index is damaged or missing."""

from __future__ import annotations

import argparse
import sys

from deepretrieval.cli._options import key_value

SHORTHANDS = (
    ("--k1", float, "k1", "BM25 term-frequency saturation (bm25; default 0.9)"),
    ("--b", float, "b", "BM25 length normalisation (bm25; default 0.4)"),
    (
        "--method",
        str,
        "method",
        "BM25 variant: lucene, robertson, atire, bm25l, bm25+ (bm25; default lucene)",
    ),
    ("--stemmer", str, "stemmer", "Snowball language, or 'none' (bm25, boolean; default english)"),
    ("--stopwords", str, "stopwords", "stop-word list name, or 'none' (bm25; default en)"),
    ("--model", str, "model", "sentence-transformers model (dense, faiss; default all-MiniLM-L6-v2)"),
)
"""Flags for the most used settings; every setting of a kind is also ``--option KEY=VALUE``."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="index_command", required=True)
    build = commands.add_parser(
        "build", help="index a BEIR corpus.jsonl, any JSONL collection or a DPR-style TSV (id, text, title)"
    )
    build.add_argument(
        "--corpus", required=True, help="corpus JSONL or TSV file, or a BEIR folder holding corpus.jsonl"
    )
    build.add_argument("--out", required=True, help="index folder to write")
    build.add_argument(
        "--retriever",
        default="bm25",
        help="an index-backed retriever kind: bm25, dense, faiss, boolean (default bm25)",
    )
    build.add_argument(
        "--id-key", default=None, help="JSON key of the document id (default: _id/id/doc_id/docid)"
    )
    build.add_argument(
        "--text-key", default=None, help="JSON key of the text (default: text/contents/body/abstract)"
    )
    for flag, kind, _, text in SHORTHANDS:
        build.add_argument(flag, type=kind, default=None, help=text)
    build.add_argument(
        "--option",
        dest="options",
        action="append",
        type=key_value,
        default=[],
        metavar="KEY=VALUE",
        help="a setting of the retriever kind, e.g. --option index=hnsw (repeatable)",
    )
    _add_verify(commands)


def _add_verify(commands: argparse._SubParsersAction) -> None:
    verify = commands.add_parser(
        "verify", help="check every file of an index against its checksum (exit 1 when damaged)"
    )
    verify.add_argument("index_dir", metavar="DIR", help="index folder (what `index build --out` wrote)")


def settings_options(args: argparse.Namespace) -> dict[str, object]:
    """The settings asked for: the shorthand flags given, then ``--option`` (``none`` means no value)."""
    chosen: dict[str, object] = {}
    for flag, _, key, _ in SHORTHANDS:
        value = getattr(args, flag.lstrip("-").replace("-", "_"))
        if value is not None:
            chosen[key] = None if value == "none" else value
    chosen.update(dict(args.options))
    return chosen


def run(args: argparse.Namespace) -> int:
    return verify(args.index_dir) if args.index_command == "verify" else build(args)


def verify(index_dir: str) -> int:
    """Load the index with every checksum checked: 0 when intact, 1 (the reason on stderr) when not."""
    from deepretrieval.retrievers import BadIndexError, retriever_class
    from deepretrieval.retrievers.storage.index_store import published_manifest

    try:
        manifest = published_manifest(index_dir)
        cls = retriever_class(manifest["kind"])
        if not cls.indexed:
            raise BadIndexError(f"index {index_dir} names kind {manifest['kind']}, which has no index")
        cls.load(index_dir, verify=True).close()
    except BadIndexError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    files = manifest["files"]
    size = sum(f["size"] for f in files.values())
    print(
        f"index {index_dir} is intact: {manifest['kind']}, {manifest['corpus']['documents']} documents, "
        f"{len(files)} files ({size / 1e6:.1f} MB) match their checksums"
    )
    return 0


def build(args: argparse.Namespace) -> int:
    """Build the index; the kind and its settings are checked before the corpus is read."""
    from deepretrieval.retrievers import known_kinds, retriever_class
    from deepretrieval.retrievers.corpus import load_corpus, open_corpus

    cls = retriever_class(args.retriever)
    if not cls.indexed:
        indexed = [kind for kind in known_kinds() if retriever_class(kind).indexed]
        raise ValueError(
            f"the {args.retriever} retriever is a search engine with no index of its own; "
            f"index build takes: {', '.join(indexed)}"
        )
    settings = cls.settings_type(**settings_options(args))
    read = open_corpus if cls.streams_corpus else load_corpus
    corpus = read(args.corpus, id_key=args.id_key, text_key=args.text_key)
    print(f"reading {args.corpus}", file=sys.stderr)
    retriever = cls.build(corpus, args.out, settings)
    print(f"indexed {len(corpus)} documents into {args.out} (fingerprint {retriever.fingerprint})")
    return 0
