"""Questions as TSV/CSV files: an evidence-seeking table (DPR's headerless ``question<TAB>['answer']`` or a
CSV with a header) and a BEIR queries table with a qrels file and a corpus evaluate to the same figures as
the same questions in the formats the tasks read already (real SQuAD and SciFact, real BM25)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from deepretrieval.cli import main

LIMIT = 150


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DEEPRETRIEVAL_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _metrics(out: Path) -> dict:
    (policy,) = json.loads((out / "results.json").read_text())["policies"]
    return {"queries": policy["queries"], **policy["metrics"]}


def _squad_pieces(squad_file: Path, folder: Path) -> tuple[list[tuple[str, str, list[str]]], Path]:
    """The first questions of SQuAD dev (id, question, answers) and its paragraphs as a passage JSONL."""
    articles = json.loads(squad_file.read_text())["data"]
    questions, passages = [], folder / "passages.jsonl"
    with passages.open("w") as out:
        for a, article in enumerate(articles):
            for p, paragraph in enumerate(article["paragraphs"]):
                title = article["title"].replace("_", " ")
                out.write(
                    json.dumps({"_id": f"{a}-{p}", "title": title, "text": paragraph["context"]}) + "\n"
                )
                for qa in paragraph["qas"]:
                    answers = list(dict.fromkeys(ans["text"] for ans in qa["answers"]))
                    questions.append((qa["id"], qa["question"], answers))
    return questions[:LIMIT], passages


def test_evidence_questions_from_tsv_and_csv(squad_file: Path, tmp_path: Path, cache: Path) -> None:
    questions, passages = _squad_pieces(squad_file, tmp_path)
    reference = tmp_path / "reference"
    args = ["eval", "--task", "evidence", "--metrics", "hits@1,hits@5,hits@20"]
    assert (
        main(
            [
                *args,
                "--data",
                str(squad_file),
                "--split",
                "dev",
                "--limit",
                str(LIMIT),
                "--out",
                str(reference),
            ]
        )
        == 0
    )
    # DPR's qas format: no header, the question, then the answers as a Python list
    dpr = tmp_path / "nq-test.qa.tsv"
    dpr.write_text("".join(f"{q}\t{answers!r}\n" for _, q, answers in questions), encoding="utf-8")
    # a spreadsheet export: a header, quoted cells, answers as JSON
    table = tmp_path / "questions.csv"
    with table.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["id", "Question", "answers"])
        writer.writerows([qid, q, json.dumps(answers)] for qid, q, answers in questions)
    for data in (dpr, table):
        out = tmp_path / data.stem
        assert main([*args, "--data", str(data), "--option", f"corpus={passages}", "--out", str(out)]) == 0
        assert _metrics(out) == pytest.approx(_metrics(reference))


def test_beir_queries_from_a_csv_with_a_qrels_file(scifact_dir: Path, tmp_path: Path, cache: Path) -> None:
    reference = tmp_path / "reference"
    assert (
        main(
            ["eval", "--task", "beir", "--data", str(scifact_dir), "--split", "test", "--out", str(reference)]
        )
        == 0
    )
    queries = [json.loads(line) for line in (scifact_dir / "queries.jsonl").open()]
    table = tmp_path / "claims.csv"  # no header: id, then the claim (quoted where it holds a comma)
    with table.open("w", newline="", encoding="utf-8") as out:
        csv.writer(out).writerows([q["_id"], q["text"]] for q in queries)
    out = tmp_path / "out"
    options = [
        "--option",
        f"qrels={scifact_dir / 'qrels' / 'test.tsv'}",
        "--option",
        f"corpus={scifact_dir / 'corpus.jsonl'}",
    ]
    assert main(["eval", "--task", "beir", "--data", str(table), *options, "--out", str(out)]) == 0
    assert _metrics(out) == pytest.approx(_metrics(reference))  # 300 claims, NDCG@10 0.6762


@pytest.mark.parametrize(
    "content, options, message",
    [
        ("1\tfever\n", [], "is a queries file: name its judgements and documents, e.g. --option qrels="),
        ("question\tanswers\nwho\t['x'\n", ["--task", "evidence"], "q.tsv:2: answers \"['x'\" are not a JSON or Python list"),
    ],
)  # fmt: skip
def test_a_question_file_error_is_one_line(
    content: str, options: list[str], message: str, tmp_path: Path, cache: Path, capsys
) -> None:
    path = tmp_path / "q.tsv"
    path.write_text(content)
    corpus = ["--option", f"corpus={tmp_path / 'absent.jsonl'}"]  # never read: the questions fail first
    task = [*options, *corpus] if "--task" in options else ["--task", "beir"]
    assert main(["eval", *task, "--data", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
