"""A tiny random-init model that answers in the seed's format, and the Hugging Face cache layout that
registers a local folder under a hub id (so a published checkpoint's id resolves without a download)."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

OPEN = '</think><answer>{"query": "'
CLOSE = '"}</answer>'


def write_seed_model(folder: Path, word: str = "pyrexia") -> Path:
    """A 2-layer random Llama (SmolLM2 tokenizer) whose greedy completion of any prompt is
    ``</think><answer>{"query": "<word>"}</answer>``: the three pieces are added tokens, ranked by the
    output head alone (every hidden state points along dimension 0, the head has weight only there), and a
    large repetition penalty moves generation to the next piece once one is emitted; it stops at the last.
    ``word`` must not occur in the prompt (the penalty covers prompt tokens too)."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from deepretrieval.default_model import gguf_path

    gguf = gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    tokenizer.add_tokens([OPEN, word, CLOSE])
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=4096,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.eos_token_id,
    )
    model = LlamaForCausalLM(config)
    ids = [tokenizer.convert_tokens_to_ids(piece) for piece in (OPEN, word, CLOSE)]
    with torch.no_grad():
        model.model.embed_tokens.weight[:, 0] = 1.0
        model.lm_head.weight.zero_()
        for rank, token in enumerate(ids):
            model.lm_head.weight[token, 0] = 6.0 - rank
    model.generation_config.eos_token_id = [tokenizer.eos_token_id, ids[-1]]
    model.generation_config.repetition_penalty = 100.0
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def register_in_hf_cache(folder: Path, hub_cache: Path, model_id: str) -> Path:
    """Copy ``folder`` into ``hub_cache`` as the Hugging Face cache holds ``model_id`` (refs/main and a
    snapshot), so ``from_pretrained(model_id)`` finds it offline; returns the snapshot folder."""
    revision = "0" * 40
    root = hub_cache / f"models--{model_id.replace('/', '--')}"
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text(revision)
    snapshot = root / "snapshots" / revision
    shutil.copytree(folder, snapshot)
    return snapshot


def write_seed_parquet(records: list[dict], make_row, path: Path, shuffle: bool = False) -> Path:
    """``records`` through a seed preprocessing ``make_row(record, index)`` into ``path`` the way the seed's
    ``code/data_preprocess/*.py`` wrote its files (``datasets.Dataset.map(..., with_indices=True)``, which
    keeps the records' own columns beside verl's, then ``to_parquet``)."""
    from datasets import Dataset

    dataset = Dataset.from_list(records).map(make_row, with_indices=True)
    if shuffle:
        dataset = dataset.shuffle(seed=42)
    path.parent.mkdir(parents=True, exist_ok=True)
    dataset.to_parquet(str(path))
    return path


def verl_row(
    data_source: str, prompt: str, target: object, split: str, index: int, ability: str, **info
) -> dict:
    """The columns every seed preprocessing script adds (``process_fn``)."""
    return {
        "data_source": data_source,
        "prompt": [{"role": "user", "content": prompt}],
        "ability": ability,
        "reward_model": {"style": "rule", "ground_truth": {"target": target}},
        "extra_info": {"split": split, "index": index, **info},
    }
