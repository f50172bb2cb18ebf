"""docs/python-api.md (which the README links) runs as it is: every Python block is executed in order, in
one namespace, as a reader would paste them, and prints exactly the text block shown under it."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[1] / "docs" / "python-api.md"
EXAMPLE = re.compile(r"```python\n(.*?)```\s*```text\n(.*?)```", re.DOTALL)


def test_every_example_of_the_python_page_runs_and_prints_what_it_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEEPRETRIEVAL_CACHE", str(tmp_path / "cache"))  # a fresh user: the index is built
    examples = EXAMPLE.findall(PAGE.read_text(encoding="utf-8"))
    assert len(examples) == PAGE.read_text(encoding="utf-8").count("```python") >= 3  # each shows its output
    namespace: dict = {}
    for code, shown in examples:
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(code, str(PAGE), "exec"), namespace)  # noqa: S102 - the page's own examples
        assert printed.getvalue().rstrip("\n") == shown.rstrip("\n"), code
