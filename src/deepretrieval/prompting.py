"""How a policy is prompted, as one value (:class:`Prompting`), and the one rule that decides it
(:func:`resolve`), used alike by training, evaluation, the rewrite API, the server and the quickstart.

The rule, field by field: an explicit choice (a run config's ``prompting`` section, eval flags, a policy
spec's ``@reasoning`` / ``@no-reasoning``) wins; then a named preset the explicit section asks for
(``prompting.preset``, ``--prompting``: ``seed:<dataset>`` is the paper's own prompting of that dataset);
else the policy card of a trained policy (it records how the policy was trained to be prompted); else what
the template needs (a seed template: raw rendering, its prefill, JSON answers, the seed's format rules,
reasoning, 512 new tokens); else the defaults: the task's own template (with a feedback slot when feedback
is asked for), no reasoning, no prefill, the tokenizer's chat template, answers in ``<answer>`` tags,
strict format rules, ``rewrite`` mode, no feedback, and 64 new tokens (256 with reasoning).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal, Protocol

from deepretrieval.config import ConfigError, PromptingConfig, RunConfig
from deepretrieval.tasks.prompts import RawTemplate, prompt_template, seed_template_name
from deepretrieval.tasks.seed_prompts import seed_prompts

QueryMode = Literal["rewrite", "expand"]
Rendering = Literal["chat", "raw"]
AnswerFormat = Literal["tags", "json"]
FormatRules = Literal["strict", "seed"]

DEFAULT_TEMPLATE = "classic_ir"
"""The template of a search-query policy prompted without a task (the rewrite API of an untrained model)."""
FEEDBACK_TEMPLATE = "feedback_expansion"
"""The template chosen when feedback is asked for and the task's own template has no ``{feedback}`` slot."""
DEFAULT_FEEDBACK_WORDS = 12
"""Words shown of each feedback result: a demo title and the start of its first sentence."""
REASONING_TOKENS, PLAIN_TOKENS = 256, 64
"""Default generation caps with and without reasoning."""
SEED_PRESET = "seed:"
"""Presets ``seed:<dataset>``: the paper's prompting of one of its datasets (``seed:pubmed``, ``seed:nq``...)."""
TEMPLATE_BOUND = ("prefill", "rendering", "answer_format", "format_rules")
"""Fields that belong to a template: a card's are dropped when another template is chosen explicitly."""


class PromptedTask(Protocol):
    """What :func:`resolve` needs to know of a task: its own template, whether it can show the top results
    of the user's query (feedback), and the key its answers carry (``query`` or ``sql``)."""

    name: str
    answer_key: str
    default_template: str
    supports_feedback: bool


@dataclass(frozen=True)
class Prompting:
    """Everything that decides a policy's input and how its output is read.

    ``template``: a prompt template's name (see ``tasks.prompts``); ``reasoning``: ask for ``<think>``
    before the answer; ``prefill``: text the assistant turn starts with (the parser reads prefill +
    completion); ``rendering``: ``chat`` (the tokenizer's chat template) or ``raw`` (the messages' text as
    it is); ``answer_format``: ``tags`` (plain text or JSON inside ``<answer>``) or ``json`` (a JSON object
    is required); ``query_mode``: ``rewrite`` (the answer replaces the user's query) or ``expand`` (it is
    appended to it); ``feedback`` / ``feedback_words``: how many top results of the user's query the prompt
    shows, and how many words of each; ``max_new_tokens``: the generation cap; ``format_rules``: ``strict``
    (``parsing.parse_completion``) or ``seed`` (the paper's reward: exactly one of each tag in order, the
    last ``<answer>`` read as JSON; ``parsing.parse_seed_completion``)."""

    template: str
    reasoning: bool = False
    prefill: str = ""
    rendering: Rendering = "chat"
    answer_format: AnswerFormat = "tags"
    query_mode: QueryMode = "rewrite"
    feedback: int = 0
    feedback_words: int = DEFAULT_FEEDBACK_WORDS
    max_new_tokens: int = PLAIN_TOKENS
    format_rules: FormatRules = "strict"

    def __post_init__(self) -> None:
        template = prompt_template(self.template)  # a one-line error naming the known templates
        if self.feedback < 0 or self.feedback_words < 1 or self.max_new_tokens < 1:
            raise ValueError(
                "prompting: feedback must be >= 0, feedback_words and max_new_tokens >= 1, got "
                f"{self.feedback}, {self.feedback_words}, {self.max_new_tokens}"
            )
        if isinstance(template, RawTemplate) and self.rendering != "raw":
            raise ValueError(
                f"template {self.template!r} is the seed's raw text with its own role markers: it needs "
                "prompting.rendering raw (or choose the preset: prompting.preset seed:<dataset>)"
            )
        if self.format_rules == "seed" and not (self.reasoning and self.answer_format == "json"):
            raise ValueError(
                "prompting.format_rules seed reads <think> reasoning and a JSON answer: it needs "
                "reasoning true and answer_format json"
            )
        slot = "feedback" in template.slots
        if self.feedback and not slot:
            raise ValueError(
                f"prompting.feedback={self.feedback} needs a template with a {{feedback}} slot; "
                f"{self.template!r} has none (e.g. template: {FEEDBACK_TEMPLATE})"
            )
        if slot and not self.feedback:
            raise ValueError(
                f"template {self.template!r} shows the top results of the query: set prompting.feedback > 0"
            )

    def messages(self, fields: Mapping[str, str]) -> list[dict[str, str]]:
        """The chat messages of one prompt: the template filled with ``fields``."""
        return prompt_template(self.template).messages(fields, self.reasoning)

    def render(self, tokenizer: Any, messages: list[dict[str, str]]) -> str:
        """The policy's exact input text: the tokenizer's chat template with the assistant turn opened (or
        the messages' text as it is, for ``raw``), then the prefill. Training and evaluation both render
        here, so they feed the model byte-identical inputs."""
        if self.rendering == "raw":
            return "".join(message["content"] for message in messages) + self.prefill
        opened = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return opened + self.prefill

    def describe(self) -> str:
        """One line for table headers and logs."""
        parts = [
            f"template {self.template}",
            f"reasoning {'on' if self.reasoning else 'off'}",
            f"query mode {self.query_mode}",
        ]
        if self.prefill:
            parts.append(f"prefill {self.prefill!r}")
        if self.rendering != "chat":
            parts.append(f"{self.rendering} rendering")
        if self.answer_format != "tags":
            parts.append(f"{self.answer_format} answers")
        if self.format_rules != "strict":
            parts.append(f"{self.format_rules} format rules")
        if self.feedback:
            parts.append(f"top {self.feedback} results shown ({self.feedback_words} words each)")
        parts.append(f"{self.max_new_tokens} new tokens")
        return ", ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Prompting:
        """A prompting from its JSON form; unknown keys and wrong types are one-line errors."""
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise ValueError(f"unknown prompting keys {unknown}; known: {sorted(known)}")
        for key, value in raw.items():
            expected = int if key in _INTEGERS else bool if key == "reasoning" else str
            if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
                raise ValueError(f"prompting.{key} must be {expected.__name__}, got {value!r}")
        return cls(**raw)


_INTEGERS = {"feedback", "feedback_words", "max_new_tokens"}


def preset(name: str) -> dict[str, Any]:
    """The prompting fields of a named preset: ``seed:<dataset>`` is the seed template of that dataset
    with everything it was trained with (raw rendering, prefill, JSON answers, the seed's format rules,
    reasoning, 512 new tokens, rewrite mode)."""
    dataset = name.removeprefix(SEED_PRESET)
    if not name.startswith(SEED_PRESET) or dataset not in seed_prompts():
        known = [SEED_PRESET + dataset for dataset in seed_prompts()]
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ValueError(f"unknown prompting preset {name!r}; {hint}known: {', '.join(known)}")
    template = prompt_template(seed_template_name(dataset))
    return {"template": template.name, **template.defaults, "query_mode": "rewrite"}


def presets() -> list[str]:
    """Every preset name."""
    return [SEED_PRESET + dataset for dataset in seed_prompts()]


def resolve(
    explicit: PromptingConfig | None = None,
    trained: Prompting | None = None,
    task: PromptedTask | None = None,
) -> Prompting:
    """The prompting of one policy on one task: ``explicit`` choices (fields left ``None`` are not chosen)
    win, then the preset they name, then ``trained`` (the policy card's), then what the template needs,
    then the defaults (see the module notes). ``task`` supplies the default template and is checked:
    feedback needs a task that can show results, ``expand`` a task whose answers are search queries, a
    seed template a task whose answers carry its JSON key."""
    chosen = explicit.chosen() if explicit is not None else {}
    named = chosen.pop("preset", None)
    chosen = (preset(named) if named else {}) | chosen
    if trained is not None:
        values = trained.to_json()
        if "reasoning" in chosen and chosen["reasoning"] != trained.reasoning:
            values.pop("max_new_tokens")  # the card's cap was for the other reasoning setting
        if "template" in chosen and chosen["template"] != trained.template:
            for key in TEMPLATE_BOUND:  # the card's prefill, rendering... were its template's
                values.pop(key)
    else:
        values = {}
    values |= chosen
    if "template" not in values:
        values["template"] = _default_template(task, values.get("feedback", 0))
    values = dict(prompt_template(values["template"]).defaults) | values
    values.setdefault("reasoning", False)
    values.setdefault("max_new_tokens", REASONING_TOKENS if values["reasoning"] else PLAIN_TOKENS)
    prompting = Prompting(**values)
    if task is not None:
        check(prompting, task)
    return prompting


def _default_template(task: PromptedTask | None, feedback: int) -> str:
    template = task.default_template if task is not None else DEFAULT_TEMPLATE
    if feedback and "feedback" not in prompt_template(template).slots:
        return FEEDBACK_TEMPLATE
    return template


def check(prompting: Prompting, task: PromptedTask) -> None:
    """Refuse a prompting the task cannot serve (before any generation starts)."""
    if prompting.feedback and not task.supports_feedback:
        raise ValueError(
            f"task {task.name!r} cannot show the top results of a query (prompting.feedback="
            f"{prompting.feedback}): it is judged without a ranked search"
        )
    check_query_mode(prompting.query_mode, task)
    template = prompt_template(prompting.template)
    if isinstance(template, RawTemplate) and template.seed.answer_key != task.answer_key:
        raise ValueError(
            f"template {template.name!r} asks for {{{template.seed.answer_key!r}: ...}} answers but task "
            f"{task.name!r} reads {task.answer_key!r}: choose the seed prompting of a {task.name} dataset"
        )


def check_query_mode(mode: QueryMode, task: PromptedTask) -> None:
    """``expand`` only makes sense where answers are keyword queries appended to the user's words."""
    if mode == "expand" and task.answer_key != "query":
        raise ValueError(
            f"query_mode expand needs a search task; task {task.name!r} answers {task.answer_key}"
        )


def run_prompting(config: RunConfig, task: PromptedTask) -> Prompting:
    """How the policy is prompted in training (and, through its card, afterwards): the config's
    ``prompting`` section over the defaults (``prompting.resolve``), generating up to
    ``rl.max_completion_length`` tokens."""
    length = config.rl.max_completion_length
    chosen = config.prompting
    if chosen.max_new_tokens is not None and chosen.max_new_tokens != length:
        raise ConfigError(
            f"prompting.max_new_tokens={chosen.max_new_tokens}: training generates rl.max_completion_length="
            f"{length} tokens; drop prompting.max_new_tokens or make them equal"
        )
    return resolve(chosen.model_copy(update={"max_new_tokens": length}), None, task)
