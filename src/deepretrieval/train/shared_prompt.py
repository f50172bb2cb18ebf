"""The GRPO update with one forward pass per distinct prompt, shared by the samples of its group.

TRL scores a batch of G samples per prompt by running every row, prompt included, through the model: the
prompt's activations are computed (and back-propagated) G times. Here each distinct prompt (all but its last
token) runs once with gradients, its key/value cache is repeated to the rows of its group, and only the last
prompt token and the completion run per row on top of it. The log-probabilities are the same computation
(same positions, same mask, same weights; only summation order differs) and the prompt's gradient is the sum
of its group's, exactly what the chain rule gives for the repeated activations
(``tests/test_train_shared_prompt.py`` checks both against TRL's own pass). On a CPU, where the update is
compute-bound and prompts are several times longer than the answers, this is the largest single saving
(``benchmarks/train_throughput.py`` measures it).

Hand-written because TRL has no such option (its ``_get_per_token_logps_and_entropies`` runs whole rows). The
shared pass is used only where it is known to be equivalent: a bare model (no DDP / DeepSpeed / FSDP
wrapper, which expect one forward per backward), no gradient checkpointing (which turns the cache off),
text-only inputs, and a batch where some prompt repeats. Everywhere else TRL's own pass runs.

Generation shares the prompt the same way: TRL's transformers path calls ``model.generate`` on the G copies of
each prompt, so every prompt is prefilled G times. :func:`share_prompt_prefill` makes the model's ``generate``
prefill each distinct prompt (all but its last token) once, repeat the key/value cache to its group and let
``generate`` go on from there: the same logits, so in fp32 the same tokens under the same seed
(``tests/test_train_shared_prompt.py`` checks greedy and sampled tokens and the logits; under bf16 autocast
the prefix rounds differently in a smaller batch, so sampled tokens can part where two are near a tie). On
the quickstart's batches it makes generation 1.67x faster (``benchmarks/generation_cpu.py``). The prefix is
forwarded with the position ids ``generate`` itself derives from a left-padded mask; without them padded rows
would see shifted positions. Sampling settings that expand rows inside ``generate`` (beams,
``num_return_sequences``), a static cache, multimodal inputs and a batch without repeats use ``generate`` as is.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import torch
from trl import GRPOTrainer


def prompt_groups(prefix: torch.Tensor, prefix_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Row indices of the distinct (prefix, mask) rows, and for every row the position of its distinct row."""
    rows = torch.cat([prefix, prefix_mask.to(prefix.dtype)], dim=1)
    distinct, inverse = torch.unique(rows, dim=0, return_inverse=True)
    first = torch.full((distinct.size(0),), rows.size(0), dtype=torch.long, device=rows.device)
    first = first.scatter_reduce(0, inverse, torch.arange(rows.size(0), device=rows.device), reduce="amin")
    return first, inverse


def _cache_keyword(model: torch.nn.Module) -> str:
    """The name the model's forward takes a key/value cache under (``cache`` from transformers 5.2x on,
    ``past_key_values`` before: the old name still works there but warns and goes in 5.40)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # PEFT passes **kwargs on
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"


def shared_prompt_logps(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    logits_to_keep: int,
    compute_entropy: bool,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-token log-probabilities (and entropies) of the last ``logits_to_keep`` tokens of every row, as TRL's
    fused LM head gives them, with each distinct prompt forwarded once. Rows are left-padded prompts followed
    by right-padded completions (TRL's layout); the model carries TRL's fused LM head."""
    split = input_ids.size(1) - logits_to_keep - 1  # the prefix: the prompt without its last token
    first, inverse = prompt_groups(input_ids[:, :split], attention_mask[:, :split])
    prefix = model(
        input_ids=input_ids[first, :split], attention_mask=attention_mask[first, :split], use_cache=True,
        logits_to_keep=1,
    )  # fmt: skip
    keyword = _cache_keyword(model)
    cache = prefix[keyword]
    cache.batch_select_indices(inverse)  # index, not copy: gradients of a group's rows add up in the prefix
    tail_ids = input_ids[:, split:]
    labels = tail_ids.masked_fill(attention_mask[:, split:] == 0, -100)  # the head scores labels[:, 1:]
    outputs = model(
        input_ids=tail_ids, attention_mask=attention_mask, labels=labels, fused_lm_head=True,
        **{keyword: cache},
    )  # fmt: skip
    entropies = outputs.entropy[:, -logits_to_keep:] if compute_entropy else None
    return outputs.log_probs[:, -logits_to_keep:], entropies


def _may_prefill_once(model: torch.nn.Module, input_ids: Any, attention_mask: Any, kwargs: dict) -> bool:
    """Whether ``generate(input_ids, attention_mask, **kwargs)`` is a call a shared prefill is known to equal
    (whether any prompt repeats is decided by the caller, from the groups it needs anyway)."""
    if not isinstance(input_ids, torch.Tensor) or not isinstance(attention_mask, torch.Tensor):
        return False
    if set(kwargs) - {"generation_config"} or model.config.is_encoder_decoder:
        return False  # other inputs (pixels, a cache, per-call sampling settings): generate as is
    config = kwargs.get("generation_config") or model.generation_config
    expands = (config.num_beams or 1) != 1 or (config.num_return_sequences or 1) != 1  # None: the default, 1
    if expands or config.cache_implementation is not None:
        return False
    return input_ids.dim() == 2 and input_ids.size(1) > 1 and bool(attention_mask[:, -1].all())  # left-padded


def generate_with_shared_prefill(
    model: torch.nn.Module, generate: Callable[..., Any], input_ids: Any = None, attention_mask: Any = None,
    **kwargs: Any,
) -> Any:  # fmt: skip
    """``generate(input_ids, attention_mask, **kwargs)`` with each distinct prompt prefilled once."""
    if not _may_prefill_once(model, input_ids, attention_mask, kwargs):
        return generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
    prefix_ids, prefix_mask = input_ids[:, :-1], attention_mask[:, :-1]
    first, inverse = prompt_groups(prefix_ids, prefix_mask)
    if first.numel() == input_ids.size(0):  # no prompt repeats: nothing to share
        return generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
    positions = (prefix_mask[first].long().cumsum(-1) - 1).masked_fill(prefix_mask[first] == 0, 1)
    keyword = _cache_keyword(model)
    with torch.no_grad():
        prefix = model(
            input_ids=prefix_ids[first], attention_mask=prefix_mask[first], position_ids=positions,
            use_cache=True, logits_to_keep=1,
        )  # fmt: skip
    cache = prefix[keyword]
    cache.batch_select_indices(inverse)
    return generate(input_ids=input_ids, attention_mask=attention_mask, **{keyword: cache}, **kwargs)


def share_prompt_prefill(model: torch.nn.Module) -> None:
    """Make ``model.generate`` prefill each distinct prompt of a batch once (see the module docstring)."""
    model.generate = functools.partial(generate_with_shared_prefill, model, model.generate)


class SharedPromptGRPOTrainer(GRPOTrainer):
    """TRL's GRPO trainer that forwards each distinct prompt once: in generation and in the per-token
    log-probabilities of the update."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        share_prompt_prefill(self.accelerator.unwrap_model(self.model))

    def _get_per_token_logps_and_entropies(
        self,
        model,
        input_ids,
        attention_mask,
        logits_to_keep,
        batch_size=None,
        compute_entropy=False,
        compute_aux_loss=False,
        **multimodal,
    ):
        if not self._can_share(model, input_ids, logits_to_keep, compute_aux_loss, multimodal):
            return super()._get_per_token_logps_and_entropies(
                model, input_ids, attention_mask, logits_to_keep, batch_size, compute_entropy,
                compute_aux_loss, **multimodal,
            )  # fmt: skip
        batch_size = batch_size or input_ids.size(0)
        logps, entropies = [], []
        for start in range(0, input_ids.size(0), batch_size):
            rows = slice(start, start + batch_size)
            with self.accelerator.autocast():
                chunk_logps, chunk_entropies = shared_prompt_logps(
                    model, input_ids[rows], attention_mask[rows], logits_to_keep, compute_entropy
                )
            logps.append(chunk_logps)
            entropies.append(chunk_entropies)
        return torch.cat(logps), torch.cat(entropies) if compute_entropy else None, None

    def _can_share(self, model, input_ids, logits_to_keep, compute_aux_loss, multimodal) -> bool:
        """Whether the shared pass is known to equal TRL's here (see the module docstring)."""
        if compute_aux_loss or any(value is not None for value in multimodal.values()):
            return False
        if model is not self.accelerator.unwrap_model(model):
            return False
        checkpointing = getattr(model, "is_activation_checkpointing", None)  # renamed in transformers 5.2x
        if checkpointing if checkpointing is not None else getattr(model, "is_gradient_checkpointing", False):
            return False
        split = input_ids.size(1) - logits_to_keep - 1
        return split > 0 and torch.unique(input_ids[:, :split], dim=0).size(0) < input_ids.size(0)
