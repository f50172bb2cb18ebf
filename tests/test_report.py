"""`deepretrieval report RUN_DIR` on a real (tiny) training run: one PNG per quantity and an HTML page with
the run's config and its first/last figures, read from the run's own metrics log."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from _train_helpers import tiny_run_config, write_tiny_beir, write_tiny_model
from deepretrieval.config import parse_config
from deepretrieval.report import read_metrics, write_report

PLOTS = ["reward.png", "metric_ndcg_at_10.png", "format_ok.png", "think_len.png", "query_len.png"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from deepretrieval.train.grpo import train

    root = tmp_path_factory.mktemp("report")
    data, model = write_tiny_beir(root / "beir"), write_tiny_model(root / "model")
    return train(parse_config(tiny_run_config(data, model, root / "run", max_steps=3)))


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header.startswith(b"\x89PNG\r\n\x1a\n"), path
    return struct.unpack(">II", header[16:24])


def test_report_command_writes_every_plot_and_the_page(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    proc = subprocess.run(
        [sys.executable, "-m", "deepretrieval.cli", "report", str(run_dir), "--out", str(out)],
        capture_output=True, text=True, check=False, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    for name in PLOTS:
        assert _png_size(out / name) == (704, 396), name  # 6.4 x 3.6 inches at 110 dpi
    page = (out / "report.html").read_text()
    for name in PLOTS:
        assert f'src="{name}"' in page
    records = read_metrics(run_dir)
    assert [r["step"] for r in records] == [1, 2, 3]
    first, last = records[0], records[-1]
    assert "<th>step 1</th><th>step 3</th>" in page
    assert f"<td>{first['reward']:.4g}</td><td>{last['reward']:.4g}</td>" in page
    assert "<code>rl.num_generations</code></td><td>4</td>" in page and "manifest.seed" in page
    assert "think length is 0 by construction" in page  # the tiny run trains without reasoning


def test_a_torn_last_line_is_ignored_and_other_damage_reported(run_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "run"
    (copy / "logs").mkdir(parents=True)
    lines = (run_dir / "logs" / "metrics.jsonl").read_text().splitlines()
    (copy / "logs" / "metrics.jsonl").write_text("\n".join(lines) + '\n{"step": 4, "rew')
    assert [r["step"] for r in read_metrics(copy)] == [1, 2, 3]
    assert write_report(copy).name == "report.html"
    (copy / "logs" / "metrics.jsonl").write_text("\n".join([lines[0], "not json", *lines[1:]]) + "\n")
    with pytest.raises(ValueError, match="metrics.jsonl:2 is not a JSON line"):
        read_metrics(copy)
    (copy / "logs" / "metrics.jsonl").write_text(json.dumps({"train_runtime": 1.0}) + "\n")
    with pytest.raises(ValueError, match="no logged training steps"):
        write_report(copy)


def test_report_on_a_folder_that_is_no_run_is_one_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "deepretrieval.cli", "report", str(tmp_path)],
        capture_output=True, text=True, check=False, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )  # fmt: skip
    assert proc.returncode == 2 and "no training log at" in proc.stderr and "Traceback" not in proc.stderr


def test_the_report_links_the_evaluations_saved_in_the_run(run_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "run"
    (copy / "logs").mkdir(parents=True)
    (copy / "logs" / "metrics.jsonl").write_text((run_dir / "logs" / "metrics.jsonl").read_text())
    queries = tmp_path / "short.txt"
    queries.write_text("laptop\nbreath\n")  # the tiny collection's two test queries, cut to one word
    proc = subprocess.run(
        [sys.executable, "-m", "deepretrieval.cli", "eval", "--task", "beir", "--data", str(run_dir.parent / "beir"),
         "--policy", f"original,predictions:{queries}", "--out", str(copy / "eval" / "test")],
        capture_output=True, text=True, check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "DEEPRETRIEVAL_CACHE": str(tmp_path / "cache")},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (plot,) = (copy / "eval" / "test" / "plots").iterdir()
    page = write_report(copy).read_text()
    assert '<h2>Evaluations</h2><h3><a href="../eval/test/results.md">eval/test/results.md</a></h3>' in page
    assert f'<img src="../eval/test/plots/{plot.name}"' in page and _png_size(plot)[0] > 0
