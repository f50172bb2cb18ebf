"""Prompt templates render through the real SmolLM2 tokenizer's chat template, for every family and mode, and
one prompting decides the prompt wherever a policy is prompted."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from deepretrieval.default_model import gguf_path
from deepretrieval.prompting import Prompting
from deepretrieval.tasks.prompts import TEMPLATES, PromptTemplate

CHAT_TEMPLATES = [name for name in TEMPLATES.names() if isinstance(TEMPLATES.get(name), PromptTemplate)]


@pytest.fixture(scope="module")
def tokenizer():
    path = gguf_path()
    return AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)


@pytest.mark.parametrize("family", CHAT_TEMPLATES)
@pytest.mark.parametrize("reasoning", [True, False])
def test_every_template_renders_both_modes(tokenizer, family: str, reasoning: bool) -> None:
    fields = {
        "query": "sore throat remedies",
        "engine": "PubMed",
        "feedback": "- Pharyngitis: presentation",
        "question": "sore throat remedies",
        "schema": "CREATE TABLE t (x)",
        "knowledge": "",
    }
    feedback = 3 if "feedback" in TEMPLATES.get(family).slots else 0
    prompting = Prompting(family, reasoning=reasoning, prefill="<answer>", feedback=feedback)
    messages = prompting.messages(fields)
    assert [m["role"] for m in messages] == ["system", "user"]
    assert "sore throat remedies" in messages[1]["content"]
    assert ("<think>" in messages[1]["content"]) == reasoning and "<answer>" in messages[1]["content"]
    text = prompting.render(tokenizer, messages)
    expected = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == expected + "<answer>"
    assert text.index(messages[0]["content"]) < text.index(messages[1]["content"])


def test_raw_rendering_is_the_text_as_it_is(tokenizer) -> None:
    prompting = Prompting("keywords", rendering="raw", prefill="<answer>")
    messages = prompting.messages({"query": "fever"})
    assert prompting.render(tokenizer, messages) == "".join(m["content"] for m in messages) + "<answer>"


def test_keywords_template_is_the_shortest(tokenizer) -> None:
    fields = {"query": "how to fix check engine light"}
    lengths = {
        name: len(tokenizer(Prompting(name).render(tokenizer, Prompting(name).messages(fields)))["input_ids"])
        for name in ("keywords", "classic_ir")
    }
    assert lengths["keywords"] < 0.7 * lengths["classic_ir"]


def test_missing_field_is_named() -> None:
    with pytest.raises(KeyError, match="needs field 'query'"):
        TEMPLATES.get("classic_ir").messages({"question": "x"})
