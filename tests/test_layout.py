"""The shape of the package, read from its source with ``ast``: layers in order, no backend names in the core."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from batchcast import registry

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "batchcast"
# The rooms of the package, lowest first: a room imports only rooms of lower layers (the README's layout
# section shows the same table). Imports under ``if TYPE_CHECKING:`` are annotations, not dependencies.
LAYERS: list[set[str]] = [
    {"errors"},
    {"redaction", "registry", "scheduling"},
    {"data", "brokers"},
    {"spec", "warehouses"},
    {"alerts"},
    {"runs"},
    {"isolation", "model"},
    {"actions"},
    {"executors"},
    {"service"},
    {"online", "airflow", "scheduler", "ui"},
    {"serving", "streaming"},
    {"cli", "testing"},
]
# Libraries a room must not import, whatever it needs them for.
FORBIDDEN = {"online": ("starlette", "uvicorn", "fastapi")}
# Modules that must never compare a backend's name: backends plug in through the registry.
CORE = ("spec", "runs", "data", "model", "service", "actions", "scheduling", "scheduler", "airflow", "ui", "online")
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


def _runtime_imports(tree: ast.Module) -> list[ast.AST]:
    """The import statements of ``tree`` that run: those under ``if TYPE_CHECKING:`` are left out."""
    typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                   and "TYPE_CHECKING" in ast.unparse(block.test) for n in ast.walk(block)}
    return [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom) and id(n) not in typing_only]


def _graph(modules: dict[Path, ast.Module] | None = None) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for path, tree in (modules or _modules()).items():
        unit = _unit(path)
        for node in _runtime_imports(tree):
            edges[unit].update(u for u in _imported(node) if u != unit)
    return edges


def upward_imports(edges: dict[str, set[str]]) -> list[str]:
    """Every import of a room by a room of the same or a lower layer, as ``low -> high`` lines."""
    layer = {unit: i for i, units in enumerate(LAYERS) for unit in units}
    return [f"{unit} (layer {layer[unit]}) -> {dep} (layer {layer[dep]})" for unit in sorted(edges)
            for dep in sorted(edges[unit]) if unit in layer and dep in layer and layer[dep] >= layer[unit]]


def test_every_room_is_in_the_layer_table():
    rooms = {_unit(path) for path in _modules()} - {"__init__"}
    missing = sorted(rooms - {unit for units in LAYERS for unit in units})
    assert not missing, f"add these to LAYERS in tests/test_layout.py and the README's layout: {missing}"


def test_rooms_import_only_lower_layers():
    found = upward_imports(_graph())
    assert not found, "a room imports one of its own or a higher layer: " + "; ".join(found)


def test_the_layer_check_fails_on_an_upward_import():
    """The check above can fail: a data module importing the service is caught."""
    planted = {PACKAGE / "data" / "planted.py": ast.parse("from batchcast.service import Service")}
    assert upward_imports(_graph(planted)) == ["data (layer 2) -> service (layer 9)"]


def test_rooms_avoid_their_forbidden_libraries():
    found = [f"{path.relative_to(PACKAGE)} imports {name}" for path, tree in _modules().items()
             for name in FORBIDDEN.get(_unit(path), ()) for node in _runtime_imports(tree)
             if any(n == name or n.startswith(f"{name}.") for n in _module_names(node))]
    assert not found, found


def _module_names(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    return [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else []


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
    assert set(registry.action_tables()) == {"kubernetes", "vertex", "gce", "beam", "spark", *registry.TABLES}


def test_few_modules_at_the_top():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= 8, f"put these in rooms: {top}"


def test_package_inits_only_re_export():
    """An ``__init__.py`` holds a docstring, imports and ``__all__``: code lives in the room's modules."""
    allowed = (ast.Expr, ast.Import, ast.ImportFrom, ast.If)
    found = [str(path.relative_to(PACKAGE)) for path, tree in _modules().items()
             if path.name == "__init__.py" and path.parent != PACKAGE
             if any(not isinstance(node, allowed) and not _is_all(node) for node in tree.body)]
    assert not found, f"move the code out of: {found}"


def _is_all(node: ast.AST) -> bool:
    return isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["__all__"]
