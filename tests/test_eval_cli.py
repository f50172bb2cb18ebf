"""`deepretrieval eval` with the original SciFact test claims and BM25: Lucene's published NDCG@10 range."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import ir_measures
import pytest
from ir_measures import R, nDCG

from _index_helpers import task_index
from deepretrieval.config import PromptingConfig
from deepretrieval.evaluation import evaluate, format_table
from deepretrieval.policies import load_policy

REASONING = PromptingConfig(reasoning=True)


def test_eval_cli_scifact_bm25_in_lucene_range(scifact_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "deepretrieval.cli",
            "eval",
            "--task",
            "beir",
            "--data",
            str(scifact_dir),
            "--split",
            "test",
            "--policy",
            "original",
            "--index",
            task_index("beir", scifact_dir, tmp_path / "idx"),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={"DEEPRETRIEVAL_CACHE": str(tmp_path / "cache"), **_env()},
    )
    assert proc.returncode == 0, proc.stderr
    assert "ndcg@10" in proc.stdout and "original" in proc.stdout
    (result,) = json.loads((out / "results.json").read_text())["policies"]
    assert set(result["metrics"]) == {"ndcg@10", "recall@100"}
    assert 0.665 <= result["metrics"]["ndcg@10"] <= 0.685
    per_query = [json.loads(line) for line in (out / result["per_query"]).open()]
    assert len(per_query) == result["queries"] == 300
    assert per_query[0]["answer"] == per_query[0]["original"]


def test_eval_metrics_equal_ir_measures(scifact_task) -> None:
    result = evaluate(scifact_task, load_policy("original"), "test", progress=False)
    examples = scifact_task.examples("test")
    hits = scifact_task.retriever.search([ex.original for ex in examples], 100)
    run = [
        ir_measures.ScoredDoc(ex.id, h.doc_id, -rank)
        for ex, hs in zip(examples, hits)
        for rank, h in enumerate(hs)
    ]
    qrels = [ir_measures.Qrel(ex.id, d, g) for ex in examples for d, g in ex.truth.items()]
    reference = ir_measures.calc_aggregate([nDCG @ 10, R @ 100], qrels, run)
    assert result.metrics["ndcg@10"] == pytest.approx(reference[nDCG @ 10], abs=1e-6)
    assert result.metrics["recall@100"] == pytest.approx(reference[R @ 100], abs=1e-6)
    table = format_table([result])
    assert table.splitlines()[0].split() == ["policy", "ndcg@10", "recall@100"]


def test_eval_cli_reports_bad_input_clearly(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "deepretrieval.cli", "eval", "--task", "beir", "--data", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "is not a BEIR folder" in proc.stderr


def test_gold_policy_refuses_qrels_tasks(scifact_task) -> None:
    with pytest.raises(ValueError, match="gold"):
        evaluate(scifact_task, load_policy("gold"), "test", progress=False)


def _env() -> dict:
    import os

    return {k: v for k, v in os.environ.items() if k != "DEEPRETRIEVAL_CACHE"}


class ScriptedPolicy:
    """A completion policy that answers each prompt with a fixed completion (the harness is under test)."""

    name = "scripted"
    card = None

    def __init__(self, completion: str) -> None:
        self.completion = completion
        self.fingerprint = f"scripted:{completion}"
        self.prompts: list = []

    def complete(self, prompts, prompting):
        self.prompts += prompts
        return [self.completion for _ in prompts]


def test_eval_applies_the_training_guards(scifact_task) -> None:
    long_query = "vitamin d " * 300  # 3,000 characters: over the 2,000-character cap of training
    scripted = ScriptedPolicy(f"<think>t</think><answer>{long_query}</answer>")
    result = evaluate(scifact_task, scripted, "test", limit=5, prompting=REASONING, progress=False)
    assert result.format_ok == 0.0 and set(result.answers.values()) == {""}
    assert result.metrics["ndcg@10"] == 0.0
    short = evaluate(
        scifact_task,
        ScriptedPolicy("<think>t</think><answer>vitamin d</answer>"),
        "test",
        limit=5,
        prompting=REASONING,
    )
    assert short.format_ok == 1.0


def test_eval_prompts_a_policy_as_its_card_says(scifact_task) -> None:
    from deepretrieval.policies.card import PolicyCard
    from deepretrieval.prompting import Prompting

    scripted = ScriptedPolicy("<answer>vitamin d</answer>")
    scripted.card = PolicyCard(Prompting("keywords", reasoning=False, prefill="<answer>"))
    result = evaluate(scifact_task, scripted, "test", limit=3, progress=False)
    assert result.prompting.reasoning is False and result.format_ok == 1.0
    user = scripted.prompts[0][1]["content"]
    assert "<think>" not in user and user.startswith("Request: ")  # the keywords template, no reasoning
    forced = evaluate(scifact_task, scripted, "test", limit=3, prompting=REASONING, progress=False)
    assert (
        forced.prompting.reasoning is True and forced.format_ok == 0.0
    )  # explicit choice wins over the card
    assert forced.prompting.template == "keywords"  # the rest still from the card


@pytest.mark.parametrize(
    "args, message",
    [
        (["--limit", "0"], "expected a positive integer"),
        (["--out", "{tmp}/file.txt"], "is a file; give a folder"),
        (["--out", "{tmp}/file.txt/results"], "is a file, not a folder"),
        (["--option", "metrix=[ndcg@10]"], "unknown option of task 'beir'"),
    ],
)
def test_eval_cli_user_errors_are_one_line(scifact_dir: Path, tmp_path: Path, args, message) -> None:
    (tmp_path / "file.txt").write_text("x")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "deepretrieval.cli",
            "eval",
            "--task",
            "beir",
            "--data",
            str(scifact_dir),
            *args,
        ],
        capture_output=True,
        text=True,
        check=False,
        env={"DEEPRETRIEVAL_CACHE": str(tmp_path / "cache"), **_env()},
    )
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len([line for line in proc.stderr.splitlines() if "error" in line]) == 1


def test_expand_mode_sends_the_original_query_plus_the_answer(scifact_task) -> None:
    original = evaluate(scifact_task, load_policy("original"), "test", limit=40, progress=False)
    nonsense = ScriptedPolicy("<answer>qqqzzz</answer>")  # a term no document has
    rewrite = evaluate(scifact_task, nonsense, "test", limit=40, progress=False)
    expand_mode = PromptingConfig(query_mode="expand")
    expand = evaluate(scifact_task, nonsense, "test", limit=40, prompting=expand_mode, progress=False)
    assert rewrite.metrics["ndcg@10"] == 0.0 and rewrite.query_mode == "rewrite"
    assert expand.query_mode == "expand"
    assert expand.metrics["ndcg@10"] == pytest.approx(original.metrics["ndcg@10"])
    with pytest.raises(ValueError, match="query_mode"):
        PromptingConfig(query_mode="append")


def test_an_object_that_is_no_policy_is_refused(scifact_task) -> None:
    class Nameless:
        def complete(self, prompts):
            return ["<answer>x</answer>" for _ in prompts]

    with pytest.raises(TypeError, match="Nameless is not a policy.*fingerprint"):
        evaluate(scifact_task, Nameless(), "test", limit=2, progress=False)


def test_an_unwritable_out_fails_before_any_work(scifact_dir: Path, tmp_path: Path) -> None:
    """It ran the whole evaluation, then failed writing results.json."""
    import os

    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    target = locked / "out"
    if os.access(locked, os.W_OK):  # root writes through permissions: a folder the kernel refuses
        target = Path("/proc/self/deepretrieval-eval-out")
    proc = subprocess.run(
        [sys.executable, "-m", "deepretrieval.cli", "eval", "--task", "beir", "--data", str(scifact_dir)]
        + ["--index", str(tmp_path / "idx"), "--out", str(target)],
        capture_output=True,
        text=True,
        check=False,
        env={"DEEPRETRIEVAL_CACHE": str(tmp_path / "cache"), **_env()},
    )
    locked.chmod(0o755)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    (error,) = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert (
        error.startswith(f"error: --out {target} cannot be written (")
        and "give a folder you can write" in error
    )
    assert not (tmp_path / "idx").exists()  # refused before the index was built
    assert not list(tmp_path.rglob("*.partial"))
