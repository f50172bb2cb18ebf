"""Prompt templates render through the real SmolLM2 tokenizer's chat template, for every family and mode."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from deepretrieval.default_model import gguf_path
from deepretrieval.tasks.prompts import TEMPLATES, render_prompt


@pytest.fixture(scope="module")
def tokenizer():
    path = gguf_path()
    return AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)


@pytest.mark.parametrize("family", sorted(TEMPLATES))
@pytest.mark.parametrize("reasoning", [True, False])
def test_every_template_renders_both_modes(tokenizer, family: str, reasoning: bool) -> None:
    fields = {"query": "sore throat remedies", "engine": "PubMed", "feedback": "- Pharyngitis: presentation"}
    messages = TEMPLATES[family].messages(fields, reasoning)
    assert [m["role"] for m in messages] == ["system", "user"]
    assert "sore throat remedies" in messages[1]["content"]
    assert ("<think>" in messages[1]["content"]) == reasoning and "<answer>" in messages[1]["content"]
    text = render_prompt(tokenizer, messages, prefill="<answer>")
    expected = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == expected + "<answer>"
    assert text.index(messages[0]["content"]) < text.index(messages[1]["content"])


def test_keywords_template_is_the_shortest(tokenizer) -> None:
    fields = {"query": "how to fix check engine light"}
    lengths = {
        name: len(tokenizer(render_prompt(tokenizer, TEMPLATES[name].messages(fields, False)))["input_ids"])
        for name in ("keywords", "classic_ir")
    }
    assert lengths["keywords"] < 0.7 * lengths["classic_ir"]


def test_missing_field_is_named() -> None:
    with pytest.raises(KeyError, match="needs field 'query'"):
        TEMPLATES["classic_ir"].messages({"question": "x"})
