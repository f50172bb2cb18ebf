"""The paper's prompts, byte for byte: ``data prompts --prompting seed:...`` prints for a PubMed PICO topic,
an NQ question, a SciFact claim and a Spider question exactly the string the seed's preprocessing built.

The expected strings are built here independently of ``data/seed_prompts.yaml``: the string pieces and
the way they are joined are those of pat-jj/DeepRetrieval @001a563 (``code/data_preprocess/pubmed.py``,
``pubmed_32.py``, ``nq_serini.py``, ``scifact.py``, ``spider.py``), spelled out with explicit escapes so
that their trailing spaces are visible.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deepretrieval.cli import main
from deepretrieval.prompting import Prompting, preset
from deepretrieval.tasks.prompts import TEMPLATES
from deepretrieval.tasks.seed_prompts import bird_schema, checkpoints, cut, seed_prompts, spider_schema

PICO = (
    "\nThe Assistant is a clinical specialist. He is conducting research and doing a medical literature "
    "review. His task is to create query terms for a search URL to find relevant literature on PubMed or "
    "ClinicalTrials.gov.\n\nThe research is defined using the PICO framework:\n"
    "P: Patient, Problem or Population - Who or what is the research about?\n"
    "I: Intervention - What is the main intervention or exposure being considered?\n"
    "C: Comparison - What is the intervention being compared to?\n"
    "O: Outcome - What are the relevant outcomes or effects being measured?\n\n"
)
PICO_FORMAT = (
    "The Assistant should show his thinking process in <think> </think> tags. The Assistant should return "
    "the final answer in JSON format in <answer> </answer> tags, \nFor example:\n<think>\n[thinking process]\n"
    '</think>\n<answer>\n{\n    "query": "...."\n} \n</answer>. \nNote: The query should use Boolean '
    "operators (AND, OR) and parentheses for grouping terms appropriately.\n\n"
)
SYSTEM_CONVERSATION = (
    "A conversation between User and Assistant. The User asks a question, and the Assistant solves it. The "
    "Assistant first thinks about the reasoning process in the mind and then provides the User with the answer."
)


def convert_dict_to_str(pico: dict) -> str:
    """pubmed.py's convert_dict_to_str."""
    return f"P: {pico['P']}\nI: {pico['I']}\nC: {pico['C']}\nO: {pico['O']}\n"


def seed_pubmed(pico_input: str) -> str:
    """pubmed.py make_prefix."""
    input_str = f"<|im_start|>system\n{SYSTEM_CONVERSATION}<|im_end|>\n<|im_start|>user\n" + PICO
    input_str += PICO_FORMAT + "User: The research is defined by the following PICO:\n"
    input_str += (
        pico_input
        + "<|im_end|>\n<|im_start|>assistant\n\nAssistant: Let me solve this step by step. \n<think>\n"
    )
    return input_str


def seed_pubmed_32(pico_input: str) -> str:
    """pubmed_32.py make_prefix_llama_32_3b."""
    input_str = "<|begin_of_text|>"
    input_str += f"System: {SYSTEM_CONVERSATION}\n\n"
    input_str += "User: " + PICO
    input_str += PICO_FORMAT + "The research is defined by the following PICO:\n"
    input_str += pico_input + "\n\n"
    input_str += "Assistant: Let me solve this step by step. \n<think>"
    return input_str


HELPFUL = "You are a helpful assistant. You first thinks about the reasoning process in the mind and then provides the user with the answer."
JSON_QUERY = '<answer>\n{\n    "query": "...."\n} \n</answer>. \n'
BOOLEAN_NOTE = "Note: The query should use Boolean operators (AND, OR) and parentheses for grouping terms appropriately.\n\n"


def seed_nq(question: str) -> str:
    """nq_serini.py make_prefix."""
    instruction = (
        "\nYou are a query rewriting expert. Your task is to create query terms for user query to find relevant "
        "literature in a Wikipedia corpus using BM25.\n"
    )
    input_str = f"<|im_start|>system\n{HELPFUL}<|im_end|>\n<|im_start|>user\n" + instruction
    input_str += (
        "\nShow your work in <think> </think> tags. Your final response must be in JSON format within <answer> "
        "</answer> tags. For example,\n<think>\n[thinking process]\n</think>\n" + JSON_QUERY + BOOLEAN_NOTE
    )
    input_str += "Here's the user query:\n"
    input_str += question + "\nAssistant: Let me rewrite the query with reasoning. \n<think>\n"
    return input_str


def seed_scifact(claim: str) -> str:
    """scifact.py make_prefix."""
    instruction = (
        "\nYou are a query generating expert. Given a scientific claim, your task is to create query terms to "
        "retrieve documents that support or refute the claim."
    )
    input_str = f"<|im_start|>system\n{HELPFUL}<|im_end|>\n<|im_start|>user\n" + instruction
    input_str += (
        "\nShow your work in <think> </think> tags. Your final response must be in JSON format within <answer> "
        "</answer> tags. For example,\n" + JSON_QUERY + BOOLEAN_NOTE + "Here's the scientific claim:\n"
    )
    input_str += claim + "\nAssistant: Let me think step by step. \n<think>\n"
    return input_str


def seed_spider(question: str, schema_prompt: str) -> str:
    """spider.py make_prefix (its system line says 'think ... provides')."""
    instruction = (
        "\nYou are a SQL query writing expert. Your task is to write the SQL query for the user query to "
        "retrieve data from a database.\n"
    )
    input_str = (
        "<|im_start|>system\nYou are a helpful assistant. You first think about the reasoning process in the "
        "mind and then provides the user with the answer.<|im_end|>\n<|im_start|>user\n" + instruction
    )
    input_str += f"Database Schema:\n{schema_prompt}\n"
    input_str += (
        "Note: Using valid SQLite and understanding External Knowledge, answer the following questions for the "
        "tables provided above.\n\nShow your work in <think> </think> tags. Your final response must be in "
        "JSON format within <answer> </answer>. For example,\n<think>\n[thinking process]\n</think>\n<answer>\n"
        '{\n    "sql": "SELECT ... (in one line)"\n} \n</answer>. \n'
    )
    input_str += "\nHere's the user query:\n"
    input_str += (
        question + "<|im_end|>\n<|im_start|>assistant\nLet me write the SQL query with reasoning. \n<think>\n"
    )
    return input_str


def seed_schema_sql(db_dir: Path) -> str:
    """spider.py generate_schema_prompt."""
    path = db_dir / "schema.sql"
    if not path.exists():
        path = db_dir / f"{db_dir.name}.sql"
    if not path.exists():
        return ""
    return "".join(line for line in path.open() if "insert" not in line.lower()).strip()


def printed(capsys, *args: str) -> list[dict]:
    assert main(["data", "prompts", *args, "--jsonl"]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPRETRIEVAL_CACHE", str(tmp_path / "cache"))


def test_a_pubmed_pico_topic_gets_the_seeds_string(shared_data: Path, capsys) -> None:
    folder = shared_data / "literature" / "pubmed-pico"
    topics = [json.loads(line) for line in (folder / "queries.jsonl").open()][:3]
    for preset_name, build in (("seed:pubmed", seed_pubmed), ("seed:pubmed_32", seed_pubmed_32)):
        rows = printed(
            capsys, "--task", "literature", "--data", str(folder), "--prompting", preset_name, "--limit", "3"
        )
        assert [row["id"] for row in rows] == [topic["_id"] for topic in topics]
        assert [row["prompt"] for row in rows] == [build(convert_dict_to_str(t["metadata"])) for t in topics]


def test_an_nq_question_gets_the_seeds_string_without_any_corpus(shared_data: Path, capsys) -> None:
    data = shared_data / "nq-open" / "NQ-open.dev.jsonl"  # questions and answers only: no passages
    questions = [json.loads(line)["question"] for line in data.open()][:2]
    rows = printed(
        capsys, "--task", "evidence", "--data", str(data), "--prompting", "seed:nq", "--limit", "2"
    )
    assert [row["prompt"] for row in rows] == [seed_nq(q) for q in questions]


def test_a_scifact_claim_gets_the_seeds_string(scifact_dir: Path, capsys) -> None:
    claims = {q["_id"]: q["text"] for q in map(json.loads, (scifact_dir / "queries.jsonl").open())}
    rows = printed(
        capsys, "--task", "beir", "--data", str(scifact_dir), "--split", "test", "--prompting", "seed:scifact"
    )
    assert len(rows) == 300  # no index was built: prompts need only the claims
    assert all(row["prompt"] == seed_scifact(claims[row["id"]]) for row in rows)


def test_a_spider_question_gets_the_seeds_string(spider_dir: Path, capsys) -> None:
    records = [r for r in json.loads((spider_dir / "dev.json").read_text()) if r["db_id"] != "wta_1"]
    rows = printed(capsys, "--task", "sql", "--data", str(spider_dir), "--prompting", "seed:spider")
    assert len(rows) == len(records) == 972
    for row, record in zip(rows, records):
        schema = seed_schema_sql(spider_dir / "database" / record["db_id"])
        assert row["prompt"] == seed_spider(record["question"], schema)
    # databases with schema.sql, with <db_id>.sql, and with neither (the seed then prompts an empty schema)
    assert spider_schema(str(spider_dir / "database/car_1/car_1.sqlite")).startswith("CREATE TABLE")
    assert spider_schema(str(spider_dir / "database/world_1/world_1.sqlite")) == ""


def test_bird_schema_is_the_create_statements_sqlite_sequence_included(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "shop" / "shop.sqlite"
    db.parent.mkdir()
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE item (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT)")
        conn.execute("CREATE TABLE sale (item_id INT, qty INT)")
        conn.execute("INSERT INTO item (name) VALUES ('pen')")
    expected = (
        "CREATE TABLE item (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT)\n\n"
        "CREATE TABLE sqlite_sequence(name,seq)\n\nCREATE TABLE sale (item_id INT, qty INT)"
    )
    assert bird_schema(str(db)) == expected
    text = TEMPLATES.get("seed_bird").messages({"question": "q?", "evidence": "k", "db_path": str(db)})[0][
        "content"
    ]
    assert f"Database Schema:\n{expected}\nExternal Knowledge: k\nNote: Using valid SQLite" in text


def test_every_entry_cuts_where_the_seeds_reward_does() -> None:
    """text + prefill is the seed's string; the cut marker is the seed's first Assistant: (else the ChatML
    assistant turn) and appears once in the text, at its end."""
    for seed in seed_prompts().values():
        assert seed.commit.startswith("001a563") and seed.source.startswith("code/data_preprocess/")
        assert seed.text.endswith(seed.cut) and cut(seed.text) == len(seed.text)
        assert seed.text.count(seed.cut) == 1 and "<think>" in seed.prefill
    assert seed_prompts()["spider"].cut == "<|im_start|>assistant"


def test_presets_and_published_checkpoints() -> None:
    prompting = Prompting(**preset("seed:nq"))
    assert (
        prompting.rendering == "raw" and prompting.format_rules == "seed" and prompting.max_new_tokens == 512
    )
    assert prompting.prefill == " Let me rewrite the query with reasoning. \n<think>\n"
    named = {model: c.prompts for model, c in checkpoints().items()}
    assert named == {
        "DeepRetrieval/DeepRetrieval-PubMed-3B": "pubmed",
        "DeepRetrieval/DeepRetrieval-PubMed-3B-Llama": "pubmed_32",
        "DeepRetrieval/DeepRetrieval-CTGov-3B": "ctgov_32",
        "DeepRetrieval/DeepRetrieval-NQ-BM25-3B": "nq",
        "DeepRetrieval/DeepRetrieval-TriviaQA-BM25-3B": "triviaqa",
        "DeepRetrieval/DeepRetrieval-SQuAD-BM25-3B-200": "squad",
        "DeepRetrieval/DeepRetrieval-SQL-7B": "spider",
        "DeepRetrieval/DeepRetrieval-SQL-3B": "spider",
    }
    with pytest.raises(ValueError, match="did you mean 'seed:scifact'"):
        preset("seed:scifakt")
    with pytest.raises(ValueError, match="needs prompting.rendering raw"):
        Prompting("seed_nq", rendering="chat", reasoning=True, answer_format="json")
