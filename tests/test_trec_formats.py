"""TREC interop: ``eval --out`` writes a run file per policy that ir_measures reads back to the same
figures, ``--metrics`` takes any ir_measures measure, trec_eval's four-column qrels and TREC topics files
read like BEIR's own files, and the evaluation's plots are written and linked (or skipped with a note)."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import ir_measures
import pytest
from ir_measures import AP, P, nDCG

from deepretrieval.evaluation import evaluate
from deepretrieval.evaluation.outputs import write_outputs
from deepretrieval.evaluation.runs import strictly_decreasing
from deepretrieval.evaluation.suite import SuiteResult
from deepretrieval.policies import PolicyOptions, load_policy
from deepretrieval.tasks import load_task
from deepretrieval.tasks.beir import DataError, read_qrels

PNG = b"\x89PNG\r\n\x1a\n"


def _eval(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DEEPRETRIEVAL_CACHE"}
    return subprocess.run(
        [sys.executable, "-m", "deepretrieval.cli", "eval", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**env, "DEEPRETRIEVAL_CACHE": str(tmp_path / "cache")},
    )


def _qrels(examples) -> list[ir_measures.Qrel]:
    return [ir_measures.Qrel(ex.id, doc, grade) for ex in examples for doc, grade in ex.truth.items()]


def test_run_files_read_back_to_the_same_figures_and_any_ir_measure_works(
    scifact_dir: Path, scifact_task, scifact_bm25, tmp_path: Path
) -> None:
    """``--metrics map,ndcg@10,P@5`` equals ir_measures on the run file eval wrote (what the judge saw)."""
    predictions = tmp_path / "short.txt"  # a second policy: the first four words of each claim
    examples = scifact_task.examples("test")
    predictions.write_text("".join(" ".join(ex.original.split()[:4]) + "\n" for ex in examples))
    out = tmp_path / "out"
    proc = _eval(
        ["--task", "beir", "--data", str(scifact_dir), "--index", str(scifact_bm25.index_dir)]
        + [
            "--policy",
            f"original,predictions:{predictions}",
            "--metrics",
            "map,ndcg@10,P@5",
            "--out",
            str(out),
        ],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[0].split() == ["policy", "map", "ndcg@10", "precision@5"]
    summaries = json.loads((out / "results.json").read_text())["policies"]
    for summary in summaries:
        run = list(ir_measures.read_trec_run(str(out / summary["run"])))
        assert {doc.query_id for doc in run} == {ex.id for ex in examples}
        reference = ir_measures.calc_aggregate([AP, nDCG @ 10, P @ 5], _qrels(examples), run)
        metrics = summary["metrics"]
        assert metrics["map"] == pytest.approx(reference[AP], abs=1e-9)
        assert metrics["ndcg@10"] == pytest.approx(reference[nDCG @ 10], abs=1e-9)
        assert metrics["precision@5"] == pytest.approx(reference[P @ 5], abs=1e-9)
    lines = (out / summaries[0]["run"]).read_text().splitlines()
    first = lines[0].split()
    assert first[1] == "Q0" and first[3] == "1" and first[5] == "original" and len(first) == 6
    # the judge ranked 1,000 deep for map (a measure without a cutoff), its own NDCG@10 unchanged
    assert max(int(line.split()[3]) for line in lines) == 1000
    plain = evaluate(scifact_task, load_policy("original"), "test", progress=False)
    assert summaries[0]["metrics"]["ndcg@10"] == pytest.approx(plain.metrics["ndcg@10"], abs=1e-12)
    # the plots: each policy against the baseline, linked from results.md
    (plot,) = (out / "plots").iterdir()
    assert plot.read_bytes().startswith(PNG) and plot.name.endswith("-vs-baseline.png")
    assert f"](plots/{plot.name})" in (out / "results.md").read_text()


def test_run_files_stop_at_trecs_depth_where_the_judge_reads_deeper(
    scifact_dir: Path, scifact_bm25, tmp_path: Path
) -> None:
    """A judge reading 3,000 deep (evidence) wrote 3,000 lines a query: 1.4 GB a policy on SQuAD."""
    out = tmp_path / "out"
    proc = _eval(
        ["--task", "beir", "--data", str(scifact_dir), "--index", str(scifact_bm25.index_dir), "--limit", "4"]
        + ["--metrics", "recall@2500", "--out", str(out)],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    (summary,) = json.loads((out / "results.json").read_text())["policies"]
    lines = (out / summary["run"]).read_text().splitlines()
    ranks = [int(line.split()[3]) for line in lines]
    assert ranks == list(range(1, 1001)) * 4  # each query's 1,000 best
    examples = load_task("beir", scifact_dir, retriever=scifact_bm25).examples("test")[:4]
    deep = scifact_bm25.search([ex.original for ex in examples], 2500)
    assert min(map(len, deep)) > 1000  # the judge read deeper than the file keeps


def test_tied_scores_are_written_in_the_judges_order() -> None:
    import numpy as np

    scores = strictly_decreasing(np.array([3.0, 2.0, 2.0, 2.0, 1.0, 1.5], dtype=np.float32))
    assert list(scores[[0, 1, 4]]) == [3.0, 2.0, 1.0] and 0 < 1.0 - scores[5] < 1e-6
    # trec_eval holds scores as 32-bit floats: the written values stay apart there
    assert all(a > b for a, b in itertools.pairwise(np.float32([float(repr(float(x))) for x in scores])))


def _beir_like(tmp_path: Path, scifact_dir: Path, qrels: str, name: str = "test.tsv") -> Path:
    """A BEIR folder whose corpus and queries are SciFact's (linked, not copied) and whose qrels are given."""
    folder = tmp_path / "beir"
    (folder / "qrels").mkdir(parents=True)
    for part in ("corpus.jsonl", "queries.jsonl"):
        (folder / part).symlink_to(scifact_dir / part)
    (folder / "qrels" / name).write_text(qrels)
    return folder


def test_trec_eval_qrels_evaluate_to_the_same_numbers(
    scifact_dir: Path, scifact_task, scifact_bm25, tmp_path
) -> None:
    """``qid 0 docid rel`` with any whitespace and no header is read like BEIR's TSV."""
    beir_rows = (scifact_dir / "qrels" / "test.tsv").read_text().splitlines()[1:]
    seps = [" ", "\t", "   ", " \t "]
    trec = "".join(
        f"{q}{seps[i % 4]}0{seps[(i + 1) % 4]}{d}{seps[(i + 2) % 4]}{g}\n"
        for i, (q, d, g) in enumerate(row.split("\t") for row in beir_rows)
    )
    folder = _beir_like(tmp_path, scifact_dir, trec, "test.qrels")
    trec_task = load_task("beir", folder, retriever=scifact_bm25, metrics=["ndcg@10", "recall@100"])
    original = load_policy("original")
    ours = evaluate(trec_task, original, "test", progress=False)
    theirs = evaluate(scifact_task, original, "test", progress=False)
    assert (
        len(ours.per_query) == 300 and ours.per_query == theirs.per_query and ours.metrics == theirs.metrics
    )


@pytest.mark.parametrize(
    "text, expected",
    [
        ("q1 d1 1\nq1 d2 0\nq2 d3 2\n", {"q1": {"d1": 1, "d2": 0}, "q2": {"d3": 2}}),  # no header: all kept
        ("query-id\tcorpus-id\tscore\nq1\td1\t1\n", {"q1": {"d1": 1}}),  # BEIR's header
        ("q1\t0\td1\t1\r\nq1 0 d2 -1\n\n", {"q1": {"d1": 1, "d2": -1}}),  # trec_eval, CRLF, blank line
        ("qid iter docno rel\nq1 0 d1 1\n", {"q1": {"d1": 1}}),
        ("query-id\tcorpus-id\tscore\n", {}),
        ("q1 0\td1  1\nq1\t0 d2\t1\n", {"q1": {"d1": 1, "d2": 1}}),  # any whitespace, as trec_eval
    ],
)
def test_qrels_layout_is_decided_by_content(tmp_path: Path, text: str, expected: dict) -> None:
    path = tmp_path / "test.tsv"
    path.write_text(text)
    assert read_qrels(path) == expected


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "q1 d1 1\nq1 0 d2 1\n",
            r"test.tsv:2: 4 columns, but line 1 has 3 \(query-id<TAB>corpus-id<TAB>score\)",
        ),
        ("q1 d1 1.0\nq2 d2 1.0\n", r"test.tsv:2: grade '1.0' is not an integer"),
        (
            "q1 d1 x y 1\n",
            r"test.tsv:1: expected query-id<TAB>corpus-id<TAB>score \(BEIR\) or qid 0 docid rel",
        ),
        (
            "q1 d1\nq2 0 d2 1\n",
            r"test.tsv:1: 'q1 d1' is no judgment .* nor a header of the 4 columns below it",
        ),
    ],
)
def test_bad_qrels_are_one_line_naming_the_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "test.tsv"
    path.write_text(text)
    with pytest.raises(DataError, match=message):
        read_qrels(path)


TOPICS = """<top>
<num> Number: 301
<title> fever medicine

<desc> Description:
Which medicines lower a fever?
</top>

<top>
<num> Number: 302
<title> Topic: flat tyre
<desc> Description: How is a tyre repaired?
</top>
"""


@pytest.mark.parametrize(
    "name, content",
    [("topics.301-302.txt", TOPICS), ("queries.tsv", "301\tfever medicine\n302\tflat tyre\n")],
)
def test_a_trec_topics_file_or_tsv_stands_for_queries_jsonl(tmp_path: Path, name: str, content: str) -> None:
    folder = tmp_path / "trec"
    (folder / "qrels").mkdir(parents=True)
    docs = {"d1": "fever treated with antipyretic medicine", "d2": "a flat tyre loses air pressure"}
    (folder / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": k, "text": v}) + "\n" for k, v in docs.items())
    )
    (folder / name).write_text(content)
    (folder / "qrels" / "test.txt").write_text("301 0 d1 1\n302 0 d2 1\n")
    task = load_task("beir", folder, metrics=["ndcg@10"])
    assert {ex.id: ex.original for ex in task.examples("test")} == {
        "301": "fever medicine",
        "302": "flat tyre",
    }
    assert evaluate(task, load_policy("original"), "test", progress=False).metrics == {"ndcg@10": 1.0}
    task.close()


def test_literature_plots_recall_against_the_screening_load(shared_data: Path, tmp_path: Path) -> None:
    folder = shared_data / "literature" / "clef-tar-2017"
    if not (folder / "corpus.jsonl").is_file():
        pytest.skip("literature data not found")
    out = tmp_path / "out"
    proc = _eval(
        ["--task", "literature", "--data", str(folder), "--split", "test", "--engine", "local"]
        + ["--policy", "original,expert", "--limit", "4", "--out", str(out)],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    names = sorted(p.name for p in (out / "plots").iterdir())
    assert names[0].startswith("expert-") and names[1] == "recall-vs-retrieved.png"
    markdown = (out / "results.md").read_text()
    for name in names:
        assert (out / "plots" / name).read_bytes().startswith(PNG) and f"](plots/{name})" in markdown


def test_without_matplotlib_the_plots_are_skipped_with_a_note(
    scifact_task, tmp_path: Path, monkeypatch
) -> None:
    results = [
        evaluate(scifact_task, policy, "test", limit=20, progress=False, keep_rankings=True)
        for policy in (load_policy("original"), load_policy("feedback", PolicyOptions(task=scifact_task)))
    ]
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` raises ImportError
    suite = SuiteResult(results, None, "original", scifact_task.examples("test"), scifact_task.primary_metric)
    note, wrote = write_outputs(tmp_path, suite, "deepretrieval eval ...")
    assert note.startswith("plots skipped: matplotlib is not installed")
    assert wrote == f"wrote results.json, results.md, per_query/, runs/ in {tmp_path}"
    assert not (tmp_path / "plots").exists() and note in (tmp_path / "results.md").read_text()
    assert sorted(p.name.split("-")[0] for p in (tmp_path / "runs").iterdir()) == ["feedback", "original"]
