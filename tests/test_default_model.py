"""The embedded default model: the real SmolLM2 GGUF converted once into a Hugging Face folder."""

from __future__ import annotations

import pytest
import torch

from deepretrieval.train.default_model import default_model_dir, ensure_default_model, resolve_model


@pytest.mark.slow
def test_conversion_loads_generates_and_is_reused(tmp_path, monkeypatch):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    monkeypatch.setenv("DEEPRETRIEVAL_CACHE", str(tmp_path))
    folder = ensure_default_model()
    assert folder == default_model_dir() and folder.is_relative_to(tmp_path)
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")], "temporary folder left behind"

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    messages = [{"role": "user", "content": "Name a fruit."}]
    inputs = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    output = model.generate(**inputs, max_new_tokens=8, do_sample=False)
    new = tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert new.strip(), "the converted model must generate text"
    assert torch.isfinite(model(**inputs).logits).all()

    weights = folder / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    assert ensure_default_model() == folder and weights.stat().st_mtime_ns == stamp, "second call must reuse"
    assert resolve_model(None) == str(folder)


def test_named_models_pass_through():
    assert resolve_model("Qwen/Qwen2.5-3B-Instruct") == "Qwen/Qwen2.5-3B-Instruct"
    assert resolve_model("/some/local/folder") == "/some/local/folder"
