"""One prompting decides a policy's prompt everywhere: training, evaluation, the rewrite API, the server and
the quickstart resolve the same run config, card and flags to the same prompt text, through one rule
(explicit > card > defaults)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from _train_helpers import write_tiny_model
from deepretrieval.cli._rewriting import load_rewriter
from deepretrieval.config import PromptingConfig, parse_config
from deepretrieval.evaluation import policy_prompting
from deepretrieval.policies import local_card
from deepretrieval.policies.card import PolicyCard
from deepretrieval.policies.hf import HFPolicy
from deepretrieval.prompting import PLAIN_TOKENS, REASONING_TOKENS, Prompting, resolve, run_prompting
from deepretrieval.train.data import build_task, prompt_dataset
from deepretrieval.train.grpo import policy_card

RECIPE = {
    "template": "feedback_expansion",
    "feedback": 2,
    "feedback_words": 4,
    "query_mode": "expand",
    "reasoning": False,
    "prefill": "<answer>",
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A run config with a prompting section, its task, and a 'trained' policy folder with the card that
    training writes for that config."""
    root = tmp_path_factory.mktemp("prompting")
    config = parse_config(
        {"task": {"name": "demo"}, "prompting": RECIPE, "rl": {"max_completion_length": 12}}
    )
    task = build_task(config)
    model = write_tiny_model(root / "model")
    card = policy_card(config, run_prompting(config, task))
    card.write(model)
    yield {"config": config, "task": task, "model": model, "card": card}
    task.close()


def _rendered(policy: HFPolicy, task, prompting: Prompting) -> str:
    example = task.examples("test")[0]
    return prompting.render(policy.tokenizer, task.messages(example, prompting))


def test_train_eval_rewrite_serve_and_quickstart_prompt_alike(trained: dict) -> None:
    config, task, card = trained["config"], trained["task"], trained["card"]
    policy = HFPolicy(str(trained["model"]))
    assert policy.card == card and card.prompting.max_new_tokens == 12  # rl.max_completion_length
    example = task.examples("test")[0]
    # training renders the dataset's prompt
    train_prompting = run_prompting(config, task)
    dataset = prompt_dataset(task, [example], policy.tokenizer, train_prompting, max_prompt_tokens=10_000)
    # evaluation, without flags: the card
    eval_prompting = policy_prompting(policy, task)
    assert eval_prompting == train_prompting == card.prompting
    assert dataset[0]["prompt"] == _rendered(policy, task, eval_prompting)
    # the quickstart prompts the untrained model as the trained one: the card's prompting as explicit choices
    untrained_as_trained = resolve(PromptingConfig(**card.prompting.to_json()), None, task)
    assert untrained_as_trained == eval_prompting
    # rewrite and serve (one loader), with the card's index for the results it reads
    args = argparse.Namespace(model=str(trained["model"]), template=None, reasoning=None, max_new_tokens=None)
    rewriter = load_rewriter(args, feedback_from=task.retriever)
    assert rewriter.prompting == eval_prompting
    assert rewriter.messages(example.original) == task.messages(example, eval_prompting)


def test_flags_win_over_the_card_field_by_field_everywhere(trained: dict) -> None:
    task, model = trained["task"], str(trained["model"])
    flags = PromptingConfig(reasoning=True)
    card = local_card(model)
    in_eval = resolve(flags, card.prompting, task)
    assert in_eval.reasoning and in_eval.template == "feedback_expansion" and in_eval.prefill == "<answer>"
    assert in_eval.max_new_tokens == REASONING_TOKENS  # the card's cap was for the other reasoning setting
    args = argparse.Namespace(model=model, template=None, reasoning=True, max_new_tokens=None)
    assert load_rewriter(args, feedback_from=task.retriever).prompting == in_eval


def test_one_reasoning_default_for_a_model_without_a_card(trained: dict) -> None:
    task = trained["task"]
    untrained = resolve(None, None, task)
    assert untrained == Prompting("classic_ir", reasoning=False, max_new_tokens=PLAIN_TOKENS)
    without_task = resolve(None, None)  # the rewrite API of an untrained model
    assert without_task == untrained
    assert resolve(PromptingConfig(reasoning=True), None, task).max_new_tokens == REASONING_TOKENS


def test_a_trained_policy_that_reads_results_needs_an_index_before_it_loads(trained: dict) -> None:
    args = argparse.Namespace(model=str(trained["model"]), template=None, reasoning=None, max_new_tokens=None)
    with pytest.raises(ValueError, match="give an index to read them from"):
        load_rewriter(args, feedback_from=None)


def test_old_config_keys_name_their_new_home(tmp_path: Path) -> None:
    from deepretrieval.config import ConfigError

    raw = {"task": {"name": "demo", "query_mode": "expand", "options": {"feedback": 3}}, "reasoning": False}
    with pytest.raises(ConfigError) as err:
        parse_config(raw)
    message = str(err.value)
    assert "reasoning: moved to prompting.reasoning" in message
    assert "task.query_mode: moved to prompting.query_mode" in message
    assert "task.options.feedback: moved to prompting.feedback" in message


def test_a_card_round_trips(tmp_path: Path) -> None:
    card = PolicyCard(Prompting("keywords", reasoning=True, prefill="<think>"), task="beir", base_model="x")
    assert PolicyCard.read(card.write(tmp_path).parent) == card
