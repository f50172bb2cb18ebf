"""``deepretrieval quickstart`` end to end with a tiny model standing in for SmolLM2: it trains, evaluates the
policies in the recipe's query mode (with blind pseudo-relevance feedback as the bar) and writes the figures
and one per-query row per held-out query."""

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
    overrides = [f"model={json.dumps(str(model))}", "rl.max_steps=2", "logging.backend=none"]
    assert main(["quickstart", "--out", str(out), "--seed", "1", *(f"--set={o}" for o in overrides)]) == 0
    table = capsys.readouterr().out
    assert all(name in table for name in ("original", "feedback", "untrained", "trained", "expand mode"))

    figures = json.loads((out / "quickstart.json").read_text())
    assert (
        figures["query_mode"] == "expand"
        and figures["template"] == "feedback_expansion"
        and figures["seed"] == 1
    )
    assert figures["steps"] == 2 and figures["metric"] == "ndcg@10"
    task = load_task("demo")
    examples = {ex.id: ex for ex in task.examples("test")}
    rows = [json.loads(line) for line in (out / "per_query.jsonl").read_text().splitlines()]
    assert [row["id"] for row in rows] == list(examples)
    for row in rows:
        example = examples[row["id"]]
        assert row["original"]["answer"] == example.original
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
