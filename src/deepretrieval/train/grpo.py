"""``train(config)``: GRPO on TRL with our batch reward, one run directory per run.

Run directory layout::

    config.yaml        the resolved config
    manifest.json      seed, package versions, index fingerprint, model, world size
    logs/              TensorBoard events and metrics.jsonl (one line per logged step)
    checkpoints/       checkpoint-N folders (resume continues from the last one)
    final/             the final policy (+ tokenizer and deepretrieval_policy.json)
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.metadata
import importlib.util
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback, set_seed
from transformers.trainer_utils import get_last_checkpoint

from deepretrieval.config import ConfigError, RunConfig
from deepretrieval.default_model import resolve_model
from deepretrieval.evaluation import format_table
from deepretrieval.policies.card import PolicyCard
from deepretrieval.prompting import Prompting, run_prompting
from deepretrieval.rewards import BatchReward
from deepretrieval.tasks.base import Task
from deepretrieval.train.callbacks import CardOnSave, JsonlMetrics, SigintCheckpoint, StepProfiler, TimeBudget
from deepretrieval.train.data import (
    build_batch_reward,
    build_task,
    prompt_dataset,
    training_examples,
)
from deepretrieval.train.final_eval import EVAL_DIR, check_run_evaluation, evaluate_run
from deepretrieval.train.lm_head import project_completions_only
from deepretrieval.train.precision import resolve_precision
from deepretrieval.train.rewards_adapter import TRLBatchReward
from deepretrieval.train.summary import StopReason, TrainingSummary
from deepretrieval.train.watch import CompletionSamples, RunFacts, RunHeader

_VERSIONED = (
    "deepretrieval",
    "torch",
    "transformers",
    "trl",
    "peft",
    "accelerate",
    "datasets",
    "bm25s",
    "vllm",
)


def should_use_vllm(setting: bool | str) -> bool:
    """``auto``: vLLM when it is importable and CUDA is available; ``true`` insists on it."""
    available = importlib.util.find_spec("vllm") is not None and torch.cuda.is_available()
    if setting is True and not available:
        raise RuntimeError("use_vllm: true, but vLLM is not installed or no CUDA GPU is visible")
    return available if setting == "auto" else bool(setting)


def _report_to(config: RunConfig) -> list[str] | str:
    """TensorBoard is attached as our own callback (so its events land in ``<run>/logs``); W&B goes via TRL."""
    if config.logging.backend != "wandb":
        return "none"
    if importlib.util.find_spec("wandb") is None:
        raise RuntimeError(
            "logging.backend: wandb needs the wandb package: pip install 'deepretrieval[wandb]'"
        )
    if config.logging.wandb_project:
        os.environ.setdefault("WANDB_PROJECT", config.logging.wandb_project)
    return ["wandb"]


# Where each ``rl.*`` field goes. Every field is listed (a test checks the table against RLConfig and
# GRPOConfig field by field), so a new TRL default can never silently override one of ours.
RL_TO_TRL: dict[str, str] = {
    "num_generations": "num_generations",
    "temperature": "temperature",
    "top_p": "top_p",
    "max_completion_length": "max_completion_length",
    "learning_rate": "learning_rate",
    "lr_scheduler": "lr_scheduler_type",
    "warmup_steps": "warmup_steps",
    "beta": "beta",
    "max_steps": "max_steps",  # None -> -1 (no step limit)
    "epochs": "num_train_epochs",
    "per_device_train_batch_size": "per_device_train_batch_size",
    "gradient_accumulation_steps": "gradient_accumulation_steps",
    "num_iterations": "num_iterations",
    "max_grad_norm": "max_grad_norm",
    "precision": "bf16/fp16",  # auto: bf16 on a bf16-capable GPU or a CPU with AMX/AVX512-BF16, else fp32
    "gradient_checkpointing": "activation_checkpointing",  # gradient_checkpointing before transformers 5.2x
    "loss_type": "loss_type",
    "scale_rewards": "scale_rewards",
    "epsilon": "epsilon",
    "seed": "seed/data_seed",
    "trl": "(passed through)",
}
# Fields that are ours alone: they never reach GRPOConfig.
RL_HANDLED_HERE = {
    "max_prompt_length": "prompts longer than this are dropped when the dataset is built",
    "time_budget_s": "the TimeBudget callback",
    "lora": "the peft_config given to GRPOTrainer",
    "share_prompt_forward": "SharedPromptGRPOTrainer instead of TRL's GRPOTrainer",
}


def grpo_args(config: RunConfig, run_dir: Path, use_vllm: bool):
    """Map our config onto TRL's ``GRPOConfig``: every ``rl`` field explicitly (see :data:`RL_TO_TRL`),
    then ``rl.trl`` passed through after checking its keys against GRPOConfig's own fields."""
    from trl import GRPOConfig

    rl = config.rl
    known = {f.name for f in dataclasses.fields(GRPOConfig)}
    checkpointing = (
        "activation_checkpointing" if "activation_checkpointing" in known else "gradient_checkpointing"
    )
    ours: dict[str, Any] = {
        "num_generations": rl.num_generations,
        "temperature": rl.temperature,
        "top_p": rl.top_p,
        "max_completion_length": rl.max_completion_length,
        "learning_rate": rl.learning_rate,
        "lr_scheduler_type": rl.lr_scheduler,
        "warmup_steps": rl.warmup_steps,
        "beta": rl.beta,
        "max_steps": rl.max_steps or -1,
        "num_train_epochs": rl.epochs,
        "per_device_train_batch_size": rl.per_device_train_batch_size,
        "gradient_accumulation_steps": rl.gradient_accumulation_steps,
        "num_iterations": rl.num_iterations,
        "max_grad_norm": rl.max_grad_norm,
        **resolve_precision(rl.precision).trl_flags(),
        checkpointing: rl.gradient_checkpointing,
        "loss_type": rl.loss_type,
        "scale_rewards": rl.scale_rewards,
        "epsilon": rl.epsilon,
        "seed": rl.seed,
        "data_seed": rl.seed,
        # run plumbing
        "output_dir": str(run_dir / "checkpoints"),
        "logging_steps": config.logging.steps,
        "save_steps": config.checkpointing.save_steps,
        "save_total_limit": config.checkpointing.keep,
        "report_to": _report_to(config),
        "use_vllm": use_vllm,
        "vllm_mode": "colocate",
        "use_cpu": not torch.cuda.is_available(),
        "dataloader_num_workers": 0,
    }
    for key in rl.trl:
        if key in ours:
            owner = next((f for f, t in RL_TO_TRL.items() if key in t.split("/")), None)
            where = f"rl.{owner}" if owner else "deepretrieval (from the run config)"
            raise ConfigError(f"rl.trl.{key}: set by {where}; set it there instead")
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(f"rl.trl.{key}: not an argument of trl.GRPOConfig {_version('trl')}{hint}")
    try:
        return GRPOConfig(**ours, **rl.trl)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"rl.trl: TRL rejected the settings: {err}") from None


def _peft_config(config: RunConfig):
    if config.rl.lora is None:
        return None
    from peft import LoraConfig

    lora = config.rl.lora
    return LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules,
        task_type="CAUSAL_LM",
    )


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def write_manifest(run_dir: Path, config: RunConfig, task: Task, model_path: str, world_size: int) -> None:
    manifest = {
        "seed": config.rl.seed,
        "model": model_path,
        "task": config.task.name,
        "judge_fingerprint": task.fingerprint,
        "world_size": world_size,
        "precision": dataclasses.asdict(resolve_precision(config.rl.precision)),
        "python": platform.python_version(),
        "packages": {name: _version(name) for name in _VERSIONED},
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    (run_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def _tensorboard(log_dir: Path) -> tuple[TrainerCallback, Any]:
    """The TensorBoard callback writing into ``log_dir``, and its writer (the samples share it)."""
    from torch.utils.tensorboard import SummaryWriter
    from transformers.integrations import TensorBoardCallback

    writer = SummaryWriter(log_dir=str(log_dir))
    return TensorBoardCallback(tb_writer=writer), writer


def run_facts(
    config: RunConfig,
    task: Task,
    model_path: str,
    dataset: Dataset,
    batch_reward: BatchReward,
    prompting: Prompting,
    run_dir: Path,
) -> RunFacts:
    """What the run's header says (see :class:`deepretrieval.train.watch.RunHeader`)."""
    from accelerate import PartialState

    rl = config.rl
    completions = (
        rl.per_device_train_batch_size * rl.gradient_accumulation_steps * PartialState().num_processes
    )
    scheme = batch_reward.scheme
    return RunFacts(
        model=model_path,
        task=task.name,
        split=config.task.split,
        examples=len(dataset),
        prompts_per_step=completions // rl.num_generations,
        samples_per_prompt=rl.num_generations,
        time_budget_s=rl.time_budget_s,
        prompting=prompting.describe(),
        reward=f"{scheme.kind} on {scheme.metric} (format bonus {scheme.format_bonus:g}, penalty "
        f"{scheme.format_penalty:g})",
        run_dir=run_dir,
        prompt=dataset[0]["prompt"],
    )


def build_trainer(config: RunConfig, run_dir: Path, extra_callbacks: Sequence[TrainerCallback] = ()):
    """Everything up to (not including) ``trainer.train()``; returns (trainer, reward adapter, task, model path)."""
    from accelerate import PartialState
    from trl import GRPOTrainer

    from deepretrieval.train.shared_prompt import SharedPromptGRPOTrainer

    set_seed(config.rl.seed)
    # Fail fast on what needs no work: the model must be reachable and the TRL settings valid before
    # an index is built.
    model_path = resolve_model(config.model)
    use_vllm = should_use_vllm(config.use_vllm)
    args = grpo_args(config, run_dir, use_vllm)
    precision = resolve_precision(config.rl.precision)
    if PartialState().is_main_process:
        print(f"precision: {precision.used} ({precision.why})", file=sys.stderr)
    with PartialState().main_process_first():  # one process builds (and caches) the index, the others load it
        task = build_task(config)
    prompting = run_prompting(config, task)
    if config.eval.after_training:  # an evaluation that would fail only once training is over fails now
        check_run_evaluation(config, run_dir, task)
    batch_reward = build_batch_reward(config, task, prompting)
    examples = training_examples(task, config)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    dataset = prompt_dataset(
        task, examples, tokenizer, prompting, max_prompt_tokens=config.rl.max_prompt_length
    )
    reward_fn = TRLBatchReward(batch_reward, examples, prefill=prompting.prefill)
    # fp32 master weights; rl.precision bf16/fp16 runs the maths in mixed precision (autocast), so small
    # learning-rate updates are not rounded away as they would be on bf16 weights.
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    project_completions_only()  # TRL's LM head scores only the completion on CPU too (same numbers, faster)
    card = policy_card(config, prompting)
    facts = run_facts(config, task, model_path, dataset, batch_reward, prompting, run_dir)
    callbacks: list[TrainerCallback] = [RunHeader(facts), *extra_callbacks, CardOnSave(card)]
    if config.rl.time_budget_s is not None:
        callbacks.append(TimeBudget(config.rl.time_budget_s))
    writer = None
    if config.logging.backend == "tensorboard":
        board, writer = _tensorboard(run_dir / "logs")
        callbacks.append(board)
    logging = config.logging
    if logging.samples:
        callbacks.append(
            CompletionSamples(
                reward_fn,
                run_dir / "logs" / "samples.jsonl",
                logging.samples,
                logging.samples_every,
                writer=writer,
                wandb=logging.backend == "wandb",
            )
        )
    trainer_class = SharedPromptGRPOTrainer if config.rl.share_prompt_forward else GRPOTrainer
    trainer = trainer_class(
        model=model,
        reward_funcs=[reward_fn],
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=_peft_config(config),
        callbacks=callbacks,
    )
    profiler = StepProfiler(trainer, reward_fn)
    trainer.add_callback(profiler)
    trainer.add_callback(
        JsonlMetrics(run_dir / "logs" / "metrics.jsonl")
    )  # after the profiler: logs carry timings
    return trainer, reward_fn, task, model_path, card


def save_policy(trainer, config: RunConfig, card: PolicyCard, target: Path) -> None:
    """Save the final policy (merging LoRA when asked) with the prompting it was trained with."""
    if config.rl.lora is not None and config.rl.lora.merge:
        merged = trainer.accelerator.unwrap_model(trainer.model).merge_and_unload()
        if trainer.accelerator.is_main_process:
            merged.save_pretrained(target)
    else:
        trainer.save_model(str(target))
    if trainer.accelerator.is_main_process:
        trainer.processing_class.save_pretrained(target)
        card.write(target)


def policy_card(config: RunConfig, prompting: Prompting) -> PolicyCard:
    """How the trained policy must be prompted: read back by evaluation, the rewrite API and the server."""
    return PolicyCard(prompting, task=config.task.name, base_model=config.model)


def train(config: RunConfig, resume: bool = False, callbacks: Sequence[TrainerCallback] = ()) -> Path:
    """Train with GRPO and return the run directory. ``resume`` continues from the last checkpoint
    (same step count and data order); Ctrl-C saves a checkpoint before exiting."""
    run_dir = Path(config.output_dir)
    for folder in (run_dir, *run_dir.parents):  # before any work: a file in the way is one clear line
        if folder.exists() and not folder.is_dir():
            where = "is a file" if folder == run_dir else f"is inside {folder}, which is a file"
            raise ValueError(
                f"output_dir {run_dir} {where}; give a folder for the run (checkpoints, config, final policy)"
            )
    checkpoints = run_dir / "checkpoints"
    last = get_last_checkpoint(str(checkpoints)) if checkpoints.is_dir() else None
    if resume and last is None:
        raise FileNotFoundError(f"--resume: no checkpoint in {checkpoints}")
    if not resume and last is not None:
        raise FileExistsError(
            f"{run_dir} already holds checkpoints: pass --resume, or choose another output_dir"
        )
    run_dir.mkdir(parents=True, exist_ok=True)

    trainer, _, task, model_path, card = build_trainer(config, run_dir, callbacks)
    if trainer.accelerator.is_main_process:
        (run_dir / "config.yaml").write_text(config.to_yaml())
        write_manifest(run_dir, config, task, model_path, trainer.accelerator.num_processes)

    stopper = SigintCheckpoint()
    trainer.add_callback(stopper)
    stopper.install()
    started = time.perf_counter()
    try:
        trainer.train(resume_from_checkpoint=last if resume else None)
    finally:
        stopper.uninstall()
    summary = TrainingSummary(
        steps=trainer.state.global_step,
        steps_planned=trainer.state.max_steps,
        stopped_by=_stop_reason(trainer, config, stopper),
        seconds=round(time.perf_counter() - started, 1),
        time_budget_s=config.rl.time_budget_s,
    )
    main_process = trainer.accelerator.is_main_process
    if main_process:
        summary.write(run_dir)
    if stopper.interrupted:
        print(
            f"stopped at step {trainer.state.global_step}; resume with --resume ({checkpoints})",
            file=sys.stderr,
        )
        raise KeyboardInterrupt
    save_policy(trainer, config, card, run_dir / "final")
    if main_process and config.eval.after_training:
        del trainer  # the final policy is read back from final/, as any later evaluation reads it
        _free_accelerator_memory()
        final_evaluation(config, run_dir, task, card.prompting, summary)
    elif main_process:
        print(f"training: {summary.describe()}", file=sys.stderr)
        if summary.warning():
            print(f"warning: {summary.warning()}", file=sys.stderr)
    return run_dir


def _stop_reason(trainer, config: RunConfig, stopper: SigintCheckpoint) -> StopReason:
    if stopper.interrupted:
        return "interrupted"
    budget = next((c for c in trainer.callback_handler.callbacks if isinstance(c, TimeBudget)), None)
    if budget is not None and budget.reached and trainer.state.global_step < trainer.state.max_steps:
        return "time_budget"
    return "max_steps" if config.rl.max_steps else "epochs"


def _free_accelerator_memory() -> None:
    import gc

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def final_evaluation(
    config: RunConfig, run_dir: Path, task: Task, prompting: Prompting, summary: TrainingSummary
) -> None:
    """Evaluate the final policy on ``task.eval_split`` (see :mod:`deepretrieval.train.final_eval`), print
    the table and say where it was written."""
    split = config.task.eval_split or task.default_split
    print(f"evaluating the final policy on {task.name} {split}", file=sys.stderr)
    suite = evaluate_run(config, run_dir, task, prompting)
    print(format_table(suite.results, suite.comparison))
    print(f"trained: {summary.describe()}")
    if summary.warning():
        print(f"warning: {summary.warning()}")
    print(f"evaluation: {run_dir / EVAL_DIR / 'results.md'}", file=sys.stderr)
