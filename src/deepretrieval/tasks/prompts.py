"""Prompt templates per task family, with reasoning and no-reasoning variants, and the seed's raw ones.

Templates produce chat *messages*; turning them into model input is ``Prompting.render``: the tokenizer's
own chat template for our templates, the text as it is for a :class:`RawTemplate` (the paper's prompts,
which carry their own role markers: ``seed_<dataset>``, see ``tasks.seed_prompts``).
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from deepretrieval.registry import Registry
from deepretrieval.tasks.seed_prompts import SEED_TOKENS, SeedPrompt, fill_slots, seed_prompts

REASONING_FORMAT = (
    "First think briefly about which words the relevant {target} would use, inside <think> </think>. "
    "Then write the search query inside <answer> </answer>, for example:\n"
    "<think> ... </think>\n<answer> your query </answer>"
)
NO_REASONING_FORMAT = (
    "Write only the search query inside <answer> </answer>, for example:\n<answer> your query </answer>"
)

# The compact templates' instructions (every prompt token costs CPU training time).
SHORT_REASONING_FORMAT = "Think in <think> </think>, then answer in <answer> </answer>."
SHORT_PLAIN_FORMAT = "Answer in <answer> </answer>."


@dataclass(frozen=True)
class PromptTemplate:
    """A system message, a user message with ``{field}`` slots, what the search should find, and the
    instructions on the answer format appended to the user message (with and without reasoning).
    ``name`` is the name it is registered under in :data:`TEMPLATES` (recorded in policy cards)."""

    name: str
    system: str
    user: str
    target: str
    reasoning_format: str = REASONING_FORMAT
    plain_format: str = NO_REASONING_FORMAT

    @property
    def defaults(self) -> Mapping[str, Any]:
        """Prompting fields this template needs unless chosen otherwise: none (the general defaults)."""
        return {}

    @property
    def slots(self) -> frozenset[str]:
        """The fields the user message takes (``query``, ``feedback``...)."""
        return frozenset(name for _, name, _, _ in string.Formatter().parse(self.user) if name)

    @cached_property
    def placeholders(self) -> frozenset[str]:
        """The stand-ins the format instructions show in place of a real answer or reasoning ("your query",
        "SELECT ...", "..."), normalised (:func:`normalize_answer`): a model that copies one back has not
        answered, and the parser says ``placeholder``."""
        shown = set()
        for instructions in (self.reasoning_format, self.plain_format):
            text = instructions.format(target=self.target)
            for inner in _EXAMPLE.findall(text):
                shown.update(_example_values(inner.strip()))
        return frozenset(form for form in map(normalize_answer, shown) if form)

    def messages(self, fields: Mapping[str, str], reasoning: bool = True) -> list[dict[str, str]]:
        answer_format = (self.reasoning_format if reasoning else self.plain_format).format(target=self.target)
        try:
            user = self.user.format(**fields)
        except KeyError as err:
            raise KeyError(
                f"prompt template needs field {err.args[0]!r}; example has {sorted(fields)}"
            ) from None
        return [
            {"role": "system", "content": self.system},
            {"role": "user", "content": f"{user}\n\n{answer_format}"},
        ]


_EXAMPLE = re.compile(r"<(?:answer|think)>(.*?)</(?:answer|think)>", re.DOTALL)


def _example_values(inner: str) -> list[str]:
    """The answer an example shows: its text, or the string values of a JSON example (``{"sql": ...}``)."""
    if inner.startswith("{"):
        try:
            shown = json.loads(inner)
        except ValueError:
            return [inner]
        if isinstance(shown, dict):
            return [value for value in shown.values() if isinstance(value, str)]
    return [inner]


def normalize_answer(text: str) -> str:
    """Case, spacing, quotes and one closing full stop ignored: how an answer is compared with a placeholder."""
    form = " ".join(text.casefold().split()).strip("'\"` ")
    return form[:-1].rstrip() if form.endswith(".") and not form.endswith("..") else form


@dataclass(frozen=True)
class RawTemplate:
    """A seed prompt as a template: one user message holding the seed's text up to its cut point with the
    example's fields filled in, rendered raw (``Prompting.rendering == "raw"``: no chat template, tokenised
    as it is) and followed by the seed's prefill. ``as_given``: the message is the example's own stored
    prompt (``fields["prompt"]``, e.g. read from the seed's parquet files) instead of the filled template.
    ``defaults`` is the prompting it was trained with (prefill, JSON answers, the seed's format rules,
    reasoning, 512 new tokens), which ``prompting.resolve`` applies to fields nobody chose."""

    name: str
    seed: SeedPrompt
    as_given: bool = False

    @property
    def slots(self) -> frozenset[str]:
        return frozenset({"prompt"}) if self.as_given else self.seed.slots

    @property
    def defaults(self) -> Mapping[str, Any]:
        return {
            "rendering": "raw",
            "prefill": self.seed.prefill,
            "answer_format": "json",
            "format_rules": "seed",
            "reasoning": True,
            "max_new_tokens": SEED_TOKENS,
        }

    @property
    def placeholders(self) -> frozenset[str]:
        """None: the seed scores an answer that copies its prompt's example like any other query (parity)."""
        return frozenset()

    def messages(self, fields: Mapping[str, str], reasoning: bool = True) -> list[dict[str, str]]:
        """One user message: the stored prompt (``as_given``) or the seed's text with ``fields`` filled."""
        text = fill_slots("{prompt}", fields) if self.as_given else self.seed.fill(fields)
        return [{"role": "user", "content": text}]


def seed_template_name(dataset: str, as_given: bool = False) -> str:
    """The registered name of a seed dataset's template (``seed_pubmed``, ``seed_scifact_as_given``)."""
    return f"seed_{dataset}" + ("_as_given" if as_given else "")


Template = PromptTemplate | RawTemplate

TEMPLATES: Registry[Template] = Registry(
    "prompt template",
    {
        # Classic IR in as few tokens as possible: on a CPU the GRPO update runs over the whole prompt, so
        # every instruction token costs training time.
        "keywords": PromptTemplate(
            name="keywords",
            system="You write keyword search queries.",
            user="Request: {query}\nRewrite it with the formal terms and synonyms that relevant documents use.",
            target="documents",
            reasoning_format=SHORT_REASONING_FORMAT,
            plain_format=SHORT_PLAIN_FORMAT,
        ),
        # For query_mode expand: the judge searches with the user's words followed by the answer, so the policy
        # only names what the request lacks (short completions, hence fast CPU steps).
        "expansion": PromptTemplate(
            name="expansion",
            system="You write keyword search queries.",
            user="Request: {query}\nWrite the formal name of the topic, as in: 'runny nose' -> <answer> rhinitis </answer>",
            target="documents",
            reasoning_format=SHORT_REASONING_FORMAT,
            plain_format=SHORT_PLAIN_FORMAT,
        ),
        # Expansion with pseudo-relevance feedback (task option ``feedback: N``): the prompt lists the opening
        # words of the top N results of the user's query, so the policy can pick the collection's own terms.
        "feedback_expansion": PromptTemplate(
            name="feedback_expansion",
            system="You write keyword search queries.",
            user="Request: {query}\nTop results:\n{feedback}\nWrite the formal name of the topic.",
            target="documents",
            reasoning_format=SHORT_REASONING_FORMAT,
            plain_format=SHORT_PLAIN_FORMAT,
        ),
        "classic_ir": PromptTemplate(
            name="classic_ir",
            system="You are an expert at writing search queries for a keyword (BM25) search engine.",
            user=(
                "Rewrite the user's request into a better keyword query that finds the relevant documents. "
                "Add the words and synonyms that relevant documents are likely to contain.\n\nRequest: {query}"
            ),
            target="documents",
        ),
        "evidence": PromptTemplate(
            name="evidence",
            system="You are an expert at writing search queries that find passages answering a question.",
            user=(
                "Write a keyword query for a BM25 search over Wikipedia-style passages that finds a passage "
                "containing the answer to the question.\n\nQuestion: {query}"
            ),
            target="passages",
        ),
        "sql": PromptTemplate(
            name="sql",
            system=(
                "You are an expert SQLite developer. You answer questions about a database by writing one SQLite "
                "SELECT query over its tables."
            ),
            user="Database schema:\n{schema}\n\n{knowledge}Question: {question}",
            target="rows",
            reasoning_format=(
                "First think step by step about the tables, columns, joins and conditions the question needs, "
                "inside <think> </think>. Then write the query as JSON inside <answer> </answer>, for example:\n"
                '<think> ... </think>\n<answer>{{"sql": "SELECT ..."}}</answer>'
            ),
            plain_format=(
                "Write only the query as JSON inside <answer> </answer>, for example:\n"
                '<answer>{{"sql": "SELECT ..."}}</answer>'
            ),
        ),
        # Literature search for small models on a CPU: a short instruction and one worked example (a review title
        # on no review of the collections here, and its query: the test AND the condition), which a 135M model
        # follows by analogy where it would otherwise copy the example.
        "boolean_concepts": PromptTemplate(
            name="boolean_concepts",
            system="You write PubMed Boolean queries.",
            user=(
                "Write a Boolean query for {engine} that ANDs the review's test and its condition.\n"
                "Review: Troponin tests for diagnosing myocardial infarction in chest pain\n"
                "Query: <answer> (troponin) AND (myocardial infarction) </answer>\n"
                "Review: {query}"
            ),
            target="studies",
            reasoning_format=SHORT_REASONING_FORMAT,
            plain_format=SHORT_PLAIN_FORMAT,
        ),
        "literature": PromptTemplate(
            name="literature",
            system="You are an expert medical librarian who writes Boolean search queries.",
            user=(
                "Write a Boolean query (AND, OR, parentheses) for {engine} that retrieves the studies matching this "
                "review description.\n\n{query}"
            ),
            target="studies",
        ),
    },
)
"""Prompt templates by name (recorded in policy cards)."""


def _register_seed_templates() -> None:
    """``seed_<dataset>`` and ``seed_<dataset>_as_given`` for every seed dataset."""
    for seed in seed_prompts().values():
        for as_given in (False, True):
            name = seed_template_name(seed.name, as_given)
            TEMPLATES.register(name, RawTemplate(name, seed, as_given))


_register_seed_templates()


def prompt_template(template: Template | str) -> Template:
    """A template by name (one-line error with a suggestion and the known names) or as given."""
    return template if isinstance(template, (PromptTemplate, RawTemplate)) else TEMPLATES.get(template)
