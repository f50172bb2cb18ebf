"""`deepretrieval eval` over several policies: one table with significance marks, JSON + Markdown + per-query
files, variants with and without reasoning, and an interrupted evaluation that resumes where it stopped."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from _index_helpers import task_index
from _serve_helpers import write_tiny_policy
from _train_helpers import write_tiny_beir
from deepretrieval.config import PromptingConfig, RetrieverConfig
from deepretrieval.evaluation import evaluate, format_table, markdown_report
from deepretrieval.evaluation.significance import compare, paired_test
from deepretrieval.generation_log import GenerationLog, GenerationLogError
from deepretrieval.policies import load_policy, parse_policy_spec
from deepretrieval.policies.hf import HFPolicy
from deepretrieval.tasks import load_task

FOUR_TOKENS = PromptingConfig(max_new_tokens=4)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("eval-multi")
    beir = write_tiny_beir(root / "beir")
    model = write_tiny_policy(root / "model")
    task = load_task(
        "beir",
        beir,
        retriever=RetrieverConfig(index=task_index("beir", beir, root / "idx")),
        metrics=["ndcg@10"],
    )
    return {"root": root, "beir": beir, "model": model, "task": task}


def _env(tmp: Path) -> dict:
    return {**os.environ, "DEEPRETRIEVAL_CACHE": str(tmp / "cache"), "PYTHONPATH": os.pathsep.join(sys.path)}


def test_one_command_evaluates_several_policies(tiny: dict, tmp_path: Path) -> None:
    out = tmp_path / "out"
    model = str(tiny["model"])
    proc = subprocess.run(
        [sys.executable, "-m", "deepretrieval.cli", "eval", "--task", "beir", "--data", str(tiny["beir"]),
         "--split", "train", "--index", str(tiny["root"] / "idx"), "--metrics", "ndcg@10,recall@10",
         "--policy", f"original,{model},{model}@reasoning", "--max-new-tokens", "4", "--out", str(out)],
        capture_output=True, text=True, check=False, env=_env(tmp_path),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    table = proc.stdout.splitlines()
    assert table[0].split() == ["policy", "ndcg@10", "recall@10", "format_ok"]
    assert [line.split()[0] for line in table[2:5]] == ["original", model, f"{model}@reasoning"]
    # 4 queries: no p-value can fall under 0.05 (2/16 at best), so no † and no † footnote
    assert table[5].startswith("no difference from original is significant at p < 0.05: two-sided paired")
    results = json.loads((out / "results.json").read_text())
    assert results["split"] == "train" and "--policy" in results["command"]
    by_name = {p["policy"]: p for p in results["policies"]}
    assert by_name["original"]["format_ok"] is None and by_name[model]["reasoning"] is False  # from its card
    assert by_name[f"{model}@reasoning"]["reasoning"] is True
    # The same evaluation through the library gives the same figures.
    direct = evaluate(
        load_task("beir", tiny["beir"], retriever=RetrieverConfig(index=str(tiny["root"] / "idx")),
                  metrics=["ndcg@10", "recall@10"]),
        HFPolicy(model), "train", prompting=FOUR_TOKENS, progress=False,
    )  # fmt: skip
    assert by_name[model]["metrics"] == pytest.approx(direct.metrics)
    assert by_name[model]["format_ok"] == pytest.approx(direct.format_ok)
    rows = [json.loads(line) for line in (out / by_name[model]["per_query"]).open()]
    assert [r["id"] for r in rows] == list(direct.answers)
    for row in rows:
        assert (
            row["completion"] == direct.completions[row["id"]] and row["answer"] == direct.answers[row["id"]]
        )
        assert row["format"] == direct.reasons[row["id"]] and row["metrics"] == direct.per_query[row["id"]]
    tests = results["significance"]["tests"][model]["ndcg@10"]
    assert tests["n"] == 4 and 0 <= tests["p_value"] <= 1
    markdown = (out / "results.md").read_text()
    assert f"| `{model}@reasoning` |" in markdown and "```bash\ndeepretrieval eval --task beir" in markdown
    assert "scipy.stats.permutation_test" in markdown and "(p=" in markdown


def test_paired_test_equals_exact_sign_flip_enumeration(scifact_task) -> None:
    original = evaluate(scifact_task, load_policy("original"), "test", limit=12, progress=False)
    # A second real ranking of the same queries: keyword-only (first three words) versions of the claims.
    examples = scifact_task.examples("test")[:12]
    short = [" ".join(ex.original.split()[:3]) for ex in examples]
    outcomes = scifact_task.measure(short, examples)
    shortened = {ex.id: o["ndcg@10"] for ex, o in zip(examples, outcomes)}
    base = {q: v["ndcg@10"] for q, v in original.per_query.items()}
    diffs = np.array([shortened[q] - base[q] for q in base])
    observed = abs(diffs.mean())
    flips = np.array(list(itertools.product([1, -1], repeat=len(diffs))))
    exact = np.mean(np.abs((flips * diffs).mean(axis=1)) >= observed - 1e-12)
    test = paired_test(shortened, base)
    assert test.n == 12 and test.delta == pytest.approx(diffs.mean())
    assert test.p_value == pytest.approx(exact)
    assert paired_test(base, dict(base)).p_value == 1.0  # identical systems: no evidence of a difference


def test_significance_marks_a_real_difference_on_scifact(scifact_task) -> None:
    original = evaluate(scifact_task, load_policy("original"), "test", progress=False)
    examples = scifact_task.examples("test")
    outcomes = scifact_task.measure([ex.original.split()[0] for ex in examples], examples)  # one word only
    one_word = {
        ex.id: {"ndcg@10": o["ndcg@10"], "recall@100": o["recall@100"]} for ex, o in zip(examples, outcomes)
    }
    comparison = compare(
        {"original": original.per_query, "one word": one_word}, "original", ["ndcg@10", "recall@100"]
    )
    test = comparison.tests["one word"]["ndcg@10"]
    assert test.n == 300 and test.delta < -0.3 and test.p_value < 0.001
    assert comparison.mark("one word", "ndcg@10") == "†" and comparison.mark("original", "ndcg@10") == ""
    text = format_table([original], comparison)
    assert "300 queries" in text and "10,000 resamples" in text
    assert "Difference from `original`" in markdown_report([original], comparison)


class Interrupting:
    """A real policy that is interrupted (Ctrl-C) after ``batches`` generation calls."""

    def __init__(self, inner: HFPolicy, batches: int | None) -> None:
        self.inner, self.batches, self.calls, self.generated = inner, batches, 0, 0
        self.name, self.card, self.fingerprint = inner.name, inner.card, inner.fingerprint

    def complete(self, prompts, prompting):
        if self.batches is not None and self.calls == self.batches:
            raise KeyboardInterrupt
        self.calls += 1
        self.generated += len(prompts)
        return self.inner.complete(prompts, prompting)


def test_an_interrupted_evaluation_resumes_where_it_stopped(tiny: dict, tmp_path: Path) -> None:
    task, log = tiny["task"], tmp_path / "generations.jsonl"
    policy = HFPolicy(str(tiny["model"]))
    four = {"prompting": FOUR_TOKENS, "progress": False}
    whole = evaluate(task, policy, "train", batch_size=1, **four)
    with pytest.raises(KeyboardInterrupt):
        evaluate(task, Interrupting(policy, 2), "train", batch_size=1, log_path=log, **four)
    assert len(log.read_text().splitlines()) == 1 + 2  # the key, then the two completed batches
    with log.open("a") as handle:
        handle.write('{"id": "q3", "completion": "<answer> tor')  # a write cut short by the crash
    resumed = Interrupting(policy, None)
    result = evaluate(task, resumed, "train", batch_size=1, log_path=log, **four)
    assert resumed.generated == 2  # only the two examples not yet logged
    assert result.completions == whole.completions and result.metrics == whole.metrics
    assert [json.loads(line) for line in log.read_text().splitlines()[1:]] == [
        {"id": ex_id, "completion": text} for ex_id, text in whole.completions.items()
    ]
    again = Interrupting(policy, None)
    evaluate(task, again, "train", log_path=log, **four)
    assert again.generated == 0
    other = Interrupting(policy, None)  # other prompting: the log no longer applies
    reasoning = PromptingConfig(reasoning=True, max_new_tokens=4)
    evaluate(task, other, "train", prompting=reasoning, log_path=log, progress=False)
    assert other.generated == 4


def test_a_log_is_not_reused_when_the_prompts_change(tiny: dict, tmp_path: Path) -> None:
    log, policy = tmp_path / "generations.jsonl", HFPolicy(str(tiny["model"]))
    task = load_task(
        "beir", tiny["beir"], retriever=RetrieverConfig(index=str(tiny["root"] / "idx")), metrics=["ndcg@10"]
    )
    for words, generated in ((3, 4), (3, 0), (2, 4)):  # same template, fewer words shown: new prompts
        shown = PromptingConfig(
            template="feedback_expansion", feedback=2, feedback_words=words, max_new_tokens=4
        )
        counting = Interrupting(policy, None)
        evaluate(task, counting, "train", prompting=shown, log_path=log, progress=False)
        assert counting.generated == generated, words


def test_a_damaged_log_line_is_an_error_not_a_silent_result(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    GenerationLog(path, {"k": 1}).append([("a", "x"), ("b", "y")])
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], "{broken", lines[2]]) + "\n")
    with pytest.raises(GenerationLogError, match="log.jsonl:2 is damaged"):
        GenerationLog(path, {"k": 1})
    fresh = GenerationLog(path, {"k": 2})  # another key starts afresh
    assert fresh.restarted and fresh.done == {}


@pytest.mark.parametrize(
    "args, message",
    [
        (["--policy", "original,original"], "lists 'original' twice"),
        (["--policy", "untrained@noreasoning"], "unknown policy variant 'noreasoning'"),
        (["--policy", "original", "--baseline", "gold"], "--baseline 'gold' is not one of"),
        (["--out", "{tmp}/results.json"], "--out takes a folder"),
        (["--policy", "original,{tmp}/missing-model"], "model folder not found"),
        (["--policy", "predictions:{tmp}/nothing.txt"], "does not exist"),
    ],
)
def test_eval_user_errors_are_one_line(tiny: dict, tmp_path: Path, args: list[str], message: str) -> None:
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    proc = subprocess.run(
        [sys.executable, "-m", "deepretrieval.cli", "eval", "--task", "beir", "--data", str(tiny["beir"]),
         "--index", str(tiny["root"] / "idx"), *args],
        capture_output=True, text=True, check=False, env=_env(tmp_path),
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_policy_specs_split_variants_but_keep_paths_with_at(tmp_path: Path) -> None:
    assert parse_policy_spec("untrained@no-reasoning").reasoning is False
    assert parse_policy_spec("openai:gpt-4o@reasoning").base == "openai:gpt-4o"
    odd = tmp_path / "model@v2"
    odd.mkdir()
    assert parse_policy_spec(str(odd)).base == str(odd) and parse_policy_spec(str(odd)).reasoning is None
