"""The shape of the package, read from its source with ``ast``: layers without cycles, no backend names in the core."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from batchcast import registry

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "batchcast"
# Modules that must never compare a backend's name: backends plug in through the registry.
CORE = ("spec", "runs", "store", "schema", "service", "actions", "scheduling", "scheduler", "airflow", "ui",
        "commit", "sources", "models")
MAX_LINES = 300


def _modules() -> dict[Path, ast.Module]:
    return {path: ast.parse(path.read_text(), str(path)) for path in sorted(PACKAGE.rglob("*.py"))
            if "templates" not in path.parts}


def _unit(path: Path) -> str:
    """The top-level module or package a file belongs to: ``spec`` for spec/loading.py."""
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def _imported(node: ast.AST) -> list[str]:
    """The batchcast units an import statement names (``from batchcast import x`` names x)."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module == "batchcast":
        names = [f"batchcast.{a.name}" for a in node.names]
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        names = [node.module]
    else:
        names = []
    return [n.split(".")[1] if "." in n else "__init__" for n in names if n.split(".")[0] == "batchcast"]


def _graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for path, tree in _modules().items():
        unit = _unit(path)
        for node in ast.walk(tree):
            edges[unit].update(u for u in _imported(node) if u != unit)
    return edges


def _cycle_through(edges: dict[str, set[str]], start: str) -> list[str] | None:
    todo, seen = [(start, [start])], set()
    while todo:
        node, trail = todo.pop()
        for nxt in edges.get(node, ()):
            if nxt == start:
                return trail + [start]
            if nxt not in seen:
                seen.add(nxt)
                todo.append((nxt, trail + [nxt]))
    return None


def test_no_cycles_between_packages():
    edges = _graph()
    edges.pop("__init__", None)  # the public facade re-exports everything, and nothing inside imports it
    cycles = [c for unit in sorted(edges) if (c := _cycle_through(edges, unit))]
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_nothing_inside_imports_the_public_facade():
    offenders = [str(path.relative_to(PACKAGE)) for path, tree in _modules().items()
                 if path.name != "__init__.py" or path.parent != PACKAGE
                 if any("__init__" in _imported(node) for node in ast.walk(tree))]
    assert not offenders, f"import batchcast's submodules, not the facade: {offenders}"


def test_no_core_module_compares_a_backend_name():
    names = {*registry.EXECUTORS, *registry.WAREHOUSES, *registry.TABLES}
    found = []
    for path, tree in _modules().items():
        if _unit(path) not in CORE:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare):
                literals = [n.value for n in ast.walk(node) if isinstance(n, ast.Constant)]
                found += [f"{path.relative_to(PACKAGE)}:{node.lineno} {v!r}" for v in literals if v in names]
    assert not found, f"give the backend an ability (registry row or class attribute) instead: {found}"


def test_modules_stay_small():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_every_registry_row_resolves():
    for backend in (*registry.EXECUTORS.values(), *registry.WAREHOUSES.values()):
        module, name = backend.target.split(":")
        source = PACKAGE.parent / (module.replace(".", "/") + ".py")
        assert f"class {name}" in source.read_text(), backend
    assert set(registry.action_tables()) == {"kubernetes", "vertex", "gce", "beam", *registry.TABLES}
