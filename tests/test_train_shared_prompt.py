"""The update's shared prompt pass (train/shared_prompt.py) gives TRL's own per-token log-probabilities,
entropies and gradients, on TRL's batch layout: left-padded prompts of different lengths, each repeated for
its group in any order, followed by right-padded completions. The shared prefill of generation gives the
tokens and logits of ``generate`` itself on the same layout."""

from __future__ import annotations

import pytest
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM
from trl import GRPOTrainer
from trl.trainer.utils import add_fused_lm_head

from deepretrieval.train.lm_head import project_completions_only
from deepretrieval.train.shared_prompt import SharedPromptGRPOTrainer, prompt_groups, share_prompt_prefill

VOCAB, PAD = 500, 0
PROMPT_LENGTHS = (14, 9, 11)  # three distinct prompts, left-padded to 14
GROUP, COMPLETION = 4, 7


def _model() -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, max_position_embeddings=128, pad_token_id=PAD,
    )  # fmt: skip
    model = LlamaForCausalLM(config)
    add_fused_lm_head(model, outputs=("log_probs", "entropy"))
    return model


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of TRL's update batch: groups of GROUP samples per prompt, shuffled."""
    generator = torch.Generator().manual_seed(1)
    width = max(PROMPT_LENGTHS)
    rows, masks = [], []
    for length in PROMPT_LENGTHS:
        prompt = torch.randint(1, VOCAB, (length,), generator=generator)
        for _ in range(GROUP):
            completion = torch.randint(1, VOCAB, (COMPLETION,), generator=generator)
            kept = int(torch.randint(1, COMPLETION + 1, (1,), generator=generator))
            completion[kept:] = PAD
            ids = torch.cat([torch.full((width - length,), PAD), prompt, completion])
            mask = torch.cat(
                [torch.zeros(width - length), torch.ones(length + kept), torch.zeros(COMPLETION - kept)]
            )
            rows.append(ids)
            masks.append(mask.long())
    order = torch.randperm(len(rows), generator=generator)
    return torch.stack(rows)[order], torch.stack(masks)[order]


def _trainer(cls: type[GRPOTrainer]) -> GRPOTrainer:
    """A trainer with only what the log-prob pass reads (its accelerator, fp32), skipping TRL's full set-up.
    Accelerate keeps one process-wide state: a training run earlier in this process (bf16 autocast on a CPU
    with native bf16) would otherwise leave its mixed precision to this accelerator."""
    AcceleratorState._reset_state(reset_partial_state=True)
    trainer = object.__new__(cls)
    trainer.accelerator = Accelerator(cpu=True, mixed_precision="no")
    return trainer


def _score(trainer: GRPOTrainer, model: LlamaForCausalLM, batch_size: int | None = None):
    ids, mask = _batch()
    logps, entropies, _ = trainer._get_per_token_logps_and_entropies(
        model, ids, mask, COMPLETION, batch_size=batch_size, compute_entropy=True
    )
    completion_mask = mask[:, -COMPLETION:].float()
    weights = torch.linspace(-1.0, 1.0, ids.size(0)).unsqueeze(1)  # advantages of both signs
    model.zero_grad(set_to_none=True)
    ((logps * weights + 0.1 * entropies) * completion_mask).sum().backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    return logps.detach() * completion_mask, entropies.detach() * completion_mask, grads


@pytest.mark.parametrize("batch_size", [None, 5])  # 5: chunks that split groups
def test_shared_prompt_pass_equals_trls(batch_size: int | None) -> None:
    project_completions_only(True)
    model = _model()
    shared = _trainer(SharedPromptGRPOTrainer)
    assert shared._can_share(model, _batch()[0], COMPLETION, False, {})  # the shared pass is what runs below
    trl_logp, trl_entropy, trl_grads = _score(_trainer(GRPOTrainer), model, batch_size)
    logp, entropy, grads = _score(shared, model, batch_size)
    assert (trl_logp != 0).sum() == (_batch()[1][:, -COMPLETION:]).sum()  # every kept token scored
    torch.testing.assert_close(logp, trl_logp, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(entropy, trl_entropy, atol=1e-5, rtol=1e-4)
    assert grads.keys() == trl_grads.keys()
    for name, grad in grads.items():
        torch.testing.assert_close(grad, trl_grads[name], atol=1e-5, rtol=1e-4, msg=name)


def test_groups_are_found_by_prompt_and_mask() -> None:
    ids, mask = _batch()
    split = ids.size(1) - COMPLETION - 1
    first, inverse = prompt_groups(ids[:, :split], mask[:, :split])
    assert first.numel() == len(PROMPT_LENGTHS)
    assert torch.equal(ids[first[inverse], :split], ids[:, :split])  # every row maps to its own prompt
    assert sorted(torch.bincount(inverse).tolist()) == [GROUP] * len(PROMPT_LENGTHS)


def test_trls_pass_runs_where_sharing_is_not_known_to_be_equal() -> None:
    model = _model()
    trainer = _trainer(SharedPromptGRPOTrainer)
    ids, _ = _batch()
    assert trainer._can_share(model, ids, COMPLETION, False, {})
    assert not trainer._can_share(model, ids[::GROUP][:2], COMPLETION, False, {})  # no prompt repeats
    assert not trainer._can_share(model, ids, COMPLETION, True, {})  # MoE auxiliary loss
    assert not trainer._can_share(model, ids, COMPLETION, False, {"pixel_values": torch.zeros(1)})
    enable = getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable
    enable()
    assert not trainer._can_share(model, ids, COMPLETION, False, {})  # the cache is off


def _prompts() -> tuple[torch.Tensor, torch.Tensor]:
    """Generation's input: the prompts of ``_batch`` without completions, left-padded, groups shuffled."""
    ids, mask = _batch()
    return ids[:, :-COMPLETION], mask[:, :-COMPLETION]


def _generate(model: LlamaForCausalLM, ids: torch.Tensor, mask: torch.Tensor, **settings):
    """``model.generate`` as TRL calls it, with the rows each forward saw (batch, length) recorded."""
    seen: list[tuple[int, int]] = []
    hook = model.model.embed_tokens.register_forward_hook(
        lambda _, args, __: seen.append(tuple(args[0].shape))
    )
    config = GenerationConfig(
        max_new_tokens=6, pad_token_id=PAD, output_logits=True, return_dict_in_generate=True, **settings
    )
    torch.manual_seed(7)
    try:
        out = model.generate(input_ids=ids, attention_mask=mask, generation_config=config)
    finally:
        hook.remove()
    return out, seen


@pytest.mark.parametrize(
    "sampling", [{"do_sample": False}, {"do_sample": True, "temperature": 1.0, "top_k": 0}]
)
def test_shared_prefill_generates_what_generate_does(sampling: dict) -> None:
    model = _model().eval()
    ids, mask = _prompts()
    plain, plain_seen = _generate(model, ids, mask, **sampling)
    share_prompt_prefill(model)
    shared, shared_seen = _generate(model, ids, mask, **sampling)
    assert plain_seen[0] == tuple(ids.shape)  # generate alone prefills every row
    assert shared_seen[0] == (
        len(PROMPT_LENGTHS),
        ids.size(1) - 1,
    )  # each distinct prompt once, last token off
    assert shared_seen[1] == (ids.size(0), 1)  # then every row goes on from its group's cache
    assert torch.equal(shared.sequences, plain.sequences)
    for step, (ours, theirs) in enumerate(zip(shared.logits, plain.logits, strict=True)):
        torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4, msg=f"new token {step}")


def test_generate_runs_as_is_where_a_shared_prefill_is_not_known_to_be_equal() -> None:
    model = _model().eval()
    share_prompt_prefill(model)
    ids, mask = _prompts()
    distinct = ids[::GROUP][: len(PROMPT_LENGTHS)], mask[::GROUP][: len(PROMPT_LENGTHS)]
    for rows, settings in (
        (distinct, {}),  # no prompt repeats
        ((ids, mask), {"num_return_sequences": 2, "do_sample": True}),  # generate expands the rows itself
        ((ids, mask), {"cache_implementation": "static"}),
    ):
        _, seen = _generate(model, *rows, **settings)
        assert seen[0] == tuple(rows[0].shape) or seen[0][0] == rows[0].size(0) * 2, settings
