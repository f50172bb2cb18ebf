"""The one task constructor and the task contract: options validated per family, the judge composed at
opening, BEIR's identical-id convention, and the floors of the import graph."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from _index_helpers import task_index
from deepretrieval.config import RetrieverConfig, TaskConfig
from deepretrieval.retrievers.cache import CachedRetriever
from deepretrieval.tasks import load_task
from deepretrieval.tasks.base import Task


def _write_beir(folder: Path, docs: dict[str, str], queries: dict[str, str], qrels: dict[str, str]) -> Path:
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": d, "text": t}) + "\n" for d, t in docs.items())
    )
    (folder / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in queries.items())
    )
    rows = "".join(f"{q}\t{d}\t1\n" for q, d in qrels.items())
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + rows)
    return folder


@pytest.fixture
def arguana_like(tmp_path: Path) -> Path:
    """A collection whose queries are themselves documents (as in ArguAna, Quora): each query's own text
    is in the corpus under the query's id, and the relevant document is a different one."""
    docs = {
        "a1": "nuclear power is a safe low carbon energy source",
        "a2": "nuclear power plants produce dangerous radioactive waste for millennia",
        "b1": "school uniforms reduce bullying and social pressure",
        "b2": "school uniforms suppress the self expression of pupils",
    }
    return _write_beir(
        tmp_path / "args", docs, {"a1": docs["a1"], "b1": docs["b1"]}, {"a1": "a2", "b1": "b2"}
    )


def test_beir_drops_the_query_document_by_default_and_can_keep_it(arguana_like: Path, tmp_path: Path) -> None:
    index = RetrieverConfig(index=task_index("beir", arguana_like, tmp_path / "index"))
    beir_default = load_task("beir", arguana_like, retriever=index, metrics=["ndcg@10", "mrr@10"])
    examples = beir_default.examples("test")
    outcomes = beir_default.measure([ex.original for ex in examples], examples)
    # the query's own document ranks first; without it, the relevant one is first
    assert [o["mrr@10"] for o in outcomes] == [1.0, 1.0]
    ranking = beir_default.rankings([examples[0].original], examples[:1], 10)[0]
    assert ranking.doc_ids == ["a2"]  # a1 matched itself first and is gone

    kept = load_task(
        "beir", arguana_like, retriever=index, metrics=["ndcg@10", "mrr@10"], ignore_identical_ids=False
    )
    outcomes = kept.measure([ex.original for ex in examples], examples)
    assert [o["mrr@10"] for o in outcomes] == [0.5, 0.5]


def test_the_judge_is_composed_at_opening(arguana_like: Path, tmp_path: Path) -> None:
    task = load_task(
        TaskConfig(name="beir", data=str(arguana_like)),
        retriever=RetrieverConfig(index=task_index("beir", arguana_like, tmp_path / "i")),
    )
    assert isinstance(task, Task)
    assert isinstance(task.retriever, CachedRetriever)
    assert task.outcome_keys == {"ndcg@10", "recall@100"} and task.default_split == "test"
    assert task.default_reward == {"kind": "metric", "metric": "ndcg@10"}


def test_unknown_options_are_named_with_a_suggestion(arguana_like: Path) -> None:
    with pytest.raises(
        ValueError, match=r"task.options.metrix: unknown option of task 'beir' \(did you mean metrics\?\)"
    ):
        load_task("beir", arguana_like, metrix=["ndcg@10"])
    with pytest.raises(ValueError, match="task.options.template: moved to prompting.template"):
        load_task("beir", arguana_like, template="keywords")
    with pytest.raises(ValueError, match="unknown task 'bier'; did you mean 'beir'\\?"):
        load_task("bier", arguana_like)
    with pytest.raises(ValueError, match="needs a data folder"):
        load_task("beir")


def test_sql_refuses_a_retriever_section(spider_dir: Path) -> None:
    with pytest.raises(ValueError, match="judged without a retriever"):
        load_task("sql", spider_dir, retriever=RetrieverConfig(kind="dense"))
    with load_task("sql", spider_dir, retriever=RetrieverConfig()) as task:  # the default section is fine
        assert task.outcome_keys == {"ex", "executed", "timeout"} and task.splits == ["dev", "train"]


def test_a_non_utf8_queries_file_is_named(arguana_like: Path) -> None:
    (arguana_like / "queries.jsonl").write_bytes(b'{"_id": "a1", "text": "caf\xe9"}\n')
    with pytest.raises(ValueError, match=r"queries.jsonl:1: not UTF-8"):
        load_task("beir", arguana_like)


def test_tasks_and_retrievers_import_no_higher_floor() -> None:
    code = (
        "import sys, deepretrieval.tasks, deepretrieval.retrievers, deepretrieval.tasks.beir, "
        "deepretrieval.tasks.evidence, deepretrieval.tasks.sql, deepretrieval.tasks.demo\n"
        "bad = [m for m in sys.modules if m.startswith(('deepretrieval.rewards', 'deepretrieval.policies', "
        "'deepretrieval.train', 'deepretrieval.evaluation', 'deepretrieval.cli', 'trl', 'torch'))]\n"
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
