"""TRL's fused LM head told to score only the completion on CPU (train/lm_head.py) gives the same per-token
log-probabilities, entropies and gradients as TRL's own CPU path, which projects every position."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM
from trl.trainer.utils import add_fused_lm_head

from deepretrieval.train.lm_head import project_completions_only, projects_completions_only


def _model() -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=500, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, max_position_embeddings=128,
    )  # fmt: skip
    model = LlamaForCausalLM(config)
    add_fused_lm_head(model, outputs=("log_probs", "entropy"))
    return model


def _score(
    model: LlamaForCausalLM, compact: bool
) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 500, (3, 24), generator=generator)
    labels = ids.clone()
    labels[:, :18] = -100  # a prompt of 18 tokens, a completion of 6
    labels[2, 21:] = -100  # one completion shorter (padding)
    project_completions_only(compact)
    try:
        out = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels, fused_lm_head=True)
    finally:
        project_completions_only(True)
    model.zero_grad(set_to_none=True)
    (out.log_probs.sum() + out.entropy.sum()).backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    return out.log_probs.detach(), out.entropy.detach(), grads


def test_completion_only_projection_equals_trls_cpu_path() -> None:
    model = _model()
    assert project_completions_only(True), "this TRL no longer has the switch: revisit train/lm_head.py"
    assert projects_completions_only()
    full_logp, full_entropy, full_grads = _score(model, compact=False)
    logp, entropy, grads = _score(model, compact=True)
    assert torch.allclose(logp, full_logp, atol=1e-5) and torch.allclose(entropy, full_entropy, atol=1e-5)
    assert full_logp[:, :17].abs().sum() == 0 and (full_logp[:, 18:20] != 0).all()  # prompt positions masked
    assert grads.keys() == full_grads.keys()
    for name, grad in grads.items():
        assert torch.allclose(grad, full_grads[name], atol=1e-5), name


def test_restoring_trls_choice() -> None:
    project_completions_only(False)
    try:
        assert not projects_completions_only()  # TRL's own rule: compact on Triton devices only
    finally:
        project_completions_only(True)
    assert projects_completions_only()


@pytest.fixture(autouse=True)
def _restore() -> Iterator[None]:
    yield
    project_completions_only(True)
