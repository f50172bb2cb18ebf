"""TRL's fused LM head, told to project only the positions that are scored (the completion) on CPU as well.

TRL computes per-token log-probabilities with a chunked "fused LM head" (``trl.trainer.utils.add_fused_lm_head``).
With Triton (CUDA, XPU) it projects only the positions whose label is set, i.e. the completion tokens. Elsewhere
it projects EVERY position, prompt included, and masks afterwards, so that compiled backends see one shape
per batch. On a CPU in eager mode that is pure waste: the prompt is 3-5 times longer than the completion, and
each projected position costs a vocabulary-wide row of logits, exponentials and gradients (49,152 wide for
SmolLM2). Taking TRL's own compact path gives the same log-probabilities and gradients for less work
(``benchmarks/train_throughput.py`` measures it).

Hand-written because TRL has no setting for it: the switch TRL reads is its private ``_use_triton`` name in
``trl.trainer.utils`` (TRL 1.x). It is replaced only where TRL has it; ``tests/test_train_lm_head.py`` checks
that both paths give the same log-probabilities and gradients, so a TRL that changes it fails there first.
"""

from __future__ import annotations

import torch


def _trl_switch():
    """TRL's module whose ``_use_triton`` picks the compact path, and the kernel module's original function
    (None, None when this TRL is laid out differently: then nothing is changed)."""
    try:
        from trl.kernels import chunked_logprob
        from trl.trainer import utils
    except ImportError:
        return None, None
    original = getattr(chunked_logprob, "_use_triton", None)
    current = getattr(utils, "_use_triton", None)
    if original is None or current is None:
        return None, None
    return utils, original


def project_completions_only(enabled: bool = True) -> bool:
    """Make TRL's fused LM head project only the scored positions on CPU too (``enabled``), or restore TRL's
    own behaviour. Returns whether this TRL has the switch (False: nothing was changed). The kernels keep
    their own, unchanged choice between Triton and torch."""
    utils, original = _trl_switch()
    if utils is None:
        return False

    def compact_on_cpu(device: torch.device) -> bool:
        return device.type == "cpu" or original(device)

    utils._use_triton = compact_on_cpu if enabled else original
    return True


def projects_completions_only() -> bool:
    """Whether TRL's fused LM head currently projects only the scored positions on CPU."""
    utils, _ = _trl_switch()
    return utils is not None and utils._use_triton(torch.device("cpu"))
