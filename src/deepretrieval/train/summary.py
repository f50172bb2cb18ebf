"""How a training run ended: steps done and planned, and why it stopped (``RUN_DIR/training.json``).

Written by ``train`` when training ends (interrupted runs included), read by the quickstart and the report,
so that a run cut short by its time budget says so wherever its figures appear. Light on purpose: the
report reads it without importing the training stack.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from deepretrieval.files import write_json

SUMMARY_FILE = "training.json"
StopReason = Literal["max_steps", "epochs", "time_budget", "interrupted"]
WHY = {
    "max_steps": "rl.max_steps reached",
    "epochs": "rl.epochs done",
    "time_budget": "its time budget, rl.time_budget_s, ran out",
    "interrupted": "interrupted (Ctrl-C)",
}


@dataclass(frozen=True)
class TrainingSummary:
    """``steps`` optimiser steps done of ``steps_planned``; ``stopped_by`` says why training ended;
    ``seconds`` of training; ``time_budget_s`` the budget it ran under (None: none)."""

    steps: int
    steps_planned: int
    stopped_by: StopReason
    seconds: float
    time_budget_s: float | None = None

    @property
    def complete(self) -> bool:
        """Whether every planned step ran."""
        return self.steps >= self.steps_planned

    def describe(self) -> str:
        """One line: ``60 of 60 planned GRPO steps in 574 s: rl.max_steps reached``."""
        return (
            f"{self.steps} of {self.steps_planned} planned GRPO steps in {self.seconds:.0f} s: {self._why()}"
        )

    def _why(self) -> str:
        if self.stopped_by == "time_budget" and self.time_budget_s:
            return f"its time budget of {self.time_budget_s:g} s (rl.time_budget_s) ran out"
        return WHY[self.stopped_by]

    def warning(self) -> str | None:
        """What an incomplete run means for its figures (None when every planned step ran)."""
        if self.complete:
            return None
        fix = (
            f"give it more time (--set rl.time_budget_s={2 * self.time_budget_s:g}) or a quieter machine"
            if self.stopped_by == "time_budget" and self.time_budget_s
            else "resume it (train --resume) to finish the plan"
        )
        return (
            f"UNDER-TRAINED: training stopped at step {self.steps} of {self.steps_planned}: {self._why()}. "
            "The trained policy's figures are those of a partly trained policy and are not comparable with a "
            f"complete run of this recipe; {fix}."
        )

    def write(self, run_dir: str | Path) -> Path:
        return write_json(Path(run_dir) / SUMMARY_FILE, asdict(self), indent=2)

    @classmethod
    def read(cls, run_dir: str | Path) -> TrainingSummary | None:
        """The run's summary, or None for a run that has not ended (or predates the file)."""
        path = Path(run_dir) / SUMMARY_FILE
        if not path.is_file():
            return None
        try:
            return cls(**json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, TypeError) as err:
            raise ValueError(f"{path} is damaged ({err}); it is rewritten when training ends") from None
