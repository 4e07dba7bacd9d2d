"""The package's import graph: no cycles, and imports point down the floors only.

Every module under ``src/symplearn`` is parsed with :mod:`ast` (nothing is imported); every
import statement counts, at module level or inside a function, relative ones resolved. The floor
table is the layering of ``docs/architecture.md`` (lowest first); a module may import its own
floor or a lower one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "symplearn"

#: lowest first; a key is a top-level module or subpackage of symplearn
FLOORS: list[tuple[str, ...]] = [
    ("_errors", "_version"),
    ("_validate", "_progress", "schemas", "_files", "_alloc"),
    ("dynamics",),
    ("geometry",),
    ("systems",),
    ("integrators",),
    ("datasets",),
    ("models",),
    ("diagnostics",),
    ("md",),
    ("modelio",),
    ("frames", "ase"),
    ("training",),
    ("plotting", "report"),
    ("runs",),
    ("experiments",),
    ("cli", "__main__", ""),  # "": the package top, symplearn/__init__.py (re-exports only)
]
FLOOR = {name: k for k, names in enumerate(FLOORS) for name in names}


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph(root: Path = SRC) -> dict[str, dict[str, int]]:
    """``{module: {imported module: line}}`` among the modules under ``root``."""
    files = {_module_name(p, root): p for p in root.rglob("*.py")}
    graph: dict[str, dict[str, int]] = {}
    for mod, path in files.items():
        is_pkg = path.name == "__init__.py"
        package = mod if is_pkg else mod.rpartition(".")[0]
        edges: dict[str, int] = {}
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    stem = ".".join(base + ([node.module] if node.module else []))
                else:
                    stem = node.module or ""
                # ``from pkg import sub`` imports the submodule pkg.sub when there is one
                targets = [f"{stem}.{a.name}" if f"{stem}.{a.name}" in files else stem for a in node.names]
            for t in targets:
                while t and t not in files:  # ``import a.b.c`` of a non-module attribute: its module
                    t = t.rpartition(".")[0]
                if t and t != mod:
                    edges.setdefault(t, node.lineno)
        graph[mod] = edges
    return graph


def floor_of(mod: str) -> int:
    parts = mod.split(".")
    key = parts[1] if len(parts) > 1 else ""
    if key not in FLOOR:
        raise AssertionError(f"{mod} is on no floor: add it to FLOORS in tests/test_layout.py")
    return FLOOR[key]


def find_cycle(graph: dict[str, dict[str, int]]) -> list[str] | None:
    """One import cycle as ``[a, b, ..., a]``, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for t in sorted(graph.get(m, {})):
            if state.get(t) == 1:
                return stack[stack.index(t) :] + [t]
            if t not in state and (c := visit(t)):
                return c
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (c := visit(m)):
            return c
    return None


def upward_imports(graph: dict[str, dict[str, int]]) -> list[str]:
    return [
        f"{m}:{line} imports {t} (floor {floor_of(t)} above {floor_of(m)})"
        for m, edges in sorted(graph.items())
        for t, line in sorted(edges.items())
        if floor_of(t) > floor_of(m)
    ]


def test_every_module_is_on_a_floor_and_seen():
    graph = import_graph()
    assert {"symplearn.dynamics", "symplearn.integrators.discretize", "symplearn.cli"} <= set(graph)
    for m in graph:
        floor_of(m)
    # relative, package-relative and function-level imports are all resolved
    assert "symplearn.integrators.base" in graph["symplearn.integrators.registry"]
    assert "symplearn.md" in graph["symplearn.training.potentials"]
    assert "symplearn.diagnostics" in graph["symplearn.runs.diagnose"]  # ``from .. import diagnostics``
    assert "symplearn.schemas" in graph["symplearn._files"]  # inside a function


def test_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_imports_point_down_the_floors():
    assert upward_imports(import_graph()) == []


def test_dynamics_imports_nothing_above_the_plumbing():
    edges = import_graph()["symplearn.dynamics"]
    assert all(floor_of(t) <= FLOOR["_files"] for t in edges), edges


@pytest.mark.parametrize("where", ["module", "function"])
def test_the_checks_catch_an_upward_import_and_a_cycle(tmp_path, where):
    """A copy of the package with one deliberate upward import (dynamics -> integrators) fails
    both checks: the graph is read from the files, not assumed."""
    root = tmp_path / "symplearn"
    for p in SRC.rglob("*.py"):
        dest = root / p.relative_to(SRC)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(p.read_text())
    dyn = root / "dynamics.py"
    line = "from .integrators.discretize import discretize\n"
    text = dyn.read_text()
    dyn.write_text(text + line if where == "module" else text + "\n\ndef _f():\n    " + line)
    graph = import_graph(root)
    assert any(s.startswith("symplearn.dynamics:") for s in upward_imports(graph))
    cycle = find_cycle(graph)
    assert cycle is not None and "symplearn.dynamics" in cycle
