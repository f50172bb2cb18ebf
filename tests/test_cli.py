"""The command line as one schema: ``index build`` for every index-backed retriever kind through the registry
(each index then used by ``eval --index``), ``eval --config`` with dotted ``--set`` overrides, ``--metrics``
honoured by every task family, and ``--version``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from _literature_helpers import write_corpus
from _train_helpers import write_tiny_beir
from deepretrieval.cli import main


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DEEPRETRIEVAL_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _results(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())


@pytest.mark.parametrize("kind", ["bm25", "dense", "faiss"])
def test_index_build_then_eval_uses_that_index(kind: str, tmp_path: Path, cache: Path, capsys) -> None:
    beir = write_tiny_beir(tmp_path / "beir")
    index = tmp_path / f"{kind}-index"
    assert main(["index", "build", "--retriever", kind, "--corpus", str(beir), "--out", str(index)]) == 0
    manifest = json.loads((index / "index.json").read_text()) if (index / "index.json").is_file() else None
    assert "indexed 8 documents" in capsys.readouterr().out
    out = tmp_path / "out"
    args = ["eval", "--task", "beir", "--data", str(beir), "--split", "train", "--retriever", kind]
    assert main([*args, "--index", str(index), "--out", str(out)]) == 0
    (row,) = _results(out)["policies"]
    assert row["queries"] == 4 and row["metrics"]["ndcg@10"] >= 0.5, row  # the original queries find some
    assert not (cache / "indexes").exists()  # the given index was used, nothing built in the cache
    assert manifest is None or manifest.get("kind", kind) == kind


def test_index_build_of_the_boolean_engine_then_literature_eval(tmp_path: Path, cache: Path) -> None:
    folder = write_corpus(tmp_path / "lit")
    (folder / "qrels").mkdir()
    (folder / "queries.jsonl").write_text(
        json.dumps({"_id": "r1", "text": "aspergillosis", "metadata": {"boolean_query": "aspergillosis[ti]"}})
        + "\n"
    )
    relevant = [json.loads(line)["_id"] for line in (folder / "corpus.jsonl").open()][::3]  # aspergillosis
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"r1\t{doc}\t1\n" for doc in relevant)
    )
    index = tmp_path / "boolean-index"
    assert (
        main(["index", "build", "--retriever", "boolean", "--corpus", str(folder), "--out", str(index)]) == 0
    )
    out = tmp_path / "out"
    args = ["eval", "--task", "literature", "--data", str(folder), "--engine", "local", "--index", str(index)]
    assert (
        main([*args, "--policy", "original,expert", "--metrics", "recall@20,recall@10", "--out", str(out)])
        == 0
    )
    rows = {row["policy"]: row for row in _results(out)["policies"]}
    assert set(rows["expert"]["metrics"]) == {"recall@20", "recall@10"}
    assert rows["expert"]["metrics"]["recall@20"] == 1.0 and rows["expert"]["metrics"]["recall@10"] == 0.5


def test_index_build_refuses_a_search_engine_and_a_foreign_setting(tmp_path: Path, capsys) -> None:
    beir = write_tiny_beir(tmp_path / "beir")
    assert (
        main(["index", "build", "--retriever", "pubmed", "--corpus", str(beir), "--out", str(tmp_path / "x")])
        == 2
    )
    assert "search engine with no index of its own; index build takes: bm25" in capsys.readouterr().err
    assert main(["index", "build", "--retriever", "dense", "--corpus", str(beir), "--out", str(tmp_path / "y"),
                 "--k1", "1.2"]) == 2  # fmt: skip
    assert "unknown key 'k1'" in capsys.readouterr().err


def test_eval_reads_a_run_config_with_dotted_overrides(tmp_path: Path, cache: Path) -> None:
    out = tmp_path / "out"
    config = Path(__file__).resolve().parents[1] / "configs" / "quickstart-cpu.yaml"
    args = ["eval", "--config", str(config), "--set", "eval.policies=[original,feedback]", "--limit", "20"]
    assert main([*args, "--set", "retriever.options.k1=1.2", "--out", str(out)]) == 0
    results = _results(out)
    assert results["split"] == "test" and [p["policy"] for p in results["policies"]] == [
        "original",
        "feedback",
    ]
    assert "--set retriever.options.k1=1.2" in results["command"] and "--config" in results["command"]
    # blind feedback shows what the config's prompting shows: 3 results, 8 words each
    assert "feedback_words" not in results["command"]
    (index,) = [path for path in (cache / "indexes").iterdir() if path.is_dir()]
    assert json.loads((index / "index.json").read_text())["settings"]["k1"] == 1.2


@pytest.mark.parametrize(
    "task, data, metrics",
    [
        ("demo", None, "ndcg@5,mrr@10"),
        ("evidence", "squad", "hits@1,hits@100"),
        ("sql", "spider", "executed,ex"),
    ],
)
def test_metrics_are_honoured_by_every_family(
    task, data, metrics, shared_data, tmp_path: Path, cache: Path
) -> None:
    out = tmp_path / "out"
    args = ["eval", "--task", task, "--metrics", metrics, "--limit", "10", "--out", str(out)]
    if data is not None:
        args += ["--data", str(shared_data / data)]
    if task == "sql":
        args += ["--policy", "gold"]
    assert main(args) == 0
    (row,) = _results(out)["policies"]
    assert list(row["metrics"])[: len(metrics.split(","))] == metrics.split(",")


def test_version(capsys) -> None:
    from deepretrieval import __version__

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"deepretrieval {__version__}"
