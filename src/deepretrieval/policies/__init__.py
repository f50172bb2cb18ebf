"""Policies for evaluation and serving, named by a spec string: :func:`load_policy`.

=====================  ===============================================================================
``original``           the example's original text, unchanged
``gold``               the ground-truth answer (SQL): proves a harness
``expert``             literature search: each review's own expert search strategy
``or-words``           the original's words joined by OR (no model; the hackable baseline of Boolean search)
``pico-or``            literature search: the paper's "original query", ``P OR I OR C OR O`` of a PICO topic
``feedback``           blind pseudo-relevance feedback: the top results' snippets, all appended
``untrained``          the embedded default model (SmolLM2-135M-Instruct), no training
``openai:MODEL``       an OpenAI-compatible chat-completions endpoint (``OPENAI_BASE_URL``, ``OPENAI_API_KEY``)
``predictions:PATH``   an external system's outputs, one per line in split order, or JSONL id + prediction
anything else          a local model folder, one of our checkpoints (its policy card decides the
                       prompting) or a Hugging Face id
=====================  ===============================================================================

A spec may end in a variant, ``@reasoning`` or ``@no-reasoning`` (``untrained@no-reasoning``), so that one
evaluation table holds a model with and without reasoning; :func:`parse_policy_spec` splits it off. A new
kind of policy is one function registered in :data:`KINDS` (named) or :data:`PREFIXES` (``prefix:argument``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepretrieval.policies.base import AnswerPolicy, CompletionPolicy, GenerationFailure, Policy
from deepretrieval.policies.baselines import (
    BLIND_FEEDBACK,
    ExpertStrategy,
    Feedback,
    Gold,
    OriginalQuery,
    OrWords,
)
from deepretrieval.policies.card import PolicyCard, published_card
from deepretrieval.policies.seed_baselines import PicoOr
from deepretrieval.prompting import DEFAULT_FEEDBACK_WORDS
from deepretrieval.registry import Registry
from deepretrieval.tasks.base import Task

__all__ = [
    "AnswerPolicy",
    "CompletionPolicy",
    "GenerationFailure",
    "Policy",
    "PolicyOptions",
    "PolicySpec",
    "is_local_model",
    "load_policy",
    "local_card",
    "parse_policy_spec",
]

VARIANTS = {"reasoning": True, "no-reasoning": False}


@dataclass(frozen=True)
class PolicySpec:
    """One policy as named on the command line: ``text`` as given (the row label), ``base`` the spec
    without its variant, ``reasoning`` the variant's choice (None: as the policy's card says)."""

    text: str
    base: str
    reasoning: bool | None = None


def parse_policy_spec(text: str) -> PolicySpec:
    """Split ``untrained@no-reasoning`` into its base spec and variant; a path containing ``@`` that exists
    is taken whole."""
    text = text.strip()
    if not text:
        raise ValueError("empty policy name in --policy")
    base, sep, variant = text.rpartition("@")
    if not sep or Path(text).exists():
        return PolicySpec(text, text)
    if variant not in VARIANTS:
        raise ValueError(
            f"unknown policy variant {variant!r} in {text!r}; known: {', '.join('@' + v for v in VARIANTS)}"
        )
    if not base:
        raise ValueError(f"policy variant {text!r} names no policy (e.g. untrained@{variant})")
    return PolicySpec(text, base, VARIANTS[variant])


@dataclass(frozen=True)
class PolicyOptions:
    """What opening a policy may need beyond its spec: the row ``name``; the ``task`` (blind feedback reads
    its results); how many results blind feedback appends and how many words of each; sampling and
    batching of local models; the endpoint settings of ``openai:`` policies."""

    name: str | None = None
    task: Task | None = None
    feedback: int = BLIND_FEEDBACK
    feedback_words: int = DEFAULT_FEEDBACK_WORDS
    model: dict[str, Any] = field(default_factory=dict)  # temperature, batch_size, backend
    openai: dict[str, Any] = field(default_factory=dict)  # base_url, api_key, concurrency, max_retries...


def _feedback(options: PolicyOptions) -> Policy:
    if options.task is None:
        raise ValueError("--policy feedback reads the task's results: open it with the task")
    return Feedback(options.task, options.feedback, options.feedback_words)


def _untrained(options: PolicyOptions) -> Policy:
    from deepretrieval.policies.hf import HFPolicy

    return HFPolicy(None, name=options.name or "untrained", **options.model)


def _openai(model: str, options: PolicyOptions) -> Policy:
    from deepretrieval.policies.openai import OpenAIPolicy

    return OpenAIPolicy(model, name=options.name, **options.openai)


def _predictions(path: str, options: PolicyOptions) -> Policy:
    from deepretrieval.policies.predictions import Predictions

    return Predictions(path, name=options.name)


def _model(path: str, options: PolicyOptions) -> Policy:
    from deepretrieval.policies.hf import HFPolicy

    return HFPolicy(path, name=options.name, **options.model)


KINDS: Registry[Callable[[PolicyOptions], Policy]] = Registry(
    "policy",
    {
        "original": lambda _: OriginalQuery(),
        "gold": lambda _: Gold(),
        "expert": lambda _: ExpertStrategy(),
        "or-words": lambda _: OrWords(),
        "pico-or": lambda _: PicoOr(),
        "feedback": _feedback,
        "untrained": _untrained,
    },
)
"""Policies named by a word."""
PREFIXES: Registry[Callable[[str, PolicyOptions], Policy]] = Registry(
    "policy prefix", {"openai": _openai, "predictions": _predictions}
)
"""Policies named ``prefix:argument``; any other spec is a local model folder or a Hugging Face id."""


def load_policy(spec: str, options: PolicyOptions | None = None) -> Policy:
    """The policy named by ``spec`` (without a variant; see the module docstring)."""
    options = options or PolicyOptions()
    if spec in KINDS:
        return KINDS.get(spec)(options)
    prefix, sep, argument = spec.partition(":")
    if sep and prefix in PREFIXES:
        return PREFIXES.get(prefix)(argument, options)
    return _model(spec, options)


def is_local_model(spec: str) -> bool:
    """Whether ``spec`` names weights loaded in this process (``untrained``, a folder, a hub id)."""
    prefix, sep, _ = spec.partition(":")
    return spec == "untrained" or (spec not in KINDS and not (sep and prefix in PREFIXES))


def local_card(spec: str) -> PolicyCard | None:
    """The policy card of a local model, read without loading its weights: the folder's card, else the
    built-in card of a published checkpoint of the paper (by hub id); None for untrained or a plain model.
    A LoRA run's un-merged folder keeps the card beside the adapter."""
    if spec == "untrained":
        return None
    folder = Path(spec)
    card = PolicyCard.read(folder) if folder.is_dir() else None
    return card or published_card(spec)
