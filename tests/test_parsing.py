"""Completion parsing: valid shapes, every malformed shape gets a defined verdict, nothing raises."""

from __future__ import annotations

import pytest

from deepretrieval.parsing import parse_completion


@pytest.mark.parametrize(
    "completion, answer, think",
    [
        (
            "<think>use synonyms</think><answer>heart attack aspirin</answer>",
            "heart attack aspirin",
            "use synonyms",
        ),
        (
            "use synonyms</think>\n<answer> heart attack </answer>",
            "heart attack",
            "use synonyms",
        ),  # <think> prefilled
        ('<think>x</think><answer>{"query": "vitamin D bone"}</answer>', "vitamin D bone", "x"),
        ('<think>x</think><answer>```json\n{"query": "q1"}\n```</answer><|im_end|>', "q1", "x"),
    ],
)
def test_valid_reasoning_completions(completion: str, answer: str, think: str) -> None:
    parsed = parse_completion(completion)
    assert parsed.format_ok and parsed.reason == "ok"
    assert parsed.answer == answer and parsed.think == think


def test_no_reasoning_mode_and_sql_key() -> None:
    parsed = parse_completion('<answer>{"sql": "SELECT 1"}</answer>', reasoning=False, answer_key="sql")
    assert (parsed.format_ok, parsed.answer) == (True, "SELECT 1")
    assert (
        parse_completion("<think>a</think><answer>q</answer>", reasoning=False).reason == "unexpected_think"
    )


@pytest.mark.parametrize(
    "completion, reason",
    [
        ("", "empty"),
        ("   \n", "empty"),
        ("just some text", "no_answer"),
        ("<think>a</think><answer>truncated que", "unclosed_answer"),
        ("<think>a</think><answer>q</answer><answer>r</answer>", "repeated_tags"),
        ("<think>a<think>b</think></think><answer>q</answer>", "repeated_tags"),
        ("<answer>q</answer>", "missing_think"),
        ("<think>a <answer>q</answer></think>", "misordered_tags"),
        ("<think>a</think></answer>q<answer>", "misordered_tags"),
        ("<think>a</think><answer>{not json</answer>", "invalid_json"),
        ('<think>a</think><answer>{"sql": "x"}</answer>', "json_missing_key"),
        ('<think>a</think><answer>{"query": 3}</answer>', "json_missing_key"),
        ("<think>a</think><answer>   </answer>", "empty_answer"),
        ('<think>a</think><answer>{"query": "  "}</answer>', "empty_answer"),
        (b"<think>a</think><answer>\xff\xfe</answer>", "not_utf8"),
        ("<think>a</think><answer>\ud800</answer>", "not_utf8"),
        (None, "not_text"),
        (12345, "not_text"),
        ("<think>" + "a" * 1_000_000 + "</think><answer>q</answer>", "too_long"),
        ("<think>a</think><answer>" + "[" * 100_000, "unclosed_answer"),
    ],
)
def test_malformed_completions_have_defined_outcomes(completion: object, reason: str) -> None:
    parsed = parse_completion(completion, max_chars=2_000_000 if reason != "too_long" else 200_000)
    assert not parsed.format_ok
    assert parsed.answer == ""
    assert parsed.reason == reason


def test_deeply_nested_json_does_not_raise() -> None:
    parsed = parse_completion("<think>a</think><answer>{" + '"a":[' * 50_000 + "</answer>", max_chars=10**6)
    assert parsed.reason == "invalid_json"
