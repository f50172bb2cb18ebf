"""Every flag of every command has help text that says its default, and a mistyped flag is reported by the
command it was given to, with that command's usage and the closest flag."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from deepretrieval.cli import build_parser, main


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, (*path, name))


def _flags() -> list[tuple[str, argparse.Action, str]]:
    found = []
    for path, parser in _commands(build_parser()):
        formatter = parser._get_formatter()
        for action in parser._actions:
            if action.option_strings and not isinstance(
                action, (argparse._HelpAction, argparse._VersionAction)
            ):
                shown = formatter._expand_help(action) if action.help else ""
                found.append((" ".join(path), action, shown))
    return found


@pytest.mark.parametrize("command, action, shown", _flags(), ids=lambda v: getattr(v, "dest", None) or v)
def test_every_flag_has_help_that_says_its_default(command: str, action: argparse.Action, shown: str) -> None:
    assert shown, f"{command} {action.option_strings[0]} has no help"
    repeatable = action.default == [] and "repeatable" in shown
    switch = isinstance(action, argparse._StoreTrueAction)
    if not (action.required or repeatable or switch):
        assert "default" in shown, f"{command} {action.option_strings[0]}: the help does not say its default"
    if action.default not in (None, False, [], argparse.SUPPRESS):
        assert str(action.default) in shown, f"{command} {action.option_strings[0]} hides its default"


@pytest.mark.parametrize(
    "flag, value", [("--seed", "0"), ("--k", "10"), ("--host", "127.0.0.1"), ("--port", "8000")]
)
def test_the_flags_a_new_user_asked_about_show_their_defaults(flag: str, value: str) -> None:
    shown = [text for _, action, text in _flags() if flag in action.option_strings]
    assert shown and all("default" in text for text in shown)
    assert any(value in text for text in shown)


@pytest.mark.parametrize(
    "argv, usage, unknown",
    [
        (["eval", "--polcy", "original"], "usage: deepretrieval eval", "--polcy original (did you mean --policy?)"),
        (["train", "x.yaml", "--resmue"], "usage: deepretrieval train", "--resmue (did you mean --resume?)"),
        (["index", "build", "--corpus", "c", "--out", "o", "--stemer", "x"], "usage: deepretrieval index build",
         "--stemer x (did you mean --stemmer?)"),
        (["eval", "--pol", "original"], "usage: deepretrieval eval", "--pol original (did you mean --policy?)"),
        (["serve-retriever", "--index", "i", "--max-quer", "3"], "usage: deepretrieval serve-retriever",
         "--max-quer 3 (did you mean --max-queries?)"),
    ],
)  # fmt: skip
def test_a_mistyped_flag_shows_that_commands_usage(argv: list[str], usage: str, unknown: str, capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(usage) and f"unrecognized arguments: {unknown}" in err
