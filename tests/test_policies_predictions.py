"""`predictions:PATH` scores an external system's outputs with our judges: Spider's gold file with some
lines broken, JSONL by id, and a one-line error for every file that does not line up with the split."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from deepretrieval.evaluation import evaluate
from deepretrieval.policies import load_policy
from deepretrieval.policies.predictions import PredictionsError
from deepretrieval.tasks import load_task

LIMIT = 120
BROKEN = (0, 7, 50, 119)  # record positions whose SQL is replaced by SQL that cannot run


@pytest.fixture(scope="module")
def gold_lines(spider_dir: Path) -> list[str]:
    """Spider's own dev_gold.sql: ``SQL<TAB>db_id``, one line per record of dev.json (1,034)."""
    return (spider_dir / "dev_gold.sql").read_text(encoding="utf-8").splitlines()


@pytest.fixture(scope="module")
def spider_task(spider_dir: Path):
    task = load_task("sql", spider_dir)
    yield task
    task.close()


def _broken(lines: list[str]) -> list[str]:
    out = list(lines)
    for position in BROKEN:
        db_id = out[position].rsplit("\t", 1)[1]
        out[position] = f"SELEC nothing FROM nowhere\t{db_id}"
    return out


def test_eval_scores_a_spider_predictions_file(
    spider_dir: Path, gold_lines: list[str], tmp_path: Path
) -> None:
    predictions = tmp_path / "pred.sql"
    predictions.write_text("\n".join(_broken(gold_lines)) + "\n")
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "deepretrieval.cli", "eval", "--task", "sql", "--data", str(spider_dir),
         "--split", "dev", "--policy", f"gold,predictions:{predictions}", "--limit", str(LIMIT), "--out", str(out)],
        capture_output=True, text=True, check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    results = json.loads((out / "results.json").read_text())
    gold, predicted = results["policies"]
    assert gold["metrics"]["ex"] == 1.0 and gold["queries"] == LIMIT
    assert predicted["metrics"]["ex"] == pytest.approx((LIMIT - len(BROKEN)) / LIMIT)
    rows = [json.loads(line) for line in (out / predicted["per_query"]).open()]
    wrong = [row["id"] for row in rows if row["metrics"]["ex"] == 0.0]
    assert wrong == [f"spider-dev-{p}" for p in BROKEN]
    assert results["significance"]["baseline"] == "gold"  # no original listed: the first policy


def test_jsonl_by_id_in_any_order_scores_the_same(spider_task, gold_lines: list[str], tmp_path: Path) -> None:
    examples = spider_task.examples("dev")
    broken = _broken(gold_lines)
    records = [{"id": ex.id, "prediction": broken[ex.meta["position"]].rsplit("\t", 1)[0]} for ex in examples]
    random.Random(0).shuffle(records)
    path = tmp_path / "pred.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    result = evaluate(spider_task, load_policy(f"predictions:{path}"), "dev", limit=LIMIT, progress=False)
    assert result.metrics["ex"] == pytest.approx((LIMIT - len(BROKEN)) / LIMIT)
    assert result.format_ok is None


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda lines: lines[:-1], "has 1033 lines but the split has 1034 records"),
        (lambda lines: lines + ["SELECT 1\tconcert_singer"], "has 1035 lines"),
        (
            lambda lines: [*lines[:4], lines[500], *lines[5:]],
            "pred.sql:5: db_id 'battle_death' but example spider-dev-4 is on 'concert_singer'",
        ),
    ],
)
def test_a_misaligned_lines_file_is_one_clear_error(
    spider_task, gold_lines, tmp_path: Path, edit, message
) -> None:
    path = tmp_path / "pred.sql"
    path.write_text("\n".join(edit(gold_lines)) + "\n")
    with pytest.raises(PredictionsError, match=message):
        evaluate(spider_task, load_policy(f"predictions:{path}"), "dev", limit=10, progress=False)


def test_jsonl_with_a_missing_or_duplicated_id_is_an_error(spider_task, tmp_path: Path) -> None:
    examples = spider_task.examples("dev")
    path = tmp_path / "pred.jsonl"
    path.write_text("".join(json.dumps({"id": ex.id, "prediction": ex.truth}) + "\n" for ex in examples[1:]))
    with pytest.raises(
        PredictionsError, match="no prediction for 1 of the 972 examples .first: 'spider-dev-0'"
    ):
        evaluate(spider_task, load_policy(f"predictions:{path}"), "dev", limit=5, progress=False)
    row = json.dumps({"id": examples[0].id, "prediction": "SELECT 1"})
    path.write_text(f"{row}\n{row}\n")
    with pytest.raises(PredictionsError, match="pred.jsonl:2: id 'spider-dev-0' appears twice"):
        load_policy(f"predictions:{path}")
    path.write_text(json.dumps({"id": "x", "prediction": 3}) + "\n")
    with pytest.raises(PredictionsError, match="with a string prediction"):
        load_policy(f"predictions:{path}")


def test_retrieval_predictions_in_split_order_equal_the_original_queries(
    scifact_task, tmp_path: Path
) -> None:
    examples = scifact_task.examples("test")
    path = tmp_path / "queries.txt"
    path.write_text("\n".join(ex.original for ex in examples) + "\n")
    from_file = evaluate(scifact_task, load_policy(f"predictions:{path}"), "test", progress=False)
    original = evaluate(scifact_task, load_policy("original"), "test", progress=False)
    assert from_file.metrics == original.metrics and from_file.policy == "predictions:queries.txt"


# Spider dev records whose prediction drops the gold's DISTINCT (tests/test_sql_compat.py): wrong with
# --keep_distinct (our default), right under the official evaluator's default, which removes DISTINCT.
WITHOUT_DISTINCT = {
    8: "SELECT country FROM singer WHERE age > 20",
    55: "SELECT count(pettype) FROM pets",
}


@pytest.mark.parametrize(("compat", "verdict"), [("keep_distinct", 0.0), ("official", 1.0)])
def test_sql_compat_official_gives_the_official_evaluators_verdicts(
    spider_dir: Path, gold_lines: list[str], tmp_path: Path, compat: str, verdict: float
) -> None:
    from deepretrieval.cli import main

    lines = list(gold_lines)
    for position, sql in WITHOUT_DISTINCT.items():
        assert "DISTINCT" in lines[position].split("\t")[0]
        lines[position] = f"{sql}\t{lines[position].rsplit(chr(9), 1)[1]}"
    predictions = tmp_path / "pred.sql"
    predictions.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    args = ["eval", "--task", "sql", "--data", str(spider_dir), "--split", "dev", "--limit", "60"]
    assert (
        main(
            [
                *args,
                "--policy",
                f"predictions:{predictions}",
                "--option",
                f"compat={compat}",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    summary = json.loads((out / "results.json").read_text())["policies"][0]
    rows = {row["id"]: row["metrics"]["ex"] for row in map(json.loads, (out / summary["per_query"]).open())}
    assert [rows[f"spider-dev-{p}"] for p in WITHOUT_DISTINCT] == [verdict, verdict]
    assert sum(rows.values()) == 60 - 2 * (1 - verdict)  # the gold lines are right either way


def _original_metrics(scifact_task) -> dict:
    return evaluate(scifact_task, load_policy("original"), "test", progress=False).metrics


@pytest.mark.parametrize("id_key", ["id", "qid", "query_id", "_id"])
def test_jsonl_with_a_byte_order_mark_or_another_id_key_is_read_as_jsonl(
    scifact_task, tmp_path: Path, id_key: str
) -> None:
    """A BOM before the first record, or ``qid`` for ``id``, made every raw JSON line a query (0.6621)."""
    examples = scifact_task.examples("test")
    records = [json.dumps({id_key: ex.id, "prediction": ex.original}) for ex in reversed(examples)]
    path = tmp_path / "pred.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + "\n".join(records).encode() + b"\r\n")
    result = evaluate(scifact_task, load_policy(f"predictions:{path}"), "test", progress=False)
    assert result.answers == {ex.id: ex.original for ex in examples}
    assert result.metrics == _original_metrics(scifact_task)


def test_a_query_holding_a_unicode_line_separator_stays_one_line(scifact_task, tmp_path: Path) -> None:
    """``splitlines`` breaks at U+2028: the correct file was refused, or every later line shifted."""
    examples = scifact_task.examples("test")
    texts = [ex.original for ex in examples]
    texts[3] = texts[3].replace(" ", "\u2028", 1)
    lines, jsonl = tmp_path / "pred.txt", tmp_path / "pred.jsonl"
    lines.write_text("\n".join(texts) + "\n", encoding="utf-8")
    jsonl.write_text(
        "".join(json.dumps({"id": ex.id, "prediction": t}) + "\n" for ex, t in zip(examples, texts))
    )
    by_line = evaluate(scifact_task, load_policy(f"predictions:{lines}"), "test", progress=False)
    by_id = evaluate(scifact_task, load_policy(f"predictions:{jsonl}"), "test", progress=False)
    assert list(by_line.answers.values()) == texts and by_line.answers == by_id.answers
    assert by_line.per_query == by_id.per_query
    assert by_line.metrics["ndcg@10"] == pytest.approx(_original_metrics(scifact_task)["ndcg@10"], abs=0.01)


@pytest.mark.parametrize(
    "content, message",
    [
        (
            '{"query": "1", "prediction": "a"}\n',
            r"pred:1: expected .* named id, qid, query_id, _id.*got keys query",
        ),
        (
            '{"id": "1", "prediction": "a"}\nvitamin d\n',
            r"mixes JSON records \(line 1\) with plain lines \(line 2\)",
        ),
        (
            'vitamin d\n{"id": "1", "prediction": "a"}\n',
            r"mixes JSON records \(line 2\) with plain lines \(line 1\)",
        ),
        ("\n\n", "is empty"),
    ],
)
def test_a_file_of_no_single_layout_is_refused(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "pred"
    path.write_text(content)
    with pytest.raises(PredictionsError, match=message):
        load_policy(f"predictions:{path}")


def test_a_folder_is_not_a_predictions_file(tmp_path: Path) -> None:
    with pytest.raises(PredictionsError, match="is a folder; give the predictions file"):
        load_policy(f"predictions:{tmp_path}")
