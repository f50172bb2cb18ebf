"""Pseudo-relevance feedback in the prompt (``prompting.feedback``): the policy reads the opening words of the
top results of the user's query; blind feedback (all of them appended) is the baseline; a policy trained with
feedback is prompted with it, as its card says. Real BM25 over the bundled demo collection."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from deepretrieval.config import PromptingConfig
from deepretrieval.evaluation import evaluate
from deepretrieval.policies import load_policy
from deepretrieval.policies.baselines import Feedback
from deepretrieval.policies.card import PolicyCard, PolicyCardError
from deepretrieval.prompting import Prompting, resolve
from deepretrieval.tasks import load_task

SHOWN = Prompting("feedback_expansion", prefill="<answer>", query_mode="expand", feedback=3, feedback_words=5)


class ScriptedPolicy:
    """Answers every prompt with one fixed completion and keeps the prompts (the harness is under test)."""

    name = "scripted"

    def __init__(self, completion: str, card: PolicyCard | None = None) -> None:
        self.completion, self.card = completion, card
        self.fingerprint = f"scripted:{completion}"
        self.prompts: list = []

    def complete(self, prompts, prompting):
        self.prompts += prompts
        return [self.completion for _ in prompts]


@pytest.fixture(scope="module")
def task():
    opened = load_task("demo")
    yield opened
    opened.close()


def test_the_prompt_shows_the_top_results_of_the_original_query(task) -> None:
    example = task.examples("test")[0]
    ranking = task.retriever.search([example.original], 3)[0]
    expected = [" ".join(task.retriever.text(d).split()[:5]) for d in ranking.doc_ids]
    assert task.feedback_snippets(example, 3, 5) == expected
    user = task.messages(example, SHOWN)[1]["content"]
    assert user.startswith(f"Request: {example.original}\nTop results:\n")
    assert "\n".join(f"- {snippet}" for snippet in expected) in user


def test_blind_feedback_appends_every_snippet_and_changes_the_ranking(task) -> None:
    examples = task.examples("test")[:20]
    answers = Feedback(task, 3, 5).answers(examples)
    assert answers == [" ".join(task.feedback_snippets(ex, 3, 5)) for ex in examples]
    blind = evaluate(task, Feedback(task, 3, 5), "test", limit=20, progress=False)
    assert blind.query_mode == "expand"  # the baseline's own mode
    original = evaluate(task, load_policy("original"), "test", limit=20, progress=False)
    assert blind.metrics["ndcg@10"] != pytest.approx(original.metrics["ndcg@10"])


def test_feedback_needs_a_template_with_the_slot_and_a_task_that_can_show_results(spider_dir) -> None:
    with pytest.raises(ValueError, match="needs a template with a \\{feedback\\} slot"):
        Prompting("expansion", feedback=3)
    with pytest.raises(ValueError, match="set prompting.feedback > 0"):
        Prompting("feedback_expansion")
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        PromptingConfig(feedback=-1)
    sql = load_task("sql", spider_dir)
    with pytest.raises(ValueError, match="judged by a ranked search"):
        Feedback(sql)
    with pytest.raises(ValueError, match="cannot show the top results"):
        resolve(PromptingConfig(feedback=3), None, sql)
    sql.close()


def test_asking_for_feedback_picks_a_template_that_shows_it(task) -> None:
    prompting = resolve(PromptingConfig(feedback=2), None, task)
    assert prompting.template == "feedback_expansion" and prompting.feedback_words == 12


def test_a_policy_trained_with_feedback_is_refused_on_other_prompts(task, tmp_path: Path) -> None:
    card = PolicyCard(SHOWN, task="demo")
    assert PolicyCard.read(card.write(tmp_path).parent) == card
    scripted = ScriptedPolicy("<answer>x</answer>", card)
    result = evaluate(task, scripted, "test", limit=3, progress=False)
    assert result.format_ok == 1.0 and result.prompting == SHOWN
    assert scripted.prompts[0] == task.messages(task.examples("test")[0], SHOWN)  # the results, as trained
    (tmp_path / "deepretrieval_policy.json").write_text(json.dumps({"prompting": {"feedback": "3"}}))
    with pytest.raises(PolicyCardError, match="feedback must be int"):
        PolicyCard.read(tmp_path)


def test_a_card_of_the_first_format_is_read(tmp_path: Path) -> None:
    old = {"reasoning": False, "prompt_prefill": "<answer>", "task": "demo", "template": None,
           "query_mode": "expand", "base_model": None, "feedback": 0, "feedback_words": 12}  # fmt: skip
    (tmp_path / "deepretrieval_policy.json").write_text(json.dumps(old))
    card = PolicyCard.read(tmp_path)
    assert card.prompting == Prompting("classic_ir", prefill="<answer>", query_mode="expand")
    assert card.task == "demo"


def test_eval_cli_scores_blind_feedback(task, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "deepretrieval.cli", "eval", "--task", "demo", "--policy", "feedback",
         "--set", "prompting.feedback_words=5", "--out", str(tmp_path / "out")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (row,) = json.loads((tmp_path / "out" / "results.json").read_text())["policies"]
    in_process = evaluate(task, Feedback(task, 3, 5), "test", progress=False)
    assert row["policy"] == "feedback" and row["query_mode"] == "expand" and row["queries"] == 116
    assert row["metrics"]["ndcg@10"] == pytest.approx(in_process.metrics["ndcg@10"])
