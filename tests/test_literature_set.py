"""Literature search judged by whole result sets on the local Boolean engine (CLEF TAR 2017, real data):
set recall / precision / F1 / F3 and the screening load, the set reward under which ORing a title's
words no longer pays, and queries the engine cannot parse turned into invalid answers with the parser's
message, in training and in evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from _index_helpers import task_index
from deepretrieval.cli import main
from deepretrieval.config import RetrieverConfig
from deepretrieval.evaluation import evaluate
from deepretrieval.parsing import ParsedCompletion
from deepretrieval.policies import load_policy
from deepretrieval.prompting import Prompting
from deepretrieval.rewards import BatchReward, SetReward
from deepretrieval.tasks import load_task
from deepretrieval.tasks.literature import set_measures


@pytest.fixture(scope="module")
def folder(shared_data: Path) -> Path:
    found = shared_data / "literature" / "clef-tar-2017"
    if not (found / "corpus.jsonl").is_file():
        pytest.skip("literature data not found")
    return found


@pytest.fixture(scope="module")
def index(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(task_index("literature", folder, tmp_path_factory.mktemp("clef") / "index", kind="boolean"))


@pytest.fixture(scope="module")
def clef(folder: Path, index: Path):
    task = load_task("literature", folder, retriever=RetrieverConfig(kind="boolean", index=str(index)))
    yield task
    task.close()


def test_set_measures_by_hand() -> None:
    truth = {"a": 1, "b": 1, "c": 1, "d": 0}
    measured = set_measures(["a", "b", "x", "y", "d"], truth)  # 2 of 3 relevant among 5 matched
    assert measured["set_recall"] == pytest.approx(2 / 3) and measured["set_precision"] == pytest.approx(0.4)
    assert measured["f1"] == pytest.approx(2 * 0.4 * (2 / 3) / (0.4 + 2 / 3))
    assert measured["f3"] == pytest.approx(10 * 0.4 * (2 / 3) / (9 * 0.4 + 2 / 3))
    assert set_measures([], truth) == {"set_recall": 0.0, "set_precision": 0.0, "f1": 0.0, "f3": 0.0}


def test_whole_sets_judge_the_clef_test_reviews(clef) -> None:
    assert clef.metrics == ("f3", "set_recall", "set_precision", "f1", "retrieved")
    assert clef.default_reward == {"kind": "set"}
    results = {
        name: evaluate(clef, load_policy(name), "test", progress=False)
        for name in ("original", "or-words", "expert")
    }
    title, spam, expert = results["original"].metrics, results["or-words"].metrics, results["expert"].metrics
    # ORing the title's words finds every included study by matching more than 10,000 of the 27,126
    # documents; the experts' strategies find 9 in 10 in about 900; the titles as typed match almost nothing
    assert spam["set_recall"] == 1.0 and spam["retrieved"] > 10_000
    assert expert["set_recall"] > 0.85 and 500 < expert["retrieved"] < 1500
    assert title["set_recall"] < 0.05
    assert expert["f3"] > 0.2 > 10 * max(spam["f3"], title["f3"])
    scheme, ok = SetReward(), ParsedCompletion("q", "", True, "ok")
    examples = clef.examples("test")
    mean = {  # the default metrics are what the set reward reads
        name: sum(scheme.reward(ok, result.per_query[ex.id]) for ex in examples) / 8
        for name, result in results.items()
    }
    assert mean["or-words"] == pytest.approx(scheme.format_bonus + scheme.over_broad)
    assert mean["expert"] > 1.5 and 0 > mean["original"] > mean["or-words"]


BROKEN = {
    "(aspergillus OR galactomannan": "is never closed",
    "galactomannan AND #99": "refers to line 99",
    "(" * 70 + "galactomannan" + ")" * 70: "nest",
    "galactomannan[tiab AND tendon]": "unknown field tag [tiab AND tendon]",
}


def test_a_query_that_does_not_parse_is_an_invalid_answer_in_training(clef) -> None:
    example = clef.examples("train")[0]
    reward = BatchReward(clef, SetReward(), prompting=Prompting("literature", prefill="<answer>"))
    completions = [f"<answer>{query}</answer>" for query in BROKEN] + [
        "<answer>galactomannan AND aspergillosis</answer>"
    ]
    batch = reward.score(completions, [example] * len(completions))
    for parsed, reward_value, message in zip(batch.parsed, batch.rewards, BROKEN.values()):
        assert parsed.reason == "invalid_query" and message in parsed.detail, parsed.detail
        assert reward_value == SetReward().format_penalty
    assert (
        batch.parsed[-1].format_ok and batch.rewards[-1] > SetReward().format_bonus
    )  # it finds included studies


def test_a_query_that_does_not_parse_is_reported_in_evaluation(
    clef, folder: Path, index: Path, tmp_path: Path, capsys
) -> None:
    predictions = tmp_path / "queries.jsonl"
    examples = clef.examples("test")
    queries = list(BROKEN) + ["aspergillus"] * (len(examples) - len(BROKEN))
    lines = [json.dumps({"id": ex.id, "prediction": query}) + "\n" for ex, query in zip(examples, queries)]
    predictions.write_text("".join(lines))
    out = tmp_path / "out"
    status = main(["eval", "--task", "literature", "--data", str(folder), "--split", "test", "--engine", "local",
                   "--index", str(index), "--policy", f"predictions:{predictions}", "--out", str(out)])  # fmt: skip
    assert status == 0
    header = capsys.readouterr().out.splitlines()[0].split()
    assert header[-1] == "invalid"  # the table counts the queries the engine could not read
    (row,) = json.loads((out / "results.json").read_text())["policies"]
    records = [json.loads(line) for line in (out / row["per_query"]).read_text().splitlines()]
    for record, message in zip(records, BROKEN.values()):
        assert message in record["invalid_query"] and record["metrics"]["retrieved"] == 0.0
    assert all("invalid_query" not in record for record in records[len(BROKEN) :])


def test_set_measures_need_an_engine_that_lists_every_match(shared_data: Path) -> None:
    data = shared_data / "literature" / "pubmed-pico"
    engine = RetrieverConfig(kind="pubmed", options={"engine_url": "http://127.0.0.1:9"})
    with pytest.raises(
        ValueError, match="f3 judge the whole result set: they need an engine that lists every match"
    ):
        load_task("literature", data, retriever=engine, metrics=["f3"])
    ranked = load_task("literature", data, retriever=engine)
    assert (
        ranked.metrics == ("recall@3000", "precision", "retrieved")
        and ranked.default_reward["kind"] == "recall_tiers"
    )
    ranked.close()


def test_pico_descriptions_and_denser_judgements(folder: Path, index: Path) -> None:
    engine = RetrieverConfig(kind="boolean", index=str(index))
    pico = load_task("literature", folder, retriever=engine, description="pico", judgements="abstract")
    example = pico.examples("train")[0]
    text = example.fields["query"]
    assert text.startswith(f"Title: {example.original}\nParticipants: ") and "\nIndex tests: " in text
    content = load_task("literature", folder, retriever=engine)
    for dense, sparse in zip(pico.examples("train"), content.examples("train")):
        assert dense.id == sparse.id and set(sparse.truth) <= set(dense.truth)
    assert sum(map(len, (e.truth for e in pico.examples("train")))) > 2 * sum(
        map(len, (e.truth for e in content.examples("train")))
    )
    pico.close()
    content.close()
