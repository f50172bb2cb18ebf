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
"""

from __future__ import annotations

import torch
from trl import GRPOTrainer


def prompt_groups(prefix: torch.Tensor, prefix_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Row indices of the distinct (prefix, mask) rows, and for every row the position of its distinct row."""
    rows = torch.cat([prefix, prefix_mask.to(prefix.dtype)], dim=1)
    distinct, inverse = torch.unique(rows, dim=0, return_inverse=True)
    first = torch.full((distinct.size(0),), rows.size(0), dtype=torch.long, device=rows.device)
    first = first.scatter_reduce(0, inverse, torch.arange(rows.size(0), device=rows.device), reduce="amin")
    return first, inverse


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
    cache = prefix.past_key_values
    cache.batch_select_indices(inverse)  # index, not copy: gradients of a group's rows add up in the prefix
    tail_ids = input_ids[:, split:]
    labels = tail_ids.masked_fill(attention_mask[:, split:] == 0, -100)  # the head scores labels[:, 1:]
    outputs = model(
        input_ids=tail_ids, attention_mask=attention_mask, past_key_values=cache, labels=labels,
        fused_lm_head=True,
    )  # fmt: skip
    entropies = outputs.entropy[:, -logits_to_keep:] if compute_entropy else None
    return outputs.log_probs[:, -logits_to_keep:], entropies


class SharedPromptGRPOTrainer(GRPOTrainer):
    """TRL's GRPO trainer whose per-token log-probabilities forward each distinct prompt once."""

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
