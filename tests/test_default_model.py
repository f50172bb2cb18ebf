"""The embedded default model: the real SmolLM2 GGUF converted once into a Hugging Face folder."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch

from deepretrieval.default_model import (
    ModelNotFoundError,
    default_model_dir,
    ensure_default_model,
    resolve_model,
)


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


def test_a_missing_local_folder_fails_fast(tmp_path):
    with pytest.raises(ModelNotFoundError, match="model folder not found"):
        resolve_model(str(tmp_path / "runs" / "x" / "final"))
    assert resolve_model(str(tmp_path)) == str(tmp_path)


def test_a_hub_id_offline_and_not_cached_fails_fast(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="HF_HUB_OFFLINE"):
        resolve_model("some-org/some-model")


def test_a_hub_id_the_hub_does_not_know_fails_fast(monkeypatch, tmp_path):
    # a real HTTP server on loopback standing in for the hub
    class NotFound(BaseHTTPRequestHandler):
        def do_HEAD(self):
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
    try:
        with pytest.raises(ModelNotFoundError, match="does not exist"):
            resolve_model("some-org/some-model")
        monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:1")  # nothing listens: unreachable
        with pytest.raises(ModelNotFoundError, match="cannot be reached"):
            resolve_model("some-org/some-model")
    finally:
        server.shutdown()
