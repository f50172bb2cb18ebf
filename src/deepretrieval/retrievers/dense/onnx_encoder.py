"""A faster CPU encoder: a sentence-transformers model whose transformer runs on ONNX Runtime, in float32
or with int8 weights (dynamic quantisation, per channel).

sentence-transformers' own ``backend="onnx"`` needs ``optimum-onnx``, which pins ``transformers<4.58`` and
so cannot live beside TRL's; this module does the same with ``torch.onnx`` and ``onnxruntime`` directly.
Imported only when an onnx backend is chosen (it imports torch). Only the transformer is swapped: tokenisation, prompts, truncation, pooling and normalisation stay
sentence-transformers' own, so every model it loads works unchanged.

The exported graph (attention fused by ONNX Runtime's transformer optimiser, then quantised for
``onnx-int8``) is cached under ``$DEEPRETRIEVAL_CACHE/onnx``, published atomically and checked against its
recorded sha256 on load (a damaged export is redone).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from filelock import FileLock

from deepretrieval.files import write_json
from deepretrieval.paths import cache_dir

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

OnnxBackend = Literal["onnx", "onnx-int8"]
MODEL_FILE = "model.onnx"
RECORD = "export.json"
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
EXPORT_VERSION = 2  # bump when _export changes what it writes


def onnx_encoder(encoder: SentenceTransformer, model: str, backend: OnnxBackend) -> SentenceTransformer:
    """``encoder`` (a freshly loaded sentence-transformers model, on CPU) with its transformer replaced
    by an ONNX Runtime session of the same weights (``onnx``) or int8 weights (``onnx-int8``)."""
    try:
        import onnxruntime
    except ImportError as err:
        raise ImportError(
            "the onnx encoder backends need onnxruntime: pip install 'deepretrieval[onnx]'"
        ) from err
    transformer = encoder[0]
    path = _exported(transformer, model, backend)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    transformer.model = _OnnxTransformer(session, transformer.model.config)
    return encoder


class _OnnxTransformer(torch.nn.Module):
    """Stands in for the Hugging Face model inside sentence-transformers' Transformer module."""

    def __init__(self, session: Any, config: Any):
        super().__init__()
        self.session, self.config = session, config
        self.wanted = [item.name for item in session.get_inputs()]

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **features: Any) -> dict:
        given = {"input_ids": input_ids, "attention_mask": attention_mask, **features}
        feed = {name: given[name].cpu().numpy().astype(np.int64) for name in self.wanted}
        (hidden,) = self.session.run(None, feed)
        return {"last_hidden_state": torch.from_numpy(hidden)}


def _key(transformer: Any, model: str, backend: OnnxBackend) -> str:
    """What decides the export: the model's files (name, size, time), the backend and library versions."""
    import onnxruntime

    folder = Path(getattr(transformer.model.config, "_name_or_path", "") or model)
    files = (
        sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir() if p.is_file())
        if folder.is_dir()
        else []
    )
    record = [model, str(folder), files, backend, torch.__version__, onnxruntime.__version__, EXPORT_VERSION]
    return hashlib.sha256(json.dumps(record).encode()).hexdigest()[:16]


def _exported(transformer: Any, model: str, backend: OnnxBackend) -> Path:
    """The exported graph for ``transformer``, exported now unless a checked one is in the cache."""
    root = cache_dir() / "onnx"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{model.replace('/', '--')}-{backend}-{_key(transformer, model, backend)}"
    with FileLock(f"{final}.lock"):
        if _intact(final):
            return final / MODEL_FILE
        building = Path(tempfile.mkdtemp(prefix=".export-", dir=root))
        try:
            _export(transformer, building, backend)
            write_json(
                building / RECORD,
                {"model": model, "backend": backend, "sha256": _sha256(building / MODEL_FILE)},
            )
            shutil.rmtree(final, ignore_errors=True)  # a damaged earlier export
            os.replace(building, final)
        finally:
            shutil.rmtree(building, ignore_errors=True)
    return final / MODEL_FILE


def _intact(folder: Path) -> bool:
    try:
        recorded = json.loads((folder / RECORD).read_text())["sha256"]
        return recorded == _sha256(folder / MODEL_FILE)
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _export(transformer: Any, folder: Path, backend: OnnxBackend) -> None:
    """Export the transformer (eager attention, which ONNX Runtime's optimiser fuses), optimise the graph,
    and quantise its weights to int8 per channel for ``onnx-int8``."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model

    hf_model = transformer.model
    sample = transformer.tokenizer(["an example sentence", "another"], padding=True, return_tensors="pt")
    names = [name for name in INPUTS if name in sample]
    previous = hf_model.config._attn_implementation
    hf_model.set_attn_implementation("eager")

    class Wrapped(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = hf_model

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return self.inner(**dict(zip(names, inputs))).last_hidden_state

    raw = folder / "raw.onnx"
    try:
        with torch.no_grad(), contextlib.redirect_stdout(None), warnings.catch_warnings():
            warnings.simplefilter(
                "ignore"
            )  # tracer notes about shapes taken as constants (batch, tokens are dynamic)
            torch.onnx.export(
                Wrapped().eval(),
                tuple(sample[name] for name in names),
                str(raw),
                input_names=names,
                output_names=["last_hidden_state"],
                dynamic_axes={name: {0: "batch", 1: "tokens"} for name in [*names, "last_hidden_state"]},
                opset_version=17,
                dynamo=False,
            )
    finally:
        hf_model.set_attn_implementation(previous)
    optimized = folder / "optimized.onnx"
    config = hf_model.config
    heads, width = getattr(config, "num_attention_heads", 0), getattr(config, "hidden_size", 0)
    optimize_model(str(raw), model_type="bert", num_heads=heads, hidden_size=width).save_model_to_file(
        str(optimized)
    )
    raw.unlink()
    if backend == "onnx-int8":
        quantize_dynamic(
            str(optimized),
            str(folder / MODEL_FILE),
            weight_type=QuantType.QInt8,
            per_channel=True,
            extra_options={"DefaultTensorType": 1},  # onnx.TensorProto.FLOAT, for the fused nodes
        )
        optimized.unlink()
    else:
        optimized.rename(folder / MODEL_FILE)
