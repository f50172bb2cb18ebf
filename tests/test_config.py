"""The run-config schema: shipped configs validate, mistakes are reported by dotted key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from deepretrieval.config import ConfigError, RunConfig, load_config, parse_config
from deepretrieval.train.quickstart import QUICKSTART_CONFIG, quickstart_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
RUN_CONFIGS = sorted(p for p in CONFIGS.glob("*.yaml"))
ACCELERATE_CONFIGS = sorted((CONFIGS / "accelerate").glob("*.yaml"))


@pytest.mark.parametrize("path", RUN_CONFIGS, ids=lambda p: p.name)
def test_every_shipped_run_config_validates(path):
    assert isinstance(load_config(path), RunConfig)


@pytest.mark.parametrize("path", ACCELERATE_CONFIGS, ids=lambda p: p.name)
def test_every_accelerate_config_is_a_launch_config(path):
    raw = yaml.safe_load(path.read_text())
    assert raw["distributed_type"] in {"MULTI_GPU", "MULTI_CPU", "DEEPSPEED", "FSDP"}
    assert raw["num_processes"] >= 2


def test_the_quickstart_recipe_has_one_source():
    # the command reads the YAML shipped in the package; configs/ only links to it
    assert (CONFIGS / "quickstart-cpu.yaml").resolve() == QUICKSTART_CONFIG.resolve()
    config = quickstart_config(Path("out dir: odd"), seed=3, overrides=["rl.max_steps=2"])
    assert config.rl.seed == 3 and config.rl.max_steps == 2 and config.output_dir == "out dir: odd/run"
    assert config.model_dump(exclude={"output_dir", "rl"}) == load_config(QUICKSTART_CONFIG).model_dump(
        exclude={"output_dir", "rl"}
    )


def test_unknown_keys_without_a_close_match_list_the_valid_ones():
    assert "rl.lora.rank: unknown key (expected one of: r, alpha, dropout" in _error(
        {"task": {"name": "demo"}, "rl": {"lora": {"rank": 8}}}
    )


def test_defaults_fill_every_section():
    config = parse_config({"task": {"name": "demo"}})
    assert config.model is None and config.use_vllm == "auto" and config.rl.lora is None
    assert config.logging.backend == "tensorboard" and config.checkpointing.save_steps > 0


def _error(raw, overrides=()) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, overrides)
    return str(caught.value)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            {"task": {"name": "demo"}, "rl": {"num_generatons": 4}},
            "rl.num_generatons: unknown key (did you mean num_generations?)",
        ),
        (
            {"task": {"name": "demo"}, "rl": {"lora": {"alpah": 8}}},
            "rl.lora.alpah: unknown key (did you mean alpha?)",
        ),
        ({"task": {"name": "demo"}, "modle": "x"}, "modle: unknown key (did you mean model?)"),
        (
            {"task": {"name": "demo"}, "rl": {"trl": ["beta"]}},
            "rl.trl: Input should be a valid dictionary",
        ),
        (
            {"task": {"name": "demo"}, "rl": {"temperature": 0}},
            "rl.temperature: Input should be greater than 0",
        ),
        ({"task": {"name": "demo"}, "logging": {"backend": "mlflow"}}, "logging.backend:"),
        ({"rl": {}}, "task: required key is missing"),
        (
            {"task": {"name": "demo"}, "rl": {"num_generations": 3, "per_device_train_batch_size": 8}},
            "must be a multiple of rl.num_generations = 3",
        ),
        (["not", "a", "mapping"], "expected a mapping of sections"),
    ],
)
def test_errors_name_the_key_and_say_what_was_expected(raw, expected):
    assert expected in _error(raw)


def test_every_problem_is_reported_at_once():
    message = _error({"task": {"name": "demo"}, "rl": {"beta": -1, "seed": "x"}, "extra": 1})
    assert "rl.beta:" in message and "rl.seed:" in message and "extra: unknown key" in message


def test_set_overrides_apply_yaml_values_by_dotted_key():
    config = parse_config(
        {"task": {"name": "demo"}}, ["rl.max_steps=7", "rl.lora={r: 4}", "model=some/model"]
    )
    assert config.rl.max_steps == 7 and config.rl.lora.r == 4 and config.model == "some/model"
    assert "--set 'rl.max_steps'" in _error({"task": {"name": "demo"}}, ["rl.max_steps"])
    assert "rl.nope: unknown key" in _error({"task": {"name": "demo"}}, ["rl.nope=1"])


def test_load_config_reports_missing_files_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_paths_expand_user_and_environment(monkeypatch):
    monkeypatch.setenv("DR_TEST_DATA", "/data/x")
    config = parse_config({"task": {"name": "beir", "data": "$DR_TEST_DATA/scifact"}, "output_dir": "~/runs"})
    assert config.task.data == "/data/x/scifact" and not config.output_dir.startswith("~")
