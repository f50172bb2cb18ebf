"""Policies for evaluation and serving, named by a spec string: :func:`load_policy`.

=====================  ===============================================================================
``original``           the example's original text, unchanged
``gold``               the ground-truth answer (SQL): proves a harness
``feedback``           blind pseudo-relevance feedback: the top results the task shows (task option
                       ``feedback``), all appended (``deepretrieval eval`` opens it with the task)
``untrained``          the embedded default model (SmolLM2-135M-Instruct), no training
``openai:MODEL``       an OpenAI-compatible chat-completions endpoint (``OPENAI_BASE_URL``, ``OPENAI_API_KEY``)
``predictions:PATH``   an external system's outputs, one per line in split order, or JSONL id + prediction
anything else          a local model folder, one of our checkpoints (its policy card decides the
                       prompting) or a Hugging Face id
=====================  ===============================================================================

A spec may end in a variant, ``@reasoning`` or ``@no-reasoning`` (``untrained@no-reasoning``), so that one
evaluation table holds a model with and without reasoning; :func:`parse_policy_spec` splits it off.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from deepretrieval.policies.base import AnswerPolicy, CompletionPolicy, GenerationFailure, Policy
from deepretrieval.policies.baselines import ExpertStrategy, Gold, OriginalQuery

__all__ = [
    "AnswerPolicy",
    "CompletionPolicy",
    "GenerationFailure",
    "Policy",
    "PolicySpec",
    "load_policy",
    "parse_policy_spec",
]

VARIANTS = {"reasoning": True, "no-reasoning": False}
MODEL_OPTIONS = {"max_new_tokens", "temperature", "batch_size", "backend", "prefill"}
OPENAI_OPTIONS = {"base_url", "api_key", "concurrency", "max_retries", "timeout_s", "cache"}


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


def load_policy(spec: str, **options: object) -> Policy:
    """The policy named by ``spec`` (without a variant; see the module docstring).

    ``options`` go to the kind that uses them and are ignored by the others: ``max_new_tokens``,
    ``temperature``, ``batch_size``, ``backend``, ``prefill`` for local models; ``base_url``, ``api_key``,
    ``concurrency``, ``max_retries``, ``timeout_s``, ``cache`` (plus ``temperature``, ``max_new_tokens``)
    for ``openai:``; ``name`` for all."""
    unknown = sorted(set(options) - MODEL_OPTIONS - OPENAI_OPTIONS - {"name"})
    if unknown:
        raise TypeError(f"load_policy: unknown options {unknown}")
    name = options.get("name")
    if spec == "original":
        return OriginalQuery()
    if spec == "gold":
        return Gold()
    if spec == "expert":
        return ExpertStrategy()
    if spec.startswith("predictions:"):
        from deepretrieval.policies.predictions import Predictions

        return Predictions(spec.removeprefix("predictions:"), name=name)  # type: ignore[arg-type]
    if spec.startswith("openai:"):
        from deepretrieval.policies.openai import OpenAIPolicy

        chosen = {k: v for k, v in options.items() if k in OPENAI_OPTIONS | {"temperature"}}
        if "max_new_tokens" in options:
            chosen["max_tokens"] = options["max_new_tokens"]
        return OpenAIPolicy(spec.removeprefix("openai:"), name=name, **chosen)  # type: ignore[arg-type]
    from deepretrieval.policies.hf import HFPolicy

    chosen = {k: v for k, v in options.items() if k in MODEL_OPTIONS}
    if spec == "untrained":
        return HFPolicy(None, name=name or "untrained", **chosen)  # type: ignore[arg-type]
    return HFPolicy.from_pretrained(spec, name=name, **chosen)
