"""The package's import graph: no module imports its way back to itself, and nothing in it imports a test.

Every module of the installed package is read as source (its AST: every ``import`` and ``from ... import``,
at module level, in functions and under ``TYPE_CHECKING`` alike) and each import becomes an edge to the
module it names (``from package import module`` names the module, ``from module import name`` the module).
A package's ``__init__`` that re-exports its submodules is not an edge from those submodules to it.
"""

from __future__ import annotations

import ast
import pkgutil
from collections.abc import Iterator
from pathlib import Path

import deepretrieval

TESTS = Path(__file__).resolve().parent

# Cycles outside the areas already untangled, as sorted module lists; each is being restructured on
# another branch. Empty this list as they go: a cycle found here is a failure once it is gone from it.
KNOWN_CYCLES: list[list[str]] = []


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name -> its source file (packages whose ``__init__`` cannot
    be imported here, for want of an optional dependency, are skipped with their submodules)."""
    found = {"deepretrieval": Path(deepretrieval.__file__)}
    for info in pkgutil.walk_packages(deepretrieval.__path__, "deepretrieval.", onerror=lambda _: None):
        folder = Path(info.module_finder.path)  # type: ignore[union-attr]
        leaf = info.name.rpartition(".")[2]
        found[info.name] = folder / leaf / "__init__.py" if info.ispkg else folder / f"{leaf}.py"
    return found


def _imports(name: str, path: Path) -> Iterator[tuple[str, int]]:
    """(absolute module name, line) of every import in the module ``name``, relative ones resolved."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            source = ".".join([*base, node.module] if node.module else base)
            for alias in node.names:
                yield f"{source}.{alias.name}", node.lineno
            yield source, node.lineno


def _graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for target, _ in _imports(name, path):
            while target and target not in modules:  # `from m import function` names the module m
                target = target.rpartition(".")[0]
            if target and target != name:
                graph[name].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _path_through(graph: dict[str, set[str]], members: list[str]) -> list[str]:
    """One import loop inside a component, as ``a -> b -> ... -> a``, for the failure message."""
    inside = set(members)
    path, seen = [members[0]], {members[0]}
    while True:
        step = min(target for target in graph[path[-1]] if target in inside)
        if step in seen:
            return [*path[path.index(step) :], step]
        path.append(step)
        seen.add(step)


def test_the_package_has_no_import_cycle() -> None:
    modules = _modules()
    assert {"deepretrieval.retrievers.bm25.build", "deepretrieval.batching", "deepretrieval.registry"} <= set(
        modules
    )
    graph = _graph(modules)
    cycles = [members for members in _cycles(graph) if members not in KNOWN_CYCLES]
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(_path_through(graph, c)) for c in cycles)
    stale = [members for members in KNOWN_CYCLES if members not in _cycles(graph)]
    assert not stale, f"these cycles are gone: remove them from KNOWN_CYCLES: {stale}"


def test_the_cycle_finder_finds_cycles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _path_through(graph, ["a", "b", "c"]) == ["a", "b", "c", "a"]


def test_nothing_in_the_package_imports_from_the_tests() -> None:
    test_modules = {"tests", "conftest", *(path.stem for path in TESTS.glob("*.py"))}
    offending = [
        f"{name}:{line} imports {target}"
        for name, path in _modules().items()
        for target, line in _imports(name, path)
        if target.partition(".")[0] in test_modules
    ]
    assert not offending, offending
