"""``--data`` beyond a local folder: ``irds:ID`` through ir_datasets and ``hf:OWNER/NAME`` (or plain
``OWNER/NAME``) through huggingface_hub, both tested offline on files laid out as those libraries cache them
(``IR_DATASETS_HOME`` with the downloaded archive; the hub cache of a dataset repo with ``HF_HUB_OFFLINE=1``),
evaluating to exactly the figures of the same collection as a local BEIR folder."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from deepretrieval.evaluation import evaluate
from deepretrieval.policies.baselines import OriginalQuery


@pytest.fixture(scope="module")
def local_original(scifact_task) -> dict:
    """The original claims on the local SciFact folder: per-query NDCG@10 and recall@100 of each split."""
    return {
        split: evaluate(scifact_task, OriginalQuery(), split, progress=False) for split in ("train", "test")
    }


def _irds_home(home: Path, scifact: Path) -> Path:
    """``IR_DATASETS_HOME`` as ir_datasets leaves it after downloading beir/scifact: the archive BEIR publishes
    (``scifact.zip``: scifact/corpus.jsonl, queries.jsonl, qrels/*.tsv) at ``beir/scifact/source.zip``."""
    archive = home / "beir" / "scifact" / "source.zip"
    archive.parent.mkdir(parents=True)
    with zipfile.ZipFile(archive, "w") as out:
        for name in ("corpus.jsonl", "queries.jsonl", "qrels/train.tsv", "qrels/test.tsv"):
            out.write(scifact / name, f"scifact/{name}")
    return home


def _results(out: Path) -> dict:
    return {p["policy"]: p for p in json.loads((out / "results.json").read_text())["policies"]}


def _env(tmp_path: Path, **extra: str) -> dict:
    """The environment of a user's shell: the library's own cache settings are read when it is imported."""
    return {
        **os.environ,
        "DEEPRETRIEVAL_CACHE": str(tmp_path / "cache"),
        "PYTHONPATH": os.pathsep.join(sys.path),
        **extra,
    }


def _run(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "deepretrieval.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def test_an_ir_datasets_id_evaluates_as_the_local_folder(
    scifact_dir: Path, local_original: dict, tmp_path: Path
) -> None:
    pytest.importorskip("ir_datasets", reason="pip install 'deepretrieval[irds]'")
    env = _env(tmp_path, IR_DATASETS_HOME=str(_irds_home(tmp_path / "irds", scifact_dir)))
    out = tmp_path / "out"
    proc = _run(["eval", "--task", "beir", "--data", "irds:beir/scifact/test", "--out", str(out)], env)
    assert proc.returncode == 0, proc.stderr
    row = _results(out)["original"]
    assert row["queries"] == 300
    assert row["metrics"] == pytest.approx(local_original["test"].metrics, abs=1e-12)  # NDCG@10 0.6762
    per_query = [json.loads(line) for line in (out / row["per_query"]).read_text().splitlines()]
    local = local_original["test"].per_query
    assert {r["id"]: r["metrics"]["ndcg@10"] for r in per_query} == pytest.approx(
        {qid: values["ndcg@10"] for qid, values in local.items()}
    )
    # an id without qrels has a split per sub-id with them
    out = tmp_path / "train"
    proc = _run(
        ["eval", "--task", "beir", "--data", "irds:beir/scifact", "--split", "train", "--out", str(out)], env
    )
    assert proc.returncode == 0, proc.stderr
    assert _results(out)["original"]["metrics"] == pytest.approx(local_original["train"].metrics, abs=1e-12)
    proc = _run(["eval", "--task", "beir", "--data", "irds:beir/scifat/test"], env)
    assert proc.returncode == 2
    assert proc.stderr.startswith(
        "error: irds:beir/scifat/test: not an ir_datasets id (did you mean beir/scifact/test?)"
    )


def _hub_repo(cache: Path, repo_id: str, files: dict[str, bytes]) -> None:
    """A dataset repository as huggingface_hub caches it: blobs by hash, a snapshot of links, refs/main."""
    repo = cache / f"datasets--{repo_id.replace('/', '--')}"
    commit = hashlib.sha1(repo_id.encode()).hexdigest()
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    for name, content in files.items():
        blob = repo / "blobs" / hashlib.sha256(content).hexdigest()
        blob.parent.mkdir(exist_ok=True)
        blob.write_bytes(content)
        link = repo / "snapshots" / commit / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))


def test_a_hugging_face_dataset_evaluates_as_the_local_folder(
    scifact_dir: Path, local_original: dict, tmp_path: Path
) -> None:
    hub = tmp_path / "hub"
    _hub_repo(hub, "BeIR/scifact", {
        name + ".gz": gzip.compress((scifact_dir / name).read_bytes()) for name in ("corpus.jsonl", "queries.jsonl")
    })  # fmt: skip
    _hub_repo(hub, "BeIR/scifact-qrels", {f"{s}.tsv": (scifact_dir / "qrels" / f"{s}.tsv").read_bytes() for s in ("train", "test")})  # fmt: skip
    env = _env(tmp_path, HF_HUB_CACHE=str(hub), HF_HUB_OFFLINE="1")
    for data in ("hf:BeIR/scifact", "BeIR/scifact"):  # the README's name works as it is
        out = tmp_path / data.replace(":", "_").replace("/", "_")
        proc = _run(["eval", "--task", "beir", "--data", data, "--split", "test", "--out", str(out)], env)
        assert proc.returncode == 0, proc.stderr
        assert _results(out)["original"]["metrics"] == pytest.approx(
            local_original["test"].metrics, abs=1e-12
        )
    proc = _run(["eval", "--task", "beir", "--data", "BeIR/nfcorpus"], env)
    assert proc.returncode == 2
    assert proc.stderr.startswith(
        "error: --data BeIR/nfcorpus: no such file or folder here, nor a hub dataset"
    )
    assert "HF_HUB_OFFLINE" in proc.stderr
