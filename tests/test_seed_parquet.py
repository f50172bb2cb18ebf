"""The seed's parquet files as data (``--task parquet``): files written here as the seed's preprocessing
wrote them (SciFact pairs, NQ, PubMed, Spider), read back with their prompts as given, evaluated like a
BEIR folder, trained on for a few GRPO steps, and round-tripped through ``data export-verl``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from _seed_helpers import verl_row, write_seed_model, write_seed_parquet
from _train_helpers import tiny_run_config, write_tiny_beir
from deepretrieval.cli import main
from deepretrieval.config import parse_config
from deepretrieval.tasks import load_task
from deepretrieval.tasks.parquet_rows import ParquetDataError
from test_seed_prompts import (
    convert_dict_to_str,
    seed_nq,
    seed_pubmed,
    seed_schema_sql,
    seed_scifact,
    seed_spider,
)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPRETRIEVAL_CACHE", str(tmp_path / "cache"))


def scifact_pairs(folder: Path, out: Path) -> Path:
    """scifact.py: one row per (claim, document) pair of qrels/{train,test}.tsv, data_source scifact_<split>."""
    queries = {q["_id"]: q["text"] for q in map(json.loads, (folder / "queries.jsonl").open())}
    for split in ("train", "test"):
        lines = [line.strip().split("\t") for line in (folder / "qrels" / f"{split}.tsv").open()][1:]
        records = [{"qid": q, "query": queries[q], "target": d, "label": int(g)} for q, d, g in lines]

        def row(record: dict, index: int, split: str = split) -> dict:
            prompt = seed_scifact(record["query"])
            return verl_row(f"scifact_{split}", prompt, record["target"], split, index, "literature_mining")

        write_seed_parquet(records, row, out / f"{split}.parquet", shuffle=split == "train")
    return out


@pytest.fixture(scope="module")
def scifact_seed(scifact_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return scifact_pairs(scifact_dir, tmp_path_factory.mktemp("seed-scifact"))


def _results(tmp_path: Path, *args: str) -> dict:
    out = tmp_path / "out"
    assert main(["eval", *args, "--resamples", "10", "--out", str(out)]) == 0
    return {p["policy"]: p for p in json.loads((out / "results.json").read_text())["policies"]}


def test_scifact_pairs_read_as_the_seed_wrote_them(
    scifact_seed: Path, scifact_dir: Path, tmp_path: Path
) -> None:
    corpus = f"corpus={scifact_dir}"
    task = load_task("parquet", scifact_seed, judge=False, corpus=str(scifact_dir))
    test = task.examples("test")
    claims = {q["_id"]: q["text"] for q in map(json.loads, (scifact_dir / "queries.jsonl").open())}
    assert len(test) == 339 and test[0].id == "scifact-test-0"  # one example per (claim, document) pair
    assert all(e.original in claims.values() and len(e.truth) == 1 for e in test)  # claims recovered
    assert task.default_template == "seed_scifact_as_given"
    # the pairwise mean is the seed's number; grouped, the same file gives BEIR's standard NDCG@10 exactly
    pairs = _results(
        tmp_path / "pairs",
        "--task",
        "parquet",
        "--data",
        str(scifact_seed),
        "--split",
        "test",
        "--option",
        corpus,
        "--policy",
        "original",
    )["original"]
    grouped = _results(
        tmp_path / "grouped",
        "--task",
        "parquet",
        "--data",
        str(scifact_seed),
        "--split",
        "test",
        "--option",
        corpus,
        "--option",
        "group=true",
        "--policy",
        "original",
    )["original"]
    beir = _results(tmp_path / "beir", "--task", "beir", "--data", str(scifact_dir), "--policy", "original")
    assert pairs["queries"] == 339 and grouped["queries"] == 300
    assert grouped["metrics"]["ndcg@10"] == pytest.approx(beir["original"]["metrics"]["ndcg@10"], abs=1e-12)
    assert pairs["metrics"]["seed_pair_ndcg@10"] == pytest.approx(0.6288, abs=1e-4)
    assert grouped["metrics"]["ndcg@10"] == pytest.approx(0.6762, abs=1e-4)


def test_the_stored_prompt_is_what_a_policy_receives(scifact_seed: Path, capsys) -> None:
    import pyarrow.parquet as pq

    stored = [row["prompt"][0]["content"] for row in pq.read_table(scifact_seed / "test.parquet").to_pylist()]
    assert (
        main(
            [
                "data",
                "prompts",
                "--task",
                "parquet",
                "--data",
                str(scifact_seed),
                "--split",
                "test",
                "--jsonl",
            ]
        )
        == 0
    )
    printed = [json.loads(line)["prompt"] for line in capsys.readouterr().out.splitlines()]
    assert printed == stored


def test_nq_pubmed_and_spider_files(shared_data: Path, spider_dir: Path, tmp_path: Path, capsys) -> None:
    questions = [json.loads(line) for line in (shared_data / "nq-open" / "NQ-open.dev.jsonl").open()][:5]
    nq = write_seed_parquet(
        [{"input": q["question"], "label": q["answer"]} for q in questions],
        lambda r, i: verl_row("nq_serini", seed_nq(r["input"]), r["label"], "test", i, "literature_mining"),
        tmp_path / "nq" / "test.parquet",
    )
    task = load_task("parquet", nq, judge=False)
    assert [(e.original, e.truth) for e in task.examples("test")] == [
        (q["question"], q["answer"]) for q in questions
    ]

    topics = [json.loads(line) for line in (shared_data / "literature/pubmed-pico/queries.jsonl").open()][:4]
    records = [
        {
            "input": convert_dict_to_str(t["metadata"]),
            "label": [str(20000 + k)],
            "pub_date": t["metadata"]["pub_date"],
        }
        for k, t in enumerate(topics)
    ]
    pubmed = write_seed_parquet(
        records,
        lambda r, i: verl_row("pubmed", seed_pubmed(r["input"]), r["label"], "test", i, "literature_mining"),
        tmp_path / "pubmed" / "test_full.parquet",
    )
    task = load_task("parquet", pubmed.parent, judge=False)
    examples = task.examples("test_full")
    assert [e.id for e in examples] == [t["_id"] for t in topics]  # pubmed-test-<index>, as our pubmed-pico
    assert [e.original for e in examples] == [t["text"] for t in topics]
    assert [e.meta["pub_date"] for e in examples] == [t["metadata"]["pub_date"] for t in topics]
    assert task.retriever.kind == "pubmed" and task.date_limits  # the seed's engine, our date limits

    dev = [
        r
        for r in json.loads((spider_dir / "dev.json").read_text())
        if r["db_id"] in ("concert_singer", "car_1")
    ][:12]
    seed_root = "data/raw_data/spider/spider_data/database"
    spider = write_seed_parquet(
        [{"question": r["question"], "db_id": r["db_id"], "sql": r["query"]} for r in dev],
        lambda r, i: verl_row(
            "spider_val",
            seed_spider(r["question"], seed_schema_sql(spider_dir / "database" / r["db_id"])),
            r["sql"],
            "val",
            i,
            "sql_generation",
            db_path=f"{seed_root}/{r['db_id']}/{r['db_id']}.sqlite",
        ),
        tmp_path / "spider" / "val.parquet",
    )
    databases = f"databases={spider_dir / 'database'}"
    assert (
        main(["eval", "--task", "parquet", "--data", str(spider), "--option", databases, "--policy", "gold"])
        == 0
    )
    assert "1.0000" in capsys.readouterr().out  # gold SQL through the sandbox on the seed's rows
    task = load_task("parquet", spider, judge=False, databases=str(spider_dir / "database"))
    first = task.examples("val")[0]
    assert first.fields["question"] == dev[0]["question"] and first.truth == dev[0]["query"]


def test_files_that_are_not_the_seeds_say_so(tmp_path: Path) -> None:
    bad = write_seed_parquet(
        [{"q": "x"}],
        lambda r, i: verl_row("unknown_set", "p", ["a"], "test", i, "x"),
        tmp_path / "bad.parquet",
    )
    with pytest.raises(ParquetDataError, match="none of the seed's datasets"):
        load_task("parquet", bad, judge=False)
    wrong = write_seed_parquet(
        [{"q": "x"}],
        lambda r, i: verl_row("scifact_test", "no prefill", "d1", "test", i, "x"),
        tmp_path / "w.parquet",
    )
    with pytest.raises(ParquetDataError, match="does not end with the seed's prefill"):
        load_task("parquet", wrong, judge=False)
    with pytest.raises(ParquetDataError, match="--option corpus=PATH"):
        load_task("parquet", scifact_pairs_one(tmp_path))


def scifact_pairs_one(tmp_path: Path) -> Path:
    return write_seed_parquet(
        [{"q": "fever"}],
        lambda r, i: verl_row("scifact_test", seed_scifact(r["q"]), "d1", "test", i, "literature_mining"),
        tmp_path / "one.parquet",
    )


def test_export_and_read_back(scifact_dir: Path, tmp_path: Path) -> None:
    """``export-verl --recipe seed`` writes the seed's layout (one row per SciFact pair, the seed's exact
    prompt) and ``--task parquet`` reads it back; our own layout reads back to the task's examples."""
    seed_file = tmp_path / "seed" / "test.parquet"
    args = [
        "data",
        "export-verl",
        "--task",
        "beir",
        "--data",
        str(scifact_dir),
        "--split",
        "test",
        "--limit",
        "40",
    ]
    assert main([*args, "--recipe", "seed", "--prompting", "seed:scifact", "--out", str(seed_file)]) == 0
    source = load_task("beir", scifact_dir, judge=False).examples("test")[:40]
    back = load_task("parquet", seed_file, judge=False).examples("test")
    pairs = [(e.id, doc) for e in source for doc in e.truth]
    assert [(e.id, dict(e.truth)) for e in back] == [(f"{q}-{d}", {d: 1}) for q, d in pairs]
    originals = {e.id: e.original for e in source}
    assert all(e.original == originals[e.id.rsplit("-", 1)[0]] for e in back)
    assert all(
        e.fields["prompt"] + " Let me think step by step. \n<think>\n" == seed_scifact(e.original)
        for e in back
    )

    ours = tmp_path / "ours.parquet"
    assert main([*args, "--reasoning", "--out", str(ours)]) == 0
    again = load_task("parquet", ours, judge=False).examples("test")
    assert [(e.id, e.truth, e.original, dict(e.meta)) for e in again] == [
        (e.id, e.truth, e.original, dict(e.meta)) for e in source
    ]


@pytest.mark.slow
def test_a_few_grpo_steps_on_a_seed_layout_parquet(tmp_path: Path) -> None:
    """Training reads the seed's file like a BEIR folder: its stored prompts, its pair rows, the seed's
    format rules and reward (reward.scheme seed: SciFact's pairwise NDCG@50)."""
    from deepretrieval.train.grpo import train

    beir = write_tiny_beir(tmp_path / "beir")
    data = tmp_path / "seed"
    for split in ("train", "test"):
        args = ["data", "export-verl", "--task", "beir", "--data", str(beir), "--split", split]
        assert (
            main(
                [
                    *args,
                    "--recipe",
                    "seed",
                    "--prompting",
                    "seed:scifact",
                    "--out",
                    str(data / f"{split}.parquet"),
                ]
            )
            == 0
        )
    model = write_seed_model(tmp_path / "model")
    raw = tiny_run_config(beir, model, tmp_path / "run", max_steps=2, max_completion_length=16)
    raw["task"] = {"name": "parquet", "data": str(data), "options": {"corpus": str(beir)}}
    raw["prompting"] = {}  # the file's own: its stored prompts with the seed's prefill and format rules
    raw["reward"] = {"scheme": "seed"}
    raw["rl"]["trl"] = {"repetition_penalty": 100.0}
    run_dir = train(parse_config(raw))
    records = [json.loads(line) for line in (run_dir / "logs" / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if "loss" in r]
    assert [r["step"] for r in steps] == [1, 2]
    assert all("task/seed_pair_ndcg@10" in r and "task/format_ok" in r for r in steps)
    card = json.loads((run_dir / "final" / "deepretrieval_policy.json").read_text())
    assert (
        card["prompting"]["template"] == "seed_scifact_as_given"
        and card["prompting"]["format_rules"] == "seed"
    )
