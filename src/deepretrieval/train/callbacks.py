"""Trainer callbacks: a JSONL metrics log, Ctrl-C checkpointing, and a per-step time profile."""

from __future__ import annotations

import functools
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback


class JsonlMetrics(TrainerCallback):
    """Appends every logged dict (with its step) to ``logs/metrics.jsonl``; ``report.py`` plots from it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as out:
                out.write(json.dumps({"step": state.global_step, **logs}) + "\n")


class SigintCheckpoint(TrainerCallback):
    """First Ctrl-C: finish the current step, save a checkpoint and stop. A second Ctrl-C aborts at once."""

    def __init__(self) -> None:
        self.interrupted = False
        self._previous: Any = None

    def install(self) -> None:
        self._previous = signal.signal(signal.SIGINT, self._handle)

    def uninstall(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def _handle(self, signum, frame) -> None:
        self.interrupted = True
        print("\ninterrupted: saving a checkpoint after this step (Ctrl-C again to abort)", file=sys.stderr)
        self.uninstall()

    def on_step_end(self, args, state, control, **kwargs):
        if self.interrupted:
            control.should_save = True
            control.should_training_stop = True
        return control


class StepProfiler(TrainerCallback):
    """Splits each optimiser step's wall time into generation, reward and the rest (log-probs + update).

    Wraps the trainer's generation method and reads the reward adapter's own clock; figures are
    added to the logs as ``time/generation_s``, ``time/reward_s``, ``time/update_s``, ``time/step_s``.
    """

    def __init__(self, trainer: Any, reward_fn: Any) -> None:
        self.reward_fn = reward_fn
        self.generation_s = 0.0
        self.steps: list[dict[str, float]] = []
        self._step_start = 0.0
        self._marks = (0.0, 0.0)
        original = trainer._generate_single_turn

        @functools.wraps(original)
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.generation_s += time.perf_counter() - start

        trainer._generate_single_turn = timed

    def on_step_begin(self, args, state, control, **kwargs):
        self._step_start = time.perf_counter()
        self._marks = (self.generation_s, self.reward_fn.seconds)

    def on_step_end(self, args, state, control, **kwargs):
        step = time.perf_counter() - self._step_start
        generation = self.generation_s - self._marks[0]
        reward = self.reward_fn.seconds - self._marks[1]
        self.steps.append(
            {
                "step_s": step,
                "generation_s": generation,
                "reward_s": reward,
                "update_s": step - generation - reward,
            }
        )

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs is not None and self.steps:
            logs.update({f"time/{key}": value for key, value in self.steps[-1].items()})

    def mean(self, skip_first: int = 1) -> dict[str, float]:
        """Mean per-step split, skipping warm-up steps when there are enough."""
        steps = self.steps[skip_first:] if len(self.steps) > skip_first else self.steps
        return {key: sum(s[key] for s in steps) / len(steps) for key in steps[0]} if steps else {}


class TimeBudget(TrainerCallback):
    """Ends training at the first step boundary after ``seconds`` of training (a hard wall-clock budget)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.reached = False
        self._start = 0.0

    def on_train_begin(self, args, state, control, **kwargs):
        self._start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if time.perf_counter() - self._start >= self.seconds:
            print(
                f"\ntime budget of {self.seconds:.0f} s reached at step {state.global_step}", file=sys.stderr
            )
            control.should_training_stop = True
            self.reached = True
        return control


class CardOnSave(TrainerCallback):
    """Writes the policy card into every checkpoint, so any checkpoint evaluates as it was trained."""

    def __init__(self, card: Any) -> None:
        self.card = card

    def on_save(self, args, state, control, **kwargs):
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if state.is_world_process_zero and folder.is_dir():
            self.card.write(folder)
