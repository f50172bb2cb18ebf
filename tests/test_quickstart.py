"""``deepretrieval quickstart`` end to end with a tiny model standing in for SmolLM2: it trains, evaluates the
policies in the recipe's query mode (with blind pseudo-relevance feedback as the bar) with significance
against the original query, and writes the figures and one per-query row per held-out query. A run cut
short by its time budget says so in the table, the JSON and the report."""

from __future__ import annotations

import json
from pathlib import Path

from _train_helpers import write_tiny_model
from deepretrieval.answers import judged_queries
from deepretrieval.cli import main
from deepretrieval.tasks import load_task


def test_quickstart_writes_figures_and_a_per_query_file(tmp_path: Path, capsys) -> None:
    model = write_tiny_model(tmp_path / "model")
    out = tmp_path / "quickstart"
    # a budget that ends training after its first step of three: the busy machine of the issue
    overrides = [f"model={json.dumps(str(model))}", "rl.max_steps=3", "rl.time_budget_s=0.001"]
    assert main(["quickstart", "--out", str(out), "--seed", "1", *(f"--set={o}" for o in overrides)]) == 0
    captured = capsys.readouterr()
    table = captured.out
    assert all(name in table for name in ("original", "feedback", "untrained", "trained", "expand mode"))
    assert "trained: 1 of 3 planned GRPO steps" in table and "time budget" in table
    assert "warning: UNDER-TRAINED: training stopped at step 1 of 3" in table
    assert ("p < 0.05 against original" in table) or ("no difference from original is significant" in table)
    for phase in ("[1/3] training", "[2/3] evaluating original, feedback, untrained and trained", "[3/3]"):
        assert phase in captured.err  # every long phase says what it does
    assert "final: generating" in captured.err  # with a progress bar (labelled by the policy folder)

    figures = json.loads((out / "quickstart.json").read_text())
    assert (
        figures["query_mode"] == "expand"
        and figures["template"] == "feedback_expansion"
        and figures["seed"] == 1
    )
    assert figures["steps"] == 1 and figures["steps_planned"] == 3 and figures["metric"] == "ndcg@10"
    assert figures["stopped_by"] == "time_budget" and figures["complete"] is False
    assert figures["warning"].startswith("UNDER-TRAINED")
    assert set(figures["significance"]) == {"feedback", "untrained", "trained"}
    assert 0 < figures["significance"]["trained"]["p_value"] <= 1
    assert (
        abs(figures["significance"]["trained"]["delta"] - (figures["trained"] - figures["original"])) < 1e-9
    )
    versus = figures["trained_vs_feedback"]  # the bar a model must clear, tested the same way
    assert (
        abs(versus["delta"] - (figures["trained"] - figures["feedback"])) < 1e-9
        and 0 < versus["p_value"] <= 1
    )
    assert "trained against blind feedback (the bar a model must clear)" in table
    page = (out / "run" / "report" / "report.html").read_text()
    assert "UNDER-TRAINED" in page and "1 of 3 planned GRPO steps" in page
    assert "../eval/results.md" in page and (out / "run" / "eval" / "results.md").is_file()
    task = load_task("demo")
    examples = {ex.id: ex for ex in task.examples("test")}
    rows = [json.loads(line) for line in (out / "per_query.jsonl").read_text().splitlines()]
    assert [row["id"] for row in rows] == list(examples)
    for row in rows:
        example = examples[row["id"]]
        assert row["original"]["answer"] == example.original
        assert row["original"]["searched"] == example.original  # in expand mode too: nothing is added
        # blind feedback: the user's words followed by the opening words of the top 3 results, all of them
        snippets = task.feedback_snippets(example, 3, 8)
        assert 1 <= len(snippets) <= 3 and all(1 <= len(s.split()) <= 8 for s in snippets)  # matches only
        assert row["feedback"]["searched"] == f"{example.original} {' '.join(snippets)}"
        for policy in ("untrained", "trained"):
            # what the judge searched: the user's words followed by the answer (expand mode)
            assert row[policy]["searched"] == judged_queries([row[policy]["answer"]], [example], "expand")[0]
            assert 0.0 <= row[policy]["ndcg@10"] <= 1.0
    mean = sum(row["trained"]["ndcg@10"] for row in rows) / len(rows)
    assert abs(mean - figures["trained"]) < 1e-9  # the file and the figures tell the same story
    card = json.loads((out / "run" / "final" / "deepretrieval_policy.json").read_text())["prompting"]
    assert card["query_mode"] == "expand" and card["template"] == "feedback_expansion"
    assert (card["feedback"], card["feedback_words"], card["prefill"]) == (3, 8, "<answer>")
    assert card["max_new_tokens"] == 16  # the recipe's rl.max_completion_length
    task.close()
