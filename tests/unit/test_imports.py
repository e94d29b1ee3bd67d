"""The imports' direction: doors over the collection over collectors over the base modules.

How imports are found: each module of the package is parsed with :mod:`ast` (never imported),
and every ``import`` and ``from ... import`` statement anywhere in its syntax tree counts: at
the top, inside functions and methods (the lazy imports that keep ``import mlflow_sysmetrics``
cheap), in ``try`` blocks and in ``if TYPE_CHECKING:`` blocks, relative (``from ..x import y``)
and absolute (``import mlflow_sysmetrics.x``). ``from package import name`` counts as an import
of ``package.name`` where that is a module, else of ``package``. Two places import a module
whose name the code computes (``import_module``/``__import__``), which no syntax tree names:
they are listed in :data:`COMPUTED`, and a test checks that list against the code.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = "mlflow_sysmetrics"
ROOT = Path(__file__).resolve().parents[2] / PACKAGE

#: The layers, lowest first. A module may import modules of its own layer and of those below,
#: never one above; an entry ending in ``.*`` is a package and all its modules.
#:
#: - base: the key table, settings, values, files, processes and tools, process state: what
#:   every other layer reads, importing nothing above it;
#: - collectors: one module per concern (and the accelerators' vendors), over the base;
#: - collection: ``collect()`` (``_collection``), the run's ledger, the facts of a run made
#:   away from its work and of a run a multi-node job shares: they run the collectors;
#: - doors: what a user calls or MLflow loads (the public API, the provider, the engines'
#:   doors, the command line, ``why``) and the one module that writes to runs.
LAYERS: tuple[tuple[str, frozenset[str]], ...] = (
    (
        "base",
        frozenset(
            {
                "tags",
                "settings",
                "_value",
                "_files",
                "_state",
                "_platform",
                "_log",
                "_env",
                "_context",
                "_proc",
                "_format",
                "_launcher",
            }
        ),
    ),
    ("collectors", frozenset({"collectors", "collectors.*"})),
    ("collection", frozenset({"_collection", "ledger", "ledger.*", "_remote", "_shared_run", "_machines"})),
    (
        "doors",
        frozenset(
            {
                "",  # the package's __init__
                "__main__",
                "provider",
                "runs",
                "ray",
                "spark",
                "cli",
                "cli.*",
                "_run_command",
                "_why",
                "_writing",
            }
        ),
    ),
)

#: Imports of a module named by a value the code computes, which no syntax tree names: the
#: package's lazy public names (``__init__``'s ``_LAZY``) and the GPU vendors' rows
#: (``collectors/accelerators``'s ``VENDORS``).
COMPUTED: dict[str, frozenset[str]] = {
    PACKAGE: frozenset({f"{PACKAGE}._collection", f"{PACKAGE}.runs", f"{PACKAGE}._why"}),
    f"{PACKAGE}.collectors.accelerators": frozenset(
        f"{PACKAGE}.collectors.accelerators.{vendor}" for vendor in ("nvidia", "amd", "apple", "windows")
    ),
}


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name)."""
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def imports_of(source: str, module: str, is_package: bool, known: set[str] | dict[str, Path]) -> set[str]:
    """The package's modules that ``source`` (module ``module``) imports, wherever the statement is."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            names = [
                f"{target}.{alias.name}" if f"{target}.{alias.name}" in known else target
                for alias in node.names
            ]
        else:
            continue
        for named in names:
            name = named
            while name not in known and "." in name:  # import a.b.c: the deepest module named
                name = name.rsplit(".", 1)[0]
            if name in known and name != module:
                found.add(name)
    return found


def _graph() -> dict[str, set[str]]:
    graph = {}
    for module, path in MODULES.items():
        graph[module] = imports_of(path.read_text(), module, path.name == "__init__.py", MODULES)
        graph[module] |= COMPUTED.get(module, frozenset())
    return graph


def layer_of(module: str) -> int:
    """The index in :data:`LAYERS` of ``module``'s layer."""
    name = module.removeprefix(PACKAGE).removeprefix(".")
    for index, (_, members) in enumerate(LAYERS):
        if name in members or any(
            member.endswith(".*") and name.startswith(member[:-1]) for member in members
        ):
            return index
    raise LookupError(f"{module} is in no layer of tests/unit/test_imports.py's LAYERS: place it there")


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each group of modules that import one another, round (Tarjan's strongly connected components)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _path_round(graph: dict[str, set[str]], group: list[str]) -> list[str]:
    """One import path from the group's first module back to itself, through the group."""
    start, members = group[0], set(group)
    trail = [start]
    seen = {start}

    def walk(node: str) -> bool:
        for target in sorted(graph[node] & members):
            if target == start:
                trail.append(start)
                return True
            if target not in seen:
                seen.add(target)
                trail.append(target)
                if walk(target):
                    return True
                trail.pop()
        return False

    walk(start)
    return trail


def _upward(graph: dict[str, set[str]]) -> Iterator[str]:
    for module, targets in sorted(graph.items()):
        for target in sorted(targets):
            if layer_of(target) > layer_of(module):
                yield (
                    f"{module} ({LAYERS[layer_of(module)][0]}) imports {target} "
                    f"({LAYERS[layer_of(target)][0]}, a layer above)"
                )


def test_every_module_is_in_a_layer() -> None:
    """A new module is placed in the table, so that its imports are checked too."""
    for module in MODULES:
        layer_of(module)


def test_no_import_cycle_lazy_imports_included() -> None:
    """No group of modules imports one another round, counting imports inside functions."""
    graph = _graph()
    found = [" -> ".join(_path_round(graph, group)) for group in cycles(graph)]
    assert found == [], "import cycles:\n" + "\n".join(found)


def test_imports_go_one_way_down_the_layers() -> None:
    """Doors over the collection over collectors over the base modules, lazy imports included."""
    upward = list(_upward(_graph()))
    assert upward == [], "imports up a layer:\n" + "\n".join(upward)


def test_lazy_and_relative_imports_are_seen() -> None:
    """An import inside a function, relative or absolute, counts; one going up a layer is reported."""
    source = (
        "def later():\n"
        "    from .. import runs\n"
        "    from .._collection import collect\n"
        "    import mlflow_sysmetrics.ray\n"
        "    if True:\n"
        "        from . import disk\n"
        "        from .accelerators.nvidia import facts\n"
    )
    cpu = f"{PACKAGE}.collectors.cpu"
    found = imports_of(source, cpu, False, MODULES)
    expected = {
        f"{PACKAGE}.runs",
        f"{PACKAGE}._collection",
        f"{PACKAGE}.ray",
        f"{PACKAGE}.collectors.disk",
        f"{PACKAGE}.collectors.accelerators.nvidia.facts",
    }
    assert expected == found
    assert [
        f"{cpu} (collectors) imports {PACKAGE}._collection (collection, a layer above)",
        f"{cpu} (collectors) imports {PACKAGE}.ray (doors, a layer above)",
        f"{cpu} (collectors) imports {PACKAGE}.runs (doors, a layer above)",
    ] == list(_upward({cpu: found}))


def test_a_cycle_is_named_by_its_modules() -> None:
    """Three modules importing one another round are reported as that round."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert _path_round(graph, ["a", "b", "c"]) == ["a", "b", "c", "a"]


def test_the_computed_imports_are_the_codes() -> None:
    """COMPUTED is what the lazy names and the vendors' rows import; no other module computes a name."""
    import mlflow_sysmetrics
    from mlflow_sysmetrics.collectors.accelerators import VENDORS

    lazy = {f"{PACKAGE}.{name}" for name in mlflow_sysmetrics._LAZY.values()}
    assert COMPUTED[PACKAGE] == lazy
    vendors = {f"{PACKAGE}.collectors.accelerators.{vendor.name}" for vendor in VENDORS}
    assert COMPUTED[f"{PACKAGE}.collectors.accelerators"] == vendors
    computing = set()
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = (
                func.id
                if isinstance(func, ast.Name)
                else func.attr
                if isinstance(func, ast.Attribute)
                else ""
            )
            argument = node.args[0] if node.args else None
            outside = isinstance(argument, ast.Constant) and not str(argument.value).startswith(
                (".", PACKAGE)
            )
            if name in ("import_module", "__import__") and not outside:
                computing.add(module)
    assert set(COMPUTED) == computing


@pytest.mark.parametrize("layer", [name for name, _ in LAYERS])
def test_each_layer_has_modules(layer: str) -> None:
    """No layer of the table is empty: each names modules the package has."""
    index = [name for name, _ in LAYERS].index(layer)
    assert any(layer_of(module) == index for module in MODULES)
