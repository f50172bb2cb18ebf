"""The argument parser every command shares: each flag's help shows its default, and a flag a command does not
know is reported by that command, with its usage and the closest flag it has."""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Sequence
from typing import Any, NoReturn


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Appends ``(default: VALUE)`` to a flag's help when it has a value and the help does not already say
    (argparse's ``ArgumentDefaultsHelpFormatter`` would also print ``default: None`` and ``default: []``)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        shown = action.default not in (None, False, [], argparse.SUPPRESS)
        if "default" in text or not action.option_strings or action.required or not shown:
            return text
        return f"{text} (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` with :class:`DefaultsHelpFormatter`, whose subcommand parsers (built from
    it by ``add_subparsers``) are of this class too, so that a mistyped flag is reported by the command it
    was given to: ``deepretrieval eval --polcy x`` prints eval's usage and suggests ``--policy``, where
    argparse would print the top-level usage. Abbreviated flags are not accepted (``--pol`` for
    ``--policy``): a script written with one breaks, or silently changes meaning, once a new flag shares
    its prefix."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", DefaultsHelpFormatter)
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.unknown(extras)
        return parsed, extras

    def unknown(self, extras: Sequence[str]) -> NoReturn:
        flags = [flag for action in self._actions for flag in action.option_strings]
        first = next((word.split("=")[0] for word in extras if word.startswith("-")), None)
        close = difflib.get_close_matches(first, flags, n=1) if first else []
        hint = f" (did you mean {close[0]}?)" if close else ""
        self.error(f"unrecognized arguments: {' '.join(extras)}{hint}")
