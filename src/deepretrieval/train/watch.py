"""What a user sees of a training run while it runs: a header (model, examples, steps, output folder, one
prompt as the model sees it) and, every few steps, a few sampled completions with their rewards.

Samples go to the console, to ``logs/samples.jsonl``, to TensorBoard (a text summary) and to W&B (a table)
when those are the logger. Hand-written rather than TRL's ``log_completions`` (TRL 1.16): that prints every
completion of every logged step as a rich table of whole rendered prompts, writes parquet files and logs to
W&B/trackio only, with no TensorBoard and no period of its own.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm
from transformers import TrainerCallback

from deepretrieval.train.rewards_adapter import Sample

COMPLETION_CHARS = 160


def spread(samples: Sequence[Sample], count: int) -> list[Sample]:
    """``count`` samples evenly spaced from the best reward to the worst (unscored ones last), so a few
    lines show the range GRPO learns from."""
    ranked = sorted(samples, key=lambda s: float("-inf") if s.reward is None else s.reward, reverse=True)
    if count >= len(ranked):
        return ranked
    if count == 1:
        return ranked[:1]
    step = (len(ranked) - 1) / (count - 1)
    return [ranked[round(i * step)] for i in range(count)]


def _one_line(text: str, limit: int = COMPLETION_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def console_lines(step: int, shown: Sequence[Sample], total: int) -> list[str]:
    lines = [f"step {step}: {len(shown)} of {total} sampled completions (reward  request -> completion)"]
    for sample in shown:
        reward = "  n/a  " if sample.reward is None else f"{sample.reward:+7.3f}"
        verdict = "" if sample.format == "ok" else f"  [{sample.format}]"
        lines.append(
            f"  {reward}  {_one_line(sample.request, 60)} -> {_one_line(sample.completion)}{verdict}"
        )
    return lines


def markdown_table(shown: Sequence[Sample]) -> str:
    """The samples as a Markdown table (TensorBoard renders text summaries as Markdown)."""

    def cell(text: str) -> str:
        return _one_line(text).replace("|", "\\|")

    rows = ["| reward | request | completion | format |", "|---:|---|---|---|"]
    for s in shown:
        reward = "n/a" if s.reward is None else f"{s.reward:+.3f}"
        rows.append(f"| {reward} | {cell(s.request)} | {cell(s.completion)} | {s.format} |")
    return "\n".join(rows)


class CompletionSamples(TrainerCallback):
    """Every ``every`` steps (and at step 1), ``count`` of the latest rollout batch's completions with their
    rewards: printed, appended to ``path`` (JSONL), and sent to TensorBoard (``writer``) or W&B (``wandb``).
    ``source`` is the reward adapter: its ``last_samples`` are the batch it scored last."""

    def __init__(
        self, source: Any, path: Path, count: int, every: int, writer: Any = None, wandb: bool = False
    ) -> None:
        self.source, self.path, self.count, self.every = source, path, count, every
        self.writer, self.wandb = writer, wandb

    def on_step_end(self, args, state, control, **kwargs):
        step = state.global_step
        samples = self.source.last_samples
        if not state.is_world_process_zero or not samples or not (step == 1 or step % self.every == 0):
            return control
        shown = spread(samples, self.count)
        tqdm.write("\n".join(console_lines(step, shown, len(samples))), file=sys.stderr)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as out:
            for sample in shown:
                out.write(json.dumps({"step": step, **asdict(sample)}, ensure_ascii=False) + "\n")
        if self.writer is not None:
            self.writer.add_text("samples", markdown_table(shown), step)
            self.writer.flush()
        if self.wandb:
            import wandb

            if wandb.run is not None:
                columns = ["step", "reward", "request", "completion", "format"]
                data = [[step, s.reward, s.request, s.completion, s.format] for s in shown]
                wandb.log({"samples": wandb.Table(columns=columns, data=data)})
        return control


@dataclass(frozen=True)
class RunFacts:
    """What the header says besides the step count (known only once the trainer has planned it)."""

    model: str
    task: str
    split: str
    examples: int
    prompts_per_step: int
    samples_per_prompt: int
    time_budget_s: float | None
    prompting: str
    reward: str
    run_dir: Path
    prompt: str


def header_lines(facts: RunFacts, steps_planned: int, resumed_at: int = 0) -> list[str]:
    budget = f", at most {facts.time_budget_s:.0f} s" if facts.time_budget_s else ""
    start = f", resuming at step {resumed_at}" if resumed_at else ""
    shape = f"{facts.prompts_per_step} prompts x {facts.samples_per_prompt} samples a step{budget}{start}"
    files = "logs/metrics.jsonl, logs/samples.jsonl, TensorBoard logs/, checkpoints/, final/, eval/"
    lines = [
        f"GRPO training of {facts.model} on {facts.task} ({facts.split}: {facts.examples:,} examples)",
        f"  steps planned: {steps_planned} ({shape})",
        f"  prompting: {facts.prompting}",
        f"  reward: {facts.reward}",
        f"  output: {facts.run_dir} ({files})",
        "  one prompt, exactly as the model sees it:",
    ]
    lines += [f"  | {line}" for line in facts.prompt.splitlines()]
    return lines


class RunHeader(TrainerCallback):
    """Prints the header when training begins, once the trainer knows how many steps it plans."""

    def __init__(self, facts: RunFacts) -> None:
        self.facts = facts

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            lines = header_lines(self.facts, state.max_steps, state.global_step)
            print("\n".join(lines), file=sys.stderr, flush=True)
        return control
