"""Policies for evaluation and serving: ``load_policy("original" | "gold" | MODEL)``."""

from __future__ import annotations

from deepretrieval.policies.base import AnswerPolicy, CompletionPolicy, Policy
from deepretrieval.policies.baselines import ExpertStrategy, Gold, OriginalQuery

__all__ = ["AnswerPolicy", "CompletionPolicy", "Policy", "load_policy"]


def load_policy(spec: str, **options: object) -> Policy:
    """``original`` and ``gold`` are baselines; anything else is a Hugging Face id or local model folder."""
    if spec == "original":
        return OriginalQuery()
    if spec == "gold":
        return Gold()
    if spec == "expert":
        return ExpertStrategy()
    from deepretrieval.policies.hf import HFPolicy

    return HFPolicy.from_pretrained(spec, **options)
