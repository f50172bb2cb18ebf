"""GRPO training speed on CPU: today's quickstart recipe against stock TRL (what a competent user would run) and
against the recipe as landed at 323568b, in one run.

Each arm trains the embedded SmolLM2-135M on the demo collection for ``--steps`` GRPO steps; arms alternate
(stock-trl, old, new, stock-trl, ...) ``--repeats`` times so that a shared machine's load falls on all alike. Per arm:
steps per minute and seconds per step split into generation / reward / update (``StepProfiler``; the first
step of every run is warm-up and left out), medians over all kept steps, and the spread over repeats.

    python benchmarks/train_throughput.py [--steps 6] [--repeats 2] [--without-old] [--json PATH]
        [--arm NAME OVERRIDE [OVERRIDE ...]]   (extra arms: the shipped recipe with run-config overrides,
                                                e.g. --arm full-ft rl.lora=null)

``stock-trl`` is ``trl.GRPOTrainer`` as a user would configure it for a CPU: ``GRPOConfig`` with gradient
checkpointing off and ``use_cpu=True``, TRL's defaults for everything else, with the same model, prompts,
lengths, reward and group shape as ``new`` (the prompts rendered and the reward computed by this package).
``old`` is the 323568b recipe: fp32, gradient checkpointing on (TRL's default, which the bridge then left
in place), 2 prompts x 8 completions of up to 20 tokens, the ``classic_ir`` prompt, full fine-tuning, and
TRL's fused LM head projecting every prompt position, every row run whole through the model in the update. ``new`` is ``deepretrieval/data/quickstart.yaml``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from deepretrieval.config import RunConfig, parse_config
from deepretrieval.files import write_json
from deepretrieval.train.callbacks import StepProfiler
from deepretrieval.train.grpo import build_trainer
from deepretrieval.train.lm_head import project_completions_only
from deepretrieval.train.quickstart import quickstart_config

PHASES = ("generation_s", "reward_s", "update_s")
# The quickstart recipe at 323568b (configs/quickstart-cpu.yaml then), checkpointing as TRL applied it.
OLD_RECIPE = {
    "task": {"name": "demo", "split": "train", "eval_split": "test"},
    "retriever": {"kind": "bm25"},
    "reward": {
        "scheme": "metric",
        "overrides": {"metric": "ndcg@10", "format_bonus": 0.1, "format_penalty": -1.0},
    },
    "model": None,
    "prompting": {"reasoning": False, "prefill": "<answer>", "template": "classic_ir"},
    "rl": {
        "num_generations": 8,
        "temperature": 1.0,
        "max_prompt_length": 256,
        "max_completion_length": 20,
        "learning_rate": 2.0e-5,
        "beta": 0.0,
        "per_device_train_batch_size": 16,
        "gradient_accumulation_steps": 1,
        "seed": 0,
        "precision": "fp32",
        "gradient_checkpointing": True,
        "share_prompt_forward": False,
    },
}


def arm_config(name: str, overrides: list[str], steps: int, out: Path) -> RunConfig:
    """The run config of one arm, set to run ``steps`` steps without checkpoints, logs or time budget."""
    plumbing = [
        f"rl.max_steps={steps}",
        "rl.time_budget_s=null",
        "logging.backend=none",
        "checkpointing.save_steps=1000000",
        f"output_dir={json.dumps(str(out))}",
    ]
    if name == "old":
        return parse_config(json.loads(json.dumps(OLD_RECIPE)), plumbing, source="old recipe")
    return quickstart_config(out, overrides=[*overrides, *plumbing])  # stock-trl takes the recipe's shape


def stock_trl_trainer(config: RunConfig):
    """``trl.GRPOTrainer`` with TRL's defaults but for what a user sets for a CPU run (gradient checkpointing
    off, ``use_cpu``) and for the recipe's shape (group size, batch, lengths, learning rate, temperature, KL,
    steps), on the recipe's prompts and reward."""
    import dataclasses

    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from deepretrieval.default_model import resolve_model
    from deepretrieval.prompting import run_prompting
    from deepretrieval.train.data import build_batch_reward, build_task, prompt_dataset, training_examples
    from deepretrieval.train.rewards_adapter import TRLBatchReward

    rl = config.rl
    model_path = resolve_model(config.model)
    task = build_task(config)
    prompting = run_prompting(config, task)
    examples = training_examples(task, config)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    dataset = prompt_dataset(task, examples, tokenizer, prompting, max_prompt_tokens=rl.max_prompt_length)
    reward = TRLBatchReward(build_batch_reward(config, task, prompting), examples, prefill=prompting.prefill)
    known = {f.name for f in dataclasses.fields(GRPOConfig)}
    checkpointing = (
        "activation_checkpointing" if "activation_checkpointing" in known else "gradient_checkpointing"
    )
    args = GRPOConfig(
        output_dir=config.output_dir,
        use_cpu=True,
        **{checkpointing: False},
        num_generations=rl.num_generations,
        per_device_train_batch_size=rl.per_device_train_batch_size,
        max_completion_length=rl.max_completion_length,
        temperature=rl.temperature,
        learning_rate=rl.learning_rate,
        beta=rl.beta,
        max_steps=rl.max_steps,
        seed=rl.seed,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
    )
    model = AutoModelForCausalLM.from_pretrained(model_path)
    trainer = GRPOTrainer(
        model=model, reward_funcs=[reward], args=args, train_dataset=dataset, processing_class=tokenizer
    )
    trainer.add_callback(StepProfiler(trainer, reward))
    return trainer


def run_arm(config: RunConfig, name: str) -> list[dict[str, float]]:
    """Train ``config`` for its steps (``stock-trl``: with stock TRL); the per-step time split of every step
    after the first."""
    stock = name == "stock-trl"
    trainer = stock_trl_trainer(config) if stock else build_trainer(config, Path(config.output_dir))[0]
    project_completions_only(name not in ("old", "stock-trl"))  # the old recipe and stock TRL: TRL's own head
    try:
        trainer.train()
    finally:
        project_completions_only(True)
    profiler = next(cb for cb in trainer.callback_handler.callbacks if isinstance(cb, StepProfiler))
    return profiler.steps[1:]


def summarise(runs: list[list[dict[str, float]]]) -> dict:
    """Medians over all kept steps, steps per minute, and the spread of per-run medians."""
    steps = [step for run in runs for step in run]
    median = {key: statistics.median(s[key] for s in steps) for key in ("step_s", *PHASES)}
    per_run = [statistics.median(s["step_s"] for s in run) for run in runs if run]
    return {
        "steps_per_minute": 60.0 / median["step_s"],
        "seconds_per_step": median,
        "per_run_step_s": per_run,
        "steps_measured": len(steps),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=6, help="GRPO steps per run (the first is warm-up)")
    parser.add_argument("--repeats", type=int, default=2, help="runs per arm, alternating between arms")
    parser.add_argument("--arm", nargs="+", action="append", default=[], metavar="NAME OVERRIDE")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument(
        "--without-old",
        action="store_true",
        help="leave the 323568b arm out (stock TRL against today's only)",
    )
    parser.add_argument("--json", default=None, help="write the figures here")
    args = parser.parse_args()
    if args.steps < 2:
        parser.error("--steps must be at least 2: the first step of every run is warm-up")
    if args.threads:
        torch.set_num_threads(args.threads)

    arms: dict[str, list[str]] = {"stock-trl": [], "old": [], "new": []}
    if args.without_old:
        del arms["old"]
    for name, *overrides in args.arm:
        if name in arms:
            parser.error(f"--arm {name}: the name is taken; choose another")
        arms[name] = overrides
    runs: dict[str, list[list[dict[str, float]]]] = {name: [] for name in arms}
    pair_ratios: list[float] = []
    stock_ratios: list[float] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="train-throughput-") as scratch:
        for repeat in range(args.repeats):
            for name, overrides in arms.items():
                out = Path(scratch) / f"{name}-{repeat}"
                print(f"[repeat {repeat + 1}/{args.repeats}] {name}: {args.steps} steps", file=sys.stderr)
                runs[name].append(run_arm(arm_config(name, overrides, args.steps, out), name))
            step_s = {name: statistics.median(s["step_s"] for s in runs[name][-1]) for name in arms}
            stock_ratios.append(step_s["stock-trl"] / step_s["new"])
            if "old" in arms:
                pair_ratios.append(step_s["old"] / step_s["new"])

    figures = {name: summarise(arm_runs) for name, arm_runs in runs.items()}
    speedup = (
        figures["new"]["steps_per_minute"] / figures["old"]["steps_per_minute"] if "old" in arms else None
    )
    vs_stock = figures["new"]["steps_per_minute"] / figures["stock-trl"]["steps_per_minute"]
    print(
        f"\nGRPO steps on the demo collection, SmolLM2-135M, CPU, {torch.get_num_threads()} torch threads; "
        f"{args.steps - 1} timed steps x {args.repeats} runs per arm (alternating)"
    )
    print(
        f"{'arm':<14} {'steps/min':>9} {'s/step':>7} {'generation':>10} {'reward':>7} {'update':>7}  vs stock-trl"
    )
    for name, f in figures.items():
        split = f["seconds_per_step"]
        ratio = f["steps_per_minute"] / figures["stock-trl"]["steps_per_minute"]
        print(
            f"{name:<14} {f['steps_per_minute']:9.2f} {split['step_s']:7.2f} {split['generation_s']:10.2f} "
            f"{split['reward_s']:7.3f} {split['update_s']:7.2f}  {ratio:5.2f}x"
        )
    versus_old = (
        f"new/old: {speedup:.2f}x (per repeat: {', '.join(f'{r:.2f}' for r in pair_ratios)}); "
        if speedup
        else ""
    )
    print(
        f"\nspeedup new/stock-trl: {vs_stock:.2f}x (per repeat: {', '.join(f'{r:.2f}' for r in stock_ratios)}); "
        f"{versus_old}{time.perf_counter() - started:.0f} s in all"
    )
    if args.json:
        payload = {
            "speedup_vs_stock_trl": vs_stock,
            "speedup_vs_stock_trl_per_repeat": stock_ratios,
            "speedup": speedup,
            "speedup_per_repeat": pair_ratios,
            "arms": figures,
            "overrides": arms,
            "steps": args.steps,
            "repeats": args.repeats,
            "threads": torch.get_num_threads(),
        }
        write_json(args.json, payload, indent=2)


if __name__ == "__main__":
    main()
