"""Flag helpers shared by the commands: ``KEY=VALUE`` parsing, positive integers, and flags that are
aliases of run-config keys (so a flag and a YAML key are one schema: ``--split test`` is
``--set task.eval_split=test``)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import yaml


def key_value(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` with a YAML value (``metrics=[ndcg@10]``, ``depth=100``, ``dialect=bird``)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), yaml.safe_load(value)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def comma_list(text: str) -> list[str]:
    """``a,b,c`` -> ``["a", "b", "c"]`` (blank items dropped)."""
    return [item.strip() for item in text.split(",") if item.strip()]


def add_set(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a run-config value by dotted key, e.g. --set rl.max_steps=10 (repeatable; YAML values)",
    )


@dataclass(frozen=True)
class Alias:
    """A flag that sets one run-config key: ``--flag VALUE`` means ``--set key=VALUE``."""

    flag: str
    key: str
    help: str
    type: Callable[[str], Any] | None = None
    choices: Sequence[str] | None = None
    boolean: bool = False

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    def add(self, parser: argparse.ArgumentParser) -> None:
        """Add the flag (default None: not given, the config or the schema decides)."""
        extra: dict[str, Any] = {"action": argparse.BooleanOptionalAction} if self.boolean else {}
        if self.type is not None:
            extra["type"] = self.type
        if self.choices is not None:
            extra["choices"] = self.choices
        parser.add_argument(
            self.flag, dest=self.dest, default=None, help=f"{self.help} [{self.key}]", **extra
        )


def given(aliases: Sequence[Alias], args: argparse.Namespace) -> list[tuple[Alias, Any]]:
    """The aliases whose flag was given, with their values."""
    return [(alias, getattr(args, alias.dest)) for alias in aliases if getattr(args, alias.dest) is not None]
