"""Shared builders for the training tests: a tiny real BEIR collection and a tiny random-init Llama."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch

from _index_helpers import task_index

DOCS = {
    "d1": "Pyrexia is an elevated body temperature, commonly treated with antipyretic medication.",
    "d2": "Myocardial infarction occurs when coronary blood flow to the heart muscle is blocked.",
    "d3": "Hypertension means persistently raised arterial blood pressure and damages vessels.",
    "d4": "Cephalalgia, or headache, may follow dehydration, stress or poor sleep.",
    "d5": "A punctured tire loses air pressure and must be repaired or replaced.",
    "d6": "The notebook fails to power on when the battery or charger is faulty.",
    "d7": "Rhinitis is inflammation of the nasal mucosa causing a runny nose.",
    "d8": "Dyspnea is difficult or laboured breathing, for example during exertion.",
}
QUERIES = {
    "q1": ("fever medicine", ["d1"], "train"),
    "q2": ("heart attack", ["d2"], "train"),
    "q3": ("high blood pressure", ["d3"], "train"),
    "q4": ("flat tyre", ["d5"], "train"),
    "q5": ("laptop will not start", ["d6"], "test"),
    "q6": ("short of breath", ["d8"], "test"),
}
# Words the tiny model may emit: query/document vocabulary, the closing tag and end-of-turn.
VOCAB_WORDS = [
    "fever",
    "pyrexia",
    "heart",
    "myocardial",
    "pressure",
    "hypertension",
    "tire",
    "notebook",
    "breath",
]
CLOSE_TAG = "</answer>"


def write_tiny_beir(folder: Path) -> Path:
    """A real BEIR-layout folder (corpus.jsonl, queries.jsonl, qrels/{train,test}.tsv)."""
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    with (folder / "corpus.jsonl").open("w") as out:
        for doc_id, text in DOCS.items():
            out.write(json.dumps({"_id": doc_id, "title": "", "text": text}) + "\n")
    with (folder / "queries.jsonl").open("w") as out:
        for query_id, (text, _, _) in QUERIES.items():
            out.write(json.dumps({"_id": query_id, "text": text}) + "\n")
    for split in ("train", "test"):
        lines = ["query-id\tcorpus-id\tscore"]
        lines += [f"{q}\t{d}\t1" for q, (_, docs, s) in QUERIES.items() if s == split for d in docs]
        (folder / "qrels" / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    return folder


def write_tiny_model(
    folder: Path,
    seed: int = 0,
    spread: float = 1.0,
    words: Sequence[str] = tuple(VOCAB_WORDS),
    close_bias: float = 0.0,
    eos_bias: float = 0.0,
    stop_at_close: bool = False,
) -> Path:
    """A 2-layer random-init Llama with the SmolLM2 tokenizer (+ ``</answer>`` as one token).

    Its output head only has weight on a dozen tokens (``words``, ``</answer>``, end of turn), so sampled
    completions are sometimes well-formed queries that retrieve the relevant document and a GRPO group gets
    rewards that differ: a real learning signal from a model that trains in seconds. ``close_bias`` and
    ``eos_bias`` make ``</answer>`` and end of turn likelier (or rarer) than a word; ``stop_at_close`` makes
    generation end at ``</answer>`` (as an end-of-sequence token of the generation config).
    """
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from deepretrieval.default_model import gguf_path

    gguf = gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    tokenizer.add_tokens([CLOSE_TAG])
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=1024,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.eos_token_id,
    )
    model = LlamaForCausalLM(config)
    close_id = tokenizer.convert_tokens_to_ids(CLOSE_TAG)
    allowed = {close_id, tokenizer.eos_token_id}
    for word in words:
        allowed.update(tokenizer(" " + word, add_special_tokens=False)["input_ids"])
    with torch.no_grad():
        # Dimension 0 of every embedding is large, so after the final RMSNorm the hidden state always
        # points along it; allowed tokens get a large weight there (logit >> the 0 of every other token)
        # plus random weight elsewhere, which makes the choice among them depend on the context.
        model.model.embed_tokens.weight[:, 0] = 1.0
        head = model.lm_head.weight
        head.zero_()
        rows = sorted(allowed)
        head[rows, 0] = 3.0
        head[rows, 1:] = torch.randn(len(rows), head.shape[1] - 1) * spread
        head[close_id, 0] += close_bias
        head[tokenizer.eos_token_id, 0] += eos_bias
    model.generation_config.eos_token_id = (
        [tokenizer.eos_token_id, close_id] if stop_at_close else tokenizer.eos_token_id
    )
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def tiny_run_config(data: Path, model: Path, out: Path, *, build_index: bool = True, **rl: object) -> dict:
    """A raw run config (as YAML would give it) for a few-second GRPO run on the tiny pieces; its BM25
    index (``out``'s sibling ``index``) is built unless it is there or ``build_index`` is False."""
    index = out.parent / "index"
    if build_index and not (index / "index.json").exists():
        task_index("beir", data, index)
    settings = {
        "num_generations": 4,
        "per_device_train_batch_size": 8,
        "max_completion_length": 8,
        "learning_rate": 0.05,
        "beta": 0.0,
        "max_steps": 1,
        "temperature": 1.0,
        "seed": 0,
    }
    settings.update(rl)
    return {
        "task": {"name": "beir", "data": str(data), "options": {"metrics": ["ndcg@10"]}},
        "retriever": {"index": str(index)},
        "model": str(model),
        "prompting": {"reasoning": False, "prefill": "<answer>"},
        "rl": settings,
        "logging": {"backend": "tensorboard"},
        "checkpointing": {"save_steps": 1, "keep": None},
        "output_dir": str(out),
    }
