"""A tiny random model evaluated through the seed's prompting end to end (generation from the seed's raw
string, the seed's format check, the JSON answer, the metric), and a published checkpoint's id choosing that
prompting by itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from _seed_helpers import register_in_hf_cache, write_seed_model
from _train_helpers import write_tiny_beir
from standin import StandIn
from test_seed_prompts import seed_pubmed, seed_scifact

PUBMED_3B = "DeepRetrieval/DeepRetrieval-PubMed-3B"


@pytest.fixture(scope="module")
def seed_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_seed_model(tmp_path_factory.mktemp("seed-model") / "model")


def _eval(args: list[str], tmp_path: Path, **env: str) -> dict:
    environment = {k: v for k, v in os.environ.items() if k not in ("NCBI_API_KEY", "DEEPRETRIEVAL_OFFLINE")}
    environment.update(DEEPRETRIEVAL_CACHE=str(tmp_path / "cache"), **env)
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "deepretrieval.cli", "eval", *args, "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
        env=environment,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    for policy in results["policies"]:
        lines = (out / policy["per_query"]).read_text().splitlines()
        policy["rows"] = [json.loads(line) for line in lines]
    return results


def test_a_tiny_model_through_the_seed_prompting(seed_model: Path, tmp_path: Path) -> None:
    beir = write_tiny_beir(tmp_path / "beir")
    args = ["--task", "beir", "--data", str(beir), "--split", "train", "--prompting", "seed:scifact"]
    results = _eval([*args, "--policy", f"original,{seed_model}"], tmp_path)
    model = results["policies"][1]
    assert model["prompting"]["template"] == "seed_scifact" and model["prompting"]["format_rules"] == "seed"
    # every completion passed the seed's format check and its JSON answer was searched: "pyrexia" finds
    # the fever claim's document (NDCG@10 1) and nothing relevant for the three others
    assert model["format_ok"] == 1.0 and model["metrics"]["ndcg@10"] == pytest.approx(0.25)
    for row in model["rows"]:
        assert row["prompt"] == seed_scifact(row["original"])  # the exact input, in the per-query record
        assert (
            row["completion"]
            == ' Let me think step by step. \n<think>\n</think><answer>{"query": "pyrexia"}</answer>'
        )
        assert row["answer"] == "pyrexia" and row["format"] == "ok"
    assert "prompt" not in results["policies"][0]["rows"][0]  # a baseline has no input


@pytest.mark.slow
def test_a_published_checkpoint_id_chooses_the_seed_prompting(
    seed_model: Path, shared_data: Path, tmp_path: Path
) -> None:
    """``--policy DeepRetrieval/DeepRetrieval-PubMed-3B`` with no prompting flag: the id's built-in card
    prompts it as the seed's pubmed.py did (the id resolves to a local folder in the Hugging Face cache,
    offline: nothing is downloaded)."""
    hub = tmp_path / "hub"
    register_in_hf_cache(seed_model, hub, PUBMED_3B)
    folder = shared_data / "literature"
    data = folder / "pubmed-pico"
    topics = [json.loads(line) for line in (data / "queries.jsonl").open()][:3]
    with StandIn("pubmed", folder / "clef-tar-2017") as server:
        args = ["--task", "literature", "--data", str(data), "--split", "test", "--limit", "3"]
        args += ["--engine", "pubmed", "--engine-url", server.engine_url, "--policy", PUBMED_3B]
        results = _eval(args, tmp_path, HF_HUB_CACHE=str(hub), HF_HUB_OFFLINE="1")
        searched = [r["params"].get("term") for r in server.requests if r["path"].endswith("esearch.fcgi")]
    model = results["policies"][0]
    assert model["prompting"]["template"] == "seed_pubmed" and model["prompting"]["max_new_tokens"] == 512
    assert model["format_ok"] == 1.0 and model["failures"] == 0
    for row, topic in zip(model["rows"], topics):
        pico = "".join(f"{key}: {topic['metadata'][key]}\n" for key in "PICO")
        assert row["prompt"] == seed_pubmed(pico) and row["answer"] == "pyrexia"
    assert searched == ["pyrexia"] * 3  # the JSON answer went to PubMed (up to each review's own date)
