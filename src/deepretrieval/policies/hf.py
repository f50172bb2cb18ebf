"""A Hugging Face causal LM as a query-writing policy (evaluation and serving)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from transformers import StoppingCriteria, StoppingCriteriaList

from deepretrieval.default_model import resolve_model
from deepretrieval.policies.base import Completion
from deepretrieval.policies.card import PolicyCard, published_card
from deepretrieval.prompting import Prompting


class GenerationStopped(RuntimeError):
    """``complete`` ended early because its ``should_stop`` said so (no completion is returned)."""


class HFPolicy:
    """Chat messages in, completions out; greedy by default.

    Prompts are rendered as the caller's :class:`~deepretrieval.prompting.Prompting` says (the tokenizer's
    chat template, then the assistant prefill); the returned completion starts with that prefill, so it
    parses exactly as it did in training. A raw prompt (the seed's) is tokenised as it is, without the
    tokenizer's special tokens, as the seed's verl dataset did. The folder's :class:`PolicyCard`, when it
    has one, says how the policy was trained to be prompted (``prompting.resolve`` reads it); the paper's
    published checkpoints get their built-in card by id.
    ``adapter`` loads a LoRA adapter folder on top of the base model; ``model_path=None`` is the embedded
    default model. Generation uses vLLM when it is installed and a GPU is present (``backend="auto"``),
    transformers otherwise.
    """

    def __init__(
        self,
        model_path: str | None,
        *,
        adapter: str | None = None,
        temperature: float = 0.0,
        batch_size: int = 32,
        backend: str = "auto",
        name: str | None = None,
    ) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.model_path = resolve_model(model_path)
        self.name = name or Path(self.model_path).name
        adapter_config = Path(self.model_path) / "adapter_config.json"
        if adapter is None and adapter_config.is_file():  # a LoRA run's un-merged final folder
            adapter = self.model_path
            self.model_path = json.loads(adapter_config.read_text())["base_model_name_or_path"]
        self.adapter = adapter
        folder = Path(adapter or self.model_path)
        self.card = (PolicyCard.read(folder) if folder.is_dir() else None) or published_card(self.model_path)
        self.temperature = temperature
        self.batch_size = batch_size
        self.tokenizer = AutoTokenizer.from_pretrained(adapter or self.model_path)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.backend = self._pick_backend(backend, adapter)
        if self.backend == "vllm":
            from vllm import LLM

            self.llm = LLM(self.model_path, seed=0)
            return
        dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
        model = AutoModelForCausalLM.from_pretrained(self.model_path, dtype=dtype)
        if adapter:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
        self.model = model.to("cuda" if torch.cuda.is_available() else "cpu").eval()

    @property
    def fingerprint(self) -> str:
        """The weight files (name, size, modification time), the adapter and the sampling temperature."""
        folders = [Path(p) for p in (self.model_path, self.adapter) if p and Path(p).is_dir()]
        weights = [
            (str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns)
            for folder in folders
            for f in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin"))
        ]
        key = [self.model_path, self.adapter, weights, self.temperature]
        return hashlib.sha256(json.dumps(key).encode()).hexdigest()[:16]

    @classmethod
    def from_pretrained(cls, spec: str, **options: object) -> HFPolicy:
        return cls(spec, **options)

    @staticmethod
    def _pick_backend(backend: str, adapter: str | None) -> str:
        if backend not in ("auto", "vllm", "transformers"):
            raise ValueError(f"backend must be auto, vllm or transformers, got {backend!r}")
        vllm_ok = (
            importlib.util.find_spec("vllm") is not None and torch.cuda.is_available() and adapter is None
        )
        if backend == "vllm" and not vllm_ok:
            raise RuntimeError(
                "backend='vllm' needs vLLM installed, a CUDA GPU, and no separate LoRA adapter"
            )
        return "vllm" if backend == "vllm" or (backend == "auto" and vllm_ok) else "transformers"

    def complete(
        self,
        prompts: Sequence[list[dict[str, str]]],
        prompting: Prompting,
        *,
        temperature: float | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> list[str]:
        """Completions of ``prompts`` rendered as ``prompting`` says (its prefill included, at most its
        ``max_new_tokens``; each a :class:`Completion` that says whether it stopped at that cap);
        ``temperature`` defaults to the policy's own (the server passes a client's). ``should_stop`` is
        asked after every generated token (transformers backend; vLLM cannot be interrupted): once it says
        True, :class:`GenerationStopped` is raised within a token's time."""
        temperature = self.temperature if temperature is None else temperature
        texts = [prompting.render(self.tokenizer, messages) for messages in prompts]
        if self.backend == "vllm":
            from vllm import SamplingParams

            params = SamplingParams(temperature=temperature, max_tokens=prompting.max_new_tokens)
            inputs: list = texts
            if prompting.rendering == "raw":  # token ids, so vLLM adds no special token of its own
                ids = self.tokenizer(texts, add_special_tokens=False)["input_ids"]
                inputs = [{"prompt_token_ids": row} for row in ids]
            outputs = self.llm.generate(inputs, params, use_tqdm=False)
            return [
                Completion(prompting.prefill + out.outputs[0].text, out.outputs[0].finish_reason == "length")
                for out in outputs
            ]
        completions: list[str] = []
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            completions += [
                Completion(prompting.prefill + text, text.truncated)
                for text in self._generate(
                    batch, prompting.max_new_tokens, temperature, prompting.rendering != "raw", should_stop
                )
            ]
        return completions

    @torch.inference_mode()
    def _generate(
        self,
        texts: list[str],
        max_new_tokens: int,
        temperature: float,
        special_tokens: bool = True,
        should_stop: Callable[[], bool] | None = None,
    ) -> list[Completion]:
        # Chat prompts: tokenised as TRL tokenises text prompts in training (default special-token
        # handling). Raw prompts carry their own markers (the seed's verl: add_special_tokens=False).
        batch = self.tokenizer(
            texts, return_tensors="pt", padding=True, add_special_tokens=special_tokens
        ).to(self.model.device)
        sampling = (
            {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
        )
        stop = _AskBetweenTokens(should_stop) if should_stop is not None else None
        output = self.model.generate(
            **batch,
            max_new_tokens=max_new_tokens,
            pad_token_id=self.tokenizer.pad_token_id,
            stopping_criteria=StoppingCriteriaList([stop]) if stop is not None else None,
            **sampling,
        )
        if stop is not None and stop.stopped:
            raise GenerationStopped("generation was stopped before it finished")
        new_tokens = output[:, batch["input_ids"].shape[1] :]
        texts = self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        return [
            Completion(text, capped) for text, capped in zip(texts, self._capped(new_tokens, max_new_tokens))
        ]

    def _capped(self, new_tokens: torch.Tensor, max_new_tokens: int) -> list[bool]:
        """Per row: generation ran to ``max_new_tokens`` without an end-of-sequence token."""
        if new_tokens.shape[1] < max_new_tokens:  # every row ended early
            return [False] * new_tokens.shape[0]
        eos = self.model.generation_config.eos_token_id
        ids = eos if isinstance(eos, list) else [] if eos is None else [eos]
        stops = torch.tensor(ids, dtype=new_tokens.dtype, device=new_tokens.device)
        return (~torch.isin(new_tokens, stops).any(dim=1)).tolist()


class _AskBetweenTokens(StoppingCriteria):
    """Ends generation (every row) once ``should_stop()`` says so; transformers asks after each token."""

    def __init__(self, should_stop: Callable[[], bool]) -> None:
        self.should_stop = should_stop
        self.stopped = False

    def __call__(self, input_ids: torch.LongTensor, scores: object, **kwargs: object) -> torch.BoolTensor:
        self.stopped = self.stopped or self.should_stop()
        return torch.full((input_ids.shape[0],), self.stopped, dtype=torch.bool, device=input_ids.device)
