"""The run configuration: one validated schema for ``deepretrieval train CONFIG.yaml``.

Every section forbids unknown keys. Errors name the offending key by its dotted path and say what was
expected, e.g. ``rl.num_generatons: unknown key (did you mean num_generations?)``. Relative paths are
taken from the current working directory; ``~`` and ``$VARS`` are expanded.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class ConfigError(ValueError):
    """A run configuration that cannot be used; the message lists every problem by dotted key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def _expand(path: str | None) -> str | None:
    return None if path is None else os.path.expandvars(os.path.expanduser(path))


class TaskConfig(_Section):
    """Which task, on which data. ``options`` go to ``deepretrieval.tasks.load_task``."""

    name: str = Field(min_length=1)
    data: str | None = None
    split: str = "train"
    eval_split: str | None = Field(
        default=None, description="the split evaluation reads (null: the task's own, test when it has one)"
    )
    limit: int | None = Field(default=None, gt=0, description="use at most this many training examples")
    options: dict[str, Any] = Field(default_factory=dict)

    _expand_data = field_validator("data")(classmethod(lambda cls, v: _expand(v)))


class RetrieverConfig(_Section):
    """The judge for retrieval tasks, by registry name (``bm25``, ``dense``, ``boolean``, ``pubmed``,
    ``ctgov``, ...; null = the task's default: BM25, or the local Boolean engine for literature search).
    ``index: null`` builds the
    index from the task's corpus on first use and caches it; ``options`` are the retriever's settings
    (BM25: k1, b, stemmer...; dense: model...); ``cache`` is a folder for a persistent cache of search
    results (off by default: an in-memory cache always deduplicates)."""

    kind: str | None = Field(default=None, min_length=1)
    index: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    cache: str | None = None

    _expand_paths = field_validator("index", "cache")(classmethod(lambda cls, v: _expand(v)))


class PromptingConfig(_Section):
    """How the policy is prompted (see ``deepretrieval.prompting``). A field left out (null) is decided by
    the ``preset`` when one is named, else by the policy card of a trained policy, else by the default: the
    task's template, no reasoning, no prefill, the chat template, ``<answer>`` tags, strict format rules,
    rewrite mode, no feedback, 64 new tokens (256 with reasoning). ``prompting: seed:pubmed`` is short for
    ``prompting: {preset: seed:pubmed}``."""

    preset: str | None = Field(
        default=None,
        description="a named prompting, e.g. seed:pubmed (the paper's prompt, prefill and format rules for "
        "that dataset); the other fields override it",
    )
    template: str | None = Field(default=None, description="prompt template name (null: the task's own)")
    reasoning: bool | None = Field(default=None, description="ask for <think> reasoning before the answer")
    prefill: str | None = Field(
        default=None,
        description="text the assistant turn starts with, e.g. '<answer>' (parsed with the completion)",
    )
    rendering: Literal["chat", "raw"] | None = Field(
        default=None, description="chat: the tokenizer's chat template; raw: the prompt text as it is"
    )
    answer_format: Literal["tags", "json"] | None = Field(
        default=None, description="tags: text or JSON inside <answer>; json: a JSON object is required"
    )
    query_mode: Literal["rewrite", "expand"] | None = Field(
        default=None,
        description="rewrite: the policy's query replaces the user's (the seed); expand: the retriever gets "
        "the original query followed by the policy's terms",
    )
    feedback: int | None = Field(default=None, ge=0, description="show the top N results of the user's query")
    feedback_words: int | None = Field(default=None, ge=1, description="words shown of each feedback result")
    max_new_tokens: int | None = Field(default=None, gt=0, description="generation cap (eval and serve)")
    format_rules: Literal["strict", "seed"] | None = Field(
        default=None,
        description="strict: our parser; seed: the paper's format check (one of each tag in order, the "
        "last <answer> as JSON)",
    )

    def chosen(self) -> dict[str, Any]:
        """The fields set explicitly."""
        return self.model_dump(exclude_none=True)


class RewardConfig(_Section):
    """Reward scheme by name (``metric``, ``recall_tiers``, ``rank_tiers``, ``execution``; null = the task's
    default) plus field overrides (e.g. ``format_bonus``) and anti-hacking ``guards`` (``max_query_chars``...)."""

    scheme: str | None = None
    overrides: dict[str, Any] = Field(default_factory=dict)
    guards: dict[str, Any] = Field(default_factory=dict)


class LoraConfig(_Section):
    r: int = Field(default=16, gt=0)
    alpha: int = Field(default=32, gt=0)
    dropout: float = Field(default=0.05, ge=0.0, lt=1.0)
    target_modules: list[str] | Literal["all-linear"] = "all-linear"
    merge: bool = Field(default=False, description="merge the adapter into the base weights at the end")


class RLConfig(_Section):
    """GRPO settings. Batch sizes count completions (TRL convention): each optimiser step sees
    ``per_device_train_batch_size * gradient_accumulation_steps * processes / num_generations`` prompts."""

    num_generations: int = Field(default=8, ge=2)
    temperature: float = Field(default=1.0, gt=0.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    max_prompt_length: int = Field(default=512, gt=0)
    max_completion_length: int = Field(default=256, gt=0)
    learning_rate: float = Field(default=1e-6, gt=0.0)
    lr_scheduler: Literal["constant", "constant_with_warmup", "linear", "cosine"] = "constant"
    warmup_steps: int = Field(default=0, ge=0)
    beta: float = Field(default=0.001, ge=0.0, description="KL coefficient")
    max_steps: int | None = Field(default=None, gt=0)
    epochs: float = Field(default=1.0, gt=0.0)
    time_budget_s: float | None = Field(
        default=None,
        gt=0.0,
        description="stop (after saving) once training has run this long; null = no limit",
    )
    per_device_train_batch_size: int = Field(default=8, gt=0)
    gradient_accumulation_steps: int = Field(default=1, gt=0)
    num_iterations: int = Field(default=1, gt=0, description="optimisation passes per generated batch")
    max_grad_norm: float = Field(default=1.0, gt=0.0)
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    gradient_checkpointing: bool = False
    share_prompt_forward: bool = Field(
        default=True,
        description="forward each distinct prompt once, shared by its group's samples: one prefill in "
        "generation (same tokens) and one pass in the update (same log-probs and gradients; single process, "
        "no gradient checkpointing, else TRL's own pass)",
    )
    loss_type: Literal["grpo", "dapo", "dr_grpo", "bnpo"] = Field(
        default="dapo", description="TRL's GRPO loss normalisation (pinned: TRL's default has changed before)"
    )
    scale_rewards: Literal["group", "batch", "none"] = Field(
        default="group", description="divide advantages by the reward std of the group, the batch, or not"
    )
    epsilon: float = Field(default=0.2, gt=0.0, description="PPO-style clipping range of the ratio")
    lora: LoraConfig | None = None
    seed: int = 42
    trl: dict[str, Any] = Field(
        default_factory=dict,
        description="any other trl.GRPOConfig argument, passed through and validated by TRL itself",
    )

    @model_validator(mode="after")
    def _groups_fit_batch(self) -> RLConfig:
        per_step = self.per_device_train_batch_size * self.gradient_accumulation_steps
        if per_step % self.num_generations:
            raise ValueError(
                f"rl.per_device_train_batch_size * rl.gradient_accumulation_steps = {per_step} completions "
                f"must be a multiple of rl.num_generations = {self.num_generations}"
            )
        return self


class LoggingConfig(_Section):
    backend: Literal["tensorboard", "wandb", "none"] = "tensorboard"
    steps: int = Field(default=1, gt=0, description="log every N optimiser steps")
    wandb_project: str | None = None
    samples: int = Field(
        default=4, ge=0, description="sampled completions shown with their rewards, best to worst (0: none)"
    )
    samples_every: int = Field(default=10, gt=0, description="show them every N steps (and at step 1)")


class CheckpointConfig(_Section):
    save_steps: int = Field(default=50, gt=0)
    keep: int | None = Field(default=2, gt=0, description="checkpoints kept on disk; null = all")


class OpenAIConfig(_Section):
    """How ``openai:MODEL`` policies reach their endpoint (the key is read from ``OPENAI_API_KEY`` only)."""

    base_url: str | None = Field(
        default=None, description="OpenAI-compatible endpoint (null: OPENAI_BASE_URL)"
    )
    concurrency: int = Field(default=8, gt=0, description="requests in flight")
    retries: int = Field(default=5, ge=0, description="retries of a failing request")
    cache: str | None = Field(default=None, description="completion cache folder (null: <cache>/completions)")

    _expand_cache = field_validator("cache")(classmethod(lambda cls, v: _expand(v)))


class EvalConfig(_Section):
    """``deepretrieval eval``: which policies answer ``task.eval_split`` and how the table is tested.
    ``baseline`` is the policy the others are tested against (null: ``original`` when listed, else the
    first); ``out`` a folder for results.json, results.md, per-query files and resumable generation logs.
    ``train`` ends with the same evaluation of its final policy beside ``policies`` (``after_training``)."""

    policies: list[str] = Field(
        default_factory=lambda: ["original"],
        min_length=1,
        description="policy specs, e.g. original, untrained",
    )
    baseline: str | None = None
    limit: int | None = Field(default=None, gt=0, description="only the first N examples")
    batch_size: int = Field(default=64, gt=0, description="prompts per generation call")
    resamples: int = Field(default=10_000, gt=0, description="paired randomisation test resamples")
    seed: int = Field(default=0, description="significance test seed")
    max_failures: int | None = Field(
        default=None,
        ge=0,
        description="most examples per policy that may fail to be judged before eval exits 1 (null: no "
        "limit; a policy with no judged example always fails)",
    )
    out: str | None = None
    openai: OpenAIConfig = Field(default_factory=OpenAIConfig)
    after_training: bool = Field(
        default=True,
        description="train: when training ends, evaluate the final policy beside these policies on "
        "task.eval_split (written to <output_dir>/eval/); false: no evaluation",
    )

    _expand_out = field_validator("out")(classmethod(lambda cls, v: _expand(v)))


class RunConfig(_Section):
    """Everything one training run (or evaluation) needs."""

    task: TaskConfig
    retriever: RetrieverConfig = Field(default_factory=RetrieverConfig)
    reward: RewardConfig = Field(default_factory=RewardConfig)
    model: str | None = Field(default=None, description="HF id or local folder; null = embedded SmolLM2-135M")
    prompting: PromptingConfig = Field(default_factory=PromptingConfig)

    @field_validator("prompting", mode="before")
    @classmethod
    def _preset_shorthand(cls, value: Any) -> Any:
        return {"preset": value} if isinstance(value, str) else value

    rl: RLConfig = Field(default_factory=RLConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    checkpointing: CheckpointConfig = Field(default_factory=CheckpointConfig)
    output_dir: str = "runs/train"
    use_vllm: bool | Literal["auto"] = "auto"
    eval: EvalConfig = Field(default_factory=EvalConfig)

    _expand_out = field_validator("output_dir")(classmethod(lambda cls, v: _expand(v)))

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def _section_at(loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The schema class that owns the key at ``loc`` (to suggest spellings for unknown keys)."""
    model: type[BaseModel] = RunConfig
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        candidates = [field.annotation, *getattr(field.annotation, "__args__", ())]
        nested = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        if not nested:
            return None
        model = nested[0]
    return model


def _describe(error: dict[str, Any]) -> str:
    loc = [str(p) for p in error["loc"] if not str(p).startswith("function-")]
    key = ".".join(loc) or "(top level)"
    if error["type"] == "extra_forbidden":
        section = _section_at(loc)
        known = list(section.model_fields) if section else []
        close = difflib.get_close_matches(loc[-1], known, n=1)
        hint = f"did you mean {close[0]}?" if close else f"expected one of: {', '.join(known)}"
        return f"{key}: unknown key ({hint})"
    if error["type"] == "missing":
        return f"{key}: required key is missing"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] in {"value_error", "assertion_error"} and "rl." in message:
        return message
    return f"{key}: {message} (got {error.get('input')!r})"


def set_value(raw: dict[str, Any], key: str, value: Any) -> None:
    """Set ``raw[a][b][c] = value`` for the dotted ``key`` ``a.b.c``, creating sections on the way."""
    parts = key.strip().split(".")
    node = raw
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {key}: {part} is not a section")
        node = child
    node[parts[-1]] = value


def _set_dotted(raw: dict[str, Any], assignment: str) -> None:
    key, sep, value = assignment.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {assignment!r}: expected key=value, e.g. rl.max_steps=10")
    set_value(raw, key, yaml.safe_load(value))


# Keys that moved into the prompting section: a config that still uses one gets its new name.
MOVED = {
    ("reasoning",): "prompting.reasoning",
    ("prompt_prefill",): "prompting.prefill",
    ("task", "query_mode"): "prompting.query_mode",
    ("task", "options", "template"): "prompting.template",
    ("task", "options", "feedback"): "prompting.feedback",
    ("task", "options", "feedback_words"): "prompting.feedback_words",
}


def _moved_keys(raw: dict[str, Any]) -> list[str]:
    problems = []
    for path, new in MOVED.items():
        node: Any = raw
        for part in path[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and path[-1] in node:
            problems.append(f"{'.'.join(path)}: moved to {new}")
    return problems


def parse_config(raw: Any, overrides: Sequence[str] = (), source: str = "config") -> RunConfig:
    """Validate a mapping (as read from YAML) after applying ``key=value`` overrides."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{source}: expected a mapping of sections at the top level, got {type(raw).__name__}"
        )
    for assignment in overrides:
        _set_dotted(raw, assignment)
    moved = _moved_keys(raw)
    if moved:
        problems = "\n".join(f"  - {problem}" for problem in moved)
        raise ConfigError(f"{source}: invalid run config\n{problems}")
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "\n".join(f"  - {_describe(e)}" for e in exc.errors())
        raise ConfigError(f"{source}: invalid run config\n{problems}") from None


def read_config(path: str | Path) -> Any:
    """The raw mapping of a YAML run config (validated by :func:`parse_config`)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> RunConfig:
    """Read and validate a YAML run config; ``overrides`` are ``dotted.key=value`` strings (YAML values)."""
    return parse_config(read_config(path), overrides, source=str(path))
