"""Pseudo-relevance feedback in the prompt (task option ``feedback``): the policy reads the opening words of the
top results of the user's query; blind feedback (all of them appended) is the baseline; a policy trained with
feedback is refused on prompts without it. Real BM25 over the bundled demo collection."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from deepretrieval.config import TaskConfig
from deepretrieval.evaluate import evaluate
from deepretrieval.policies import load_policy
from deepretrieval.policies.baselines import Feedback
from deepretrieval.policies.card import PolicyCard, PolicyCardError
from deepretrieval.tasks import load_task

OPTIONS = {"template": "feedback_expansion", "feedback": 3, "feedback_words": 5}


class ScriptedPolicy:
    """Answers every prompt with one fixed completion and keeps the prompts (the harness is under test)."""

    name = "scripted"

    def __init__(self, completion: str, card: PolicyCard | None = None) -> None:
        self.completion, self.card = completion, card
        self.fingerprint = f"scripted:{completion}"
        self.prompts: list = []

    def complete(self, prompts):
        self.prompts += prompts
        return [self.completion for _ in prompts]


@pytest.fixture(scope="module")
def task():
    opened = load_task(TaskConfig(name="demo", options=OPTIONS))
    yield opened
    opened.close()


def test_the_prompt_shows_the_top_results_of_the_original_query(task) -> None:
    example = task.examples("test")[0]
    ranking = task.retriever.search([example.original], 3)[0]
    expected = [" ".join(task.retriever.text(d).split()[:5]) for d in ranking.doc_ids]
    assert task.feedback_snippets(example) == expected
    user = task.messages(example, reasoning=False)[1]["content"]
    assert user.startswith(f"Request: {example.original}\nTop results:\n")
    assert "\n".join(f"- {snippet}" for snippet in expected) in user


def test_blind_feedback_appends_every_snippet_and_changes_the_ranking(task) -> None:
    examples = task.examples("test")[:20]
    answers = Feedback(task).answers(examples)
    assert answers == [" ".join(task.feedback_snippets(ex)) for ex in examples]
    blind = evaluate(task, Feedback(task), "test", limit=20, progress=False)
    assert blind.query_mode == "expand"  # the baseline's own mode
    original = evaluate(task, load_policy("original"), "test", limit=20, progress=False)
    assert blind.metrics["ndcg@10"] != pytest.approx(original.metrics["ndcg@10"])


def test_feedback_needs_a_template_with_the_slot_and_a_task_with_feedback() -> None:
    with pytest.raises(ValueError, match="needs a template with a \\{feedback\\} slot"):
        load_task(TaskConfig(name="demo", options={"template": "expansion", "feedback": 3}))
    plain = load_task("demo")
    with pytest.raises(ValueError, match="feedback > 0"):
        Feedback(plain)
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        load_task(TaskConfig(name="demo", options={**OPTIONS, "feedback": -1}))
    plain.close()


def test_a_policy_trained_with_feedback_is_refused_on_other_prompts(task, tmp_path: Path) -> None:
    card = PolicyCard(reasoning=False, prompt_prefill="<answer>", template="feedback_expansion",
                      query_mode="expand", feedback=3, feedback_words=5)  # fmt: skip
    assert PolicyCard.read(card.write(tmp_path).parent) == card
    result = evaluate(task, ScriptedPolicy("<answer>x</answer>", card), "test", limit=3, progress=False)
    assert result.format_ok == 1.0
    plain = load_task("demo")
    with pytest.raises(ValueError, match="--option feedback=3 --option feedback_words=5"):
        evaluate(plain, ScriptedPolicy("<answer>x</answer>", card), "test", limit=3, progress=False)
    plain.close()
    (tmp_path / "deepretrieval_policy.json").write_text(json.dumps({"reasoning": False, "feedback": "3"}))
    with pytest.raises(PolicyCardError, match="feedback must be int"):
        PolicyCard.read(tmp_path)


def test_eval_cli_scores_blind_feedback(task, tmp_path: Path) -> None:
    options = [arg for key, value in OPTIONS.items() for arg in ("--option", f"{key}={value}")]
    proc = subprocess.run(
        [sys.executable, "-m", "deepretrieval.cli", "eval", "--task", "demo", "--policy", "feedback",
         *options, "--out", str(tmp_path / "out")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (row,) = json.loads((tmp_path / "out" / "results.json").read_text())["policies"]
    in_process = evaluate(task, Feedback(task), "test", query_mode="expand", progress=False)
    assert row["policy"] == "feedback" and row["query_mode"] == "expand" and row["queries"] == 116
    assert row["metrics"]["ndcg@10"] == pytest.approx(in_process.metrics["ndcg@10"])
