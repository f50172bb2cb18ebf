"""What ``rewrite`` and ``serve`` share: the model and prompting flags, loading the rewriter, opening an
index named ``[KIND:]DIR``."""

from __future__ import annotations

import argparse
from pathlib import Path

INDEX_KINDS = ("bm25", "dense")


def add_model_args(parser: argparse.ArgumentParser, untrained_tokens: int | None = None) -> None:
    """``untrained_tokens``: the generation cap of an untrained model (``serve``), else the usual 64."""
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
        help="generation cap (default: the policy's, else 256 with reasoning, "
        f"{untrained_tokens or 64} without)",
    )


def load_rewriter(args: argparse.Namespace, feedback_from=None, untrained_tokens: int | None = None):
    """The policy (loaded once) and how it is prompted (``prompting.resolve``: these flags, else the policy
    card, else the defaults). ``feedback_from``: the index a policy trained with feedback reads each
    query's top results from; ``untrained_tokens``: the generation cap of a model without a policy card
    prompted without reasoning, unless ``--max-new-tokens`` says otherwise."""
    from deepretrieval.config import PromptingConfig
    from deepretrieval.policies import local_card
    from deepretrieval.policies.hf import HFPolicy
    from deepretrieval.prompting import resolve
    from deepretrieval.serve.rewrite import Rewriter

    if args.max_new_tokens is not None and args.max_new_tokens < 1:
        raise ValueError(f"--max-new-tokens must be positive, got {args.max_new_tokens}")
    card = local_card(args.model) if args.model else None
    max_new_tokens = args.max_new_tokens
    if max_new_tokens is None and card is None and not args.reasoning:
        max_new_tokens = untrained_tokens
    chosen = PromptingConfig(template=args.template, reasoning=args.reasoning, max_new_tokens=max_new_tokens)
    if resolve(chosen, card.prompting if card else None).feedback and feedback_from is None:  # before loading
        raise ValueError(
            f"policy {args.model} reads the top results of each query (trained with feedback): give an index to "
            "read them from (rewrite --search DIR, serve --index NAME=DIR)"
        )
    name = "untrained" if args.model is None else Path(args.model).name
    return Rewriter(HFPolicy(args.model, name=name), chosen, feedback_from=feedback_from)


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
