"""Turn a model completion into an answer (a search query or SQL), with a verdict on its format.

Accepted shapes (``reasoning=True``)::

    [<think>] ... </think> <answer> ANSWER </answer>

where the opening ``<think>`` may have been supplied by the prompt, and (``reasoning=False``)::

    <answer> ANSWER </answer>

ANSWER is plain text or a JSON object carrying ``answer_key`` (``{"query": ...}``, ``{"sql": ...}``),
optionally inside a Markdown code fence. Parsing never raises: every input, however broken,
maps to a :class:`ParsedCompletion` whose ``reason`` says what was wrong.

:func:`parse_seed_completion` applies the DeepRetrieval paper's own rules instead (its reward files'
``extract_solution``, ``validate_response_structure`` and ``json.loads``), for the seed's prompting.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Literal

AnswerFormat = Literal["auto", "text", "json"]

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"
DEFAULT_MAX_CHARS = 200_000


@dataclass(frozen=True, slots=True)
class ParsedCompletion:
    """What a completion says: the answer, the reasoning, and whether the format was valid.

    ``reason`` is ``"ok"`` for a valid completion, otherwise one short code:
    ``not_text``, ``not_utf8``, ``too_long``, ``empty``, ``no_answer``, ``unclosed_answer``,
    ``repeated_tags``, ``misordered_tags``, ``missing_think``, ``unexpected_think``,
    ``invalid_json``, ``json_missing_key``, ``empty_answer``; the answer path of training and evaluation
    (``answers.AnswerParser``) adds ``query_too_long``, ``placeholder`` and ``invalid_query`` (a query the
    judge cannot read, with its message in ``detail``).
    """

    answer: str
    think: str
    format_ok: bool
    reason: str
    detail: str = ""


def _invalid(reason: str, think: str = "") -> ParsedCompletion:
    return ParsedCompletion(answer="", think=think, format_ok=False, reason=reason)


def _as_text(completion: object) -> str | ParsedCompletion:
    """Decode bytes, reject non-text and strings that cannot be encoded as UTF-8."""
    if isinstance(completion, (bytes, bytearray, memoryview)):
        try:
            return bytes(completion).decode("utf-8")
        except UnicodeDecodeError:
            return _invalid("not_utf8")
    if not isinstance(completion, str):
        return _invalid("not_text")
    try:
        completion.encode("utf-8")  # lone surrogates would break retrievers and JSON later
    except UnicodeEncodeError:
        return _invalid("not_utf8")
    return completion


def _strip_code_fence(text: str) -> str:
    if text.startswith("```") and text.endswith("```") and len(text) >= 6:
        inner = text[3:-3]
        newline = inner.find("\n")
        # drop a language tag such as ```json
        if newline != -1 and inner[:newline].strip().isalpha():
            inner = inner[newline + 1 :]
        return inner.strip()
    return text


def _decode_answer(raw: str, answer_key: str, answer_format: AnswerFormat) -> tuple[str, str]:
    """Return (answer, reason) for the text between the answer tags."""
    text = _strip_code_fence(raw.strip())
    looks_like_json = text.startswith("{")
    if answer_format == "text" or (answer_format == "auto" and not looks_like_json):
        return (text, "ok") if text else ("", "empty_answer")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return "", "invalid_json"
    if not isinstance(data, dict) or answer_key not in data:
        return "", "json_missing_key"
    value = data[answer_key]
    if not isinstance(value, str):
        return "", "json_missing_key"
    value = value.strip()
    return (value, "ok") if value else ("", "empty_answer")


def parse_completion(
    completion: object,
    *,
    reasoning: bool = True,
    answer_key: str = "query",
    answer_format: AnswerFormat = "auto",
    max_chars: int = DEFAULT_MAX_CHARS,
) -> ParsedCompletion:
    """Parse one completion. Runs in time linear in its length and never raises."""
    text = _as_text(completion)
    if isinstance(text, ParsedCompletion):
        return text
    if len(text) > max_chars:
        return _invalid("too_long")
    if not text.strip():
        return _invalid("empty")

    counts = {tag: text.count(tag) for tag in (THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE)}
    if counts[ANSWER_OPEN] == 0:
        return _invalid("no_answer")
    if counts[ANSWER_CLOSE] == 0:
        return _invalid("unclosed_answer")
    if any(n > 1 for n in counts.values()):
        return _invalid("repeated_tags")

    answer_start = text.find(ANSWER_OPEN)
    answer_end = text.find(ANSWER_CLOSE)
    if answer_end < answer_start:
        return _invalid("misordered_tags")

    think = ""
    if reasoning:
        if counts[THINK_CLOSE] == 0:
            return _invalid("missing_think")
        think_close = text.find(THINK_CLOSE)
        think_open = text.find(THINK_OPEN)  # -1 when the prompt supplied it
        if think_close > answer_start or think_open > think_close:
            return _invalid("misordered_tags")
        think = text[think_open + len(THINK_OPEN) if think_open != -1 else 0 : think_close].strip()
    elif counts[THINK_OPEN] or counts[THINK_CLOSE]:
        return _invalid("unexpected_think")

    answer, reason = _decode_answer(
        text[answer_start + len(ANSWER_OPEN) : answer_end], answer_key, answer_format
    )
    return ParsedCompletion(answer=answer, think=think, format_ok=reason == "ok", reason=reason)


_SEED_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
SEED_ANSWER_ERRORS = ("empty_answer", "invalid_json", "json_missing_key", "json_not_text")
"""Reasons of a seed-rules completion whose tags are right but whose answer cannot be used: the seed's
reward gives these an answer term (0 for an empty answer, -4 for the others on literature and evidence
tasks) instead of the format penalty."""


def parse_seed_completion(completion: object, *, answer_key: str = "query") -> ParsedCompletion:
    """Parse ``completion`` (the seed's prefill + the model's text, i.e. what follows the seed's cut point)
    by the paper's rules (``verl/utils/reward_score/pubmed.py`` and siblings @ 001a563):

    - the text is stripped; it must hold exactly one each of ``<think>``, ``</think>``, ``<answer>``,
      ``</answer>``, in that order (else ``missing_tags``, ``repeated_tags`` or ``misordered_tags``);
    - the answer is the last ``<answer>(.*?)</answer>`` match, stripped, read with ``json.loads``; its
      ``answer_key`` value is the answer, as it is (``empty_answer``, ``invalid_json``,
      ``json_missing_key``, ``json_not_text`` otherwise).

    When the tags are wrong the answer is still extracted (as the seed's evaluation scripts do, which
    check no structure), but ``format_ok`` is false, so training never judges it. Never raises."""
    text = _as_text(completion)
    if isinstance(text, ParsedCompletion):
        return text
    if len(text) > DEFAULT_MAX_CHARS:
        return _invalid("too_long")
    processed = text.strip()
    tags = (THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE)
    counts = [processed.count(tag) for tag in tags]
    positions = [processed.find(tag) for tag in tags]
    if 0 in counts:
        structure = "missing_tags"
    elif any(count > 1 for count in counts):
        structure = "repeated_tags"
    else:
        structure = "ok" if positions == sorted(positions) else "misordered_tags"
    think = ""
    if counts[0] and counts[1] and positions[0] < positions[1]:
        think = processed[positions[0] + len(THINK_OPEN) : positions[1]].strip()
    matches = _SEED_ANSWER.findall(processed)
    answer, reason = _seed_answer(matches[-1].strip(), answer_key) if matches else ("", "no_answer")
    if structure != "ok":
        return ParsedCompletion(answer=answer, think=think, format_ok=False, reason=structure)
    return ParsedCompletion(answer=answer, think=think, format_ok=reason == "ok", reason=reason)


def _seed_answer(raw: str, answer_key: str) -> tuple[str, str]:
    """(answer, reason) of the seed's ``json.loads(answer_text)[answer_key]``."""
    if not raw:
        return "", "empty_answer"
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return "", "invalid_json"
    if not isinstance(data, dict) or answer_key not in data:
        return "", "json_missing_key"
    value = data[answer_key]
    return (value, "ok") if isinstance(value, str) else ("", "json_not_text")
