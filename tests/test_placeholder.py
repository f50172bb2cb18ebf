"""An answer that only copies the template's placeholder ("your query", "SELECT ...") is not an answer: it is
format-invalid (reason ``placeholder``), costs the format penalty in training and counts against the
format-valid rate in evaluation."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from deepretrieval.answers import AnswerParser
from deepretrieval.config import PromptingConfig
from deepretrieval.evaluation import evaluate
from deepretrieval.prompting import Prompting
from deepretrieval.rewards import BatchReward, MetricReward
from deepretrieval.tasks import load_task
from deepretrieval.tasks.prompts import TEMPLATES


@pytest.mark.parametrize(
    "completion",
    [
        "<answer> your query </answer>",
        "<answer>Your Query.</answer>",
        '<answer>"your  query"</answer>',
        '<answer>{"query": "your query"}</answer>',
        "<answer> ... </answer>",
    ],
)
def test_the_default_templates_placeholder_is_invalid(completion: str) -> None:
    parsed = AnswerParser(Prompting("classic_ir"), answer_key="query")(completion)
    assert (parsed.format_ok, parsed.reason, parsed.answer) == (False, "placeholder", "")


def test_a_real_query_that_contains_the_words_is_an_answer() -> None:
    parse = AnswerParser(Prompting("classic_ir"), answer_key="query")
    assert parse("<answer> your query about colds </answer>").reason == "ok"
    assert parse("<answer> vitamin d common cold </answer>").answer == "vitamin d common cold"


def test_the_sql_placeholder_is_invalid_with_and_without_reasoning() -> None:
    plain = AnswerParser(Prompting("sql"), answer_key="sql")
    assert plain('<answer>{"sql": "SELECT ..."}</answer>').reason == "placeholder"
    assert plain('<answer>{"sql": "SELECT name FROM singer"}</answer>').reason == "ok"
    thinking = AnswerParser(Prompting("sql", reasoning=True, max_new_tokens=256), answer_key="sql")
    assert thinking('<think> ... </think><answer>{"sql": "SELECT ..."}</answer>').reason == "placeholder"


def test_every_template_knows_the_placeholders_it_shows() -> None:
    shown = {name: TEMPLATES.get(name).placeholders for name in TEMPLATES.names()}
    assert shown["classic_ir"] == {"your query", "..."}
    assert shown["sql"] == {"select ...", "..."}
    assert shown["keywords"] == frozenset()  # its instructions show no example answer


def test_a_placeholder_costs_the_format_penalty_in_training() -> None:
    task = load_task("demo")
    example = task.examples("train")[0]
    prompting = Prompting("classic_ir")
    reward = BatchReward(task, MetricReward(), prompting=prompting)
    batch = reward.score(
        ["<answer> your query </answer>", f"<answer> {example.original} </answer>"], [example, example]
    )
    assert batch.rewards[0] == MetricReward().format_penalty
    assert batch.parsed[0].reason == "placeholder" and batch.parsed[1].format_ok
    task.close()


class _Parrot:
    """A model that copies the example of the instructions back (what a 2-step policy did)."""

    name = "parrot"
    card = None
    fingerprint = "parrot"

    def complete(self, prompts: Sequence[list[dict[str, str]]], prompting: Prompting) -> list[str]:
        return ["<answer> your query </answer>"] * len(prompts)


def test_a_policy_that_answers_the_placeholder_is_not_format_valid() -> None:
    task = load_task("demo")
    explicit = Prompting("classic_ir")
    result = evaluate(
        task, _Parrot(), "test", prompting=PromptingConfig(**explicit.to_json()), limit=5, progress=False
    )
    assert result.format_ok == 0.0
    assert set(result.reasons.values()) == {"placeholder"}
    assert result.metrics["ndcg@10"] == 0.0
    task.close()
