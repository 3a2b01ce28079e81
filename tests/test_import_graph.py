"""The installed package keeps its layers (README "Layout", `core/__init__.py`):

    api → assertions → collector → core-base     dashboards: served by api (→ core-base)
    core-app → anything                          demo → public facades only

`core/` is two layers: the base (errors, configuration, durations, sut_env, services, the
facade's eager part), which every component may import, and the app (`Collector`, the
server, the CLI, the pytest plugin), which may import every component and which no
component imports.

How the graph is read, from the source of every module of the installed `tracebaton`
with `ast`:

- Every import counts: at module level and inside functions (lazy imports run too),
  `import x`, `from x import y`, relative imports resolved against the module's package.
  Imports under `if TYPE_CHECKING:` do not count: they never run, and an annotation may
  name any layer (`TraceAssertionError.result` is an assertions `FlowResult`).
- An edge goes to the module that defines the name: `from tracebaton import StoreError`
  depends on `tracebaton._errors` (base), `from tracebaton import Collector` on
  `tracebaton._embedded` (app). A facade's re-exports are followed, through its imports
  and through its lazy table (a module-level dict of name → module that its
  `__getattr__` reads). The facade's lazy loader is the facade's, not an edge of the base
  layer: `import tracebaton` runs the eager part only, so `tracebaton` (base) has no edge
  to what `__getattr__` would load.
- The rules: (a) an edge from one layer to another goes the allowed way (`ALLOWED`), and
  no import cycle of modules spans two layers (demo and core-app name each other's public
  names — the CLI runs the demo, the demo runs a Collector — and that is fine as long as no
  cycle of modules closes); (b) nothing imports another component's private `_module`,
  and demo imports only public facades. Cycles between modules of one layer are checked
  too; `KNOWN_CYCLES` lists the ones being removed, and fails once one is gone.
"""

from __future__ import annotations

import ast
import dataclasses
import textwrap
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

import tracebaton

CORE_BASE = {"tracebaton", "tracebaton._errors", "tracebaton._config", "tracebaton._durations",
             "tracebaton._sut_env", "tracebaton._services"}
CORE_APP = {"tracebaton._embedded", "tracebaton._server", "tracebaton._cli", "tracebaton._cli_client",
            "tracebaton._cli_tracetest", "tracebaton._cli_run", "tracebaton._cli_diff",
            "tracebaton._pytest_snapshots",
            "tracebaton.__main__", "tracebaton.pytest_plugin"}
COMPONENTS = ("collector", "assertions", "api", "dashboards", "demo")
LAYERS = ("core-base", "core-app", *COMPONENTS)
ALLOWED: Mapping[str, set[str]] = {
    "core-base": {"core-base"},
    "collector": {"collector", "core-base"},
    "assertions": {"assertions", "collector", "core-base"},
    "dashboards": {"dashboards", "core-base"},
    "api": {"api", "assertions", "collector", "dashboards", "core-base"},
    "demo": set(LAYERS),  # through the public facades only: see private_imports()
    "core-app": set(LAYERS),
}
FACADES = {"tracebaton", *(f"tracebaton.{c}" for c in COMPONENTS)}
KNOWN_CYCLES: set[frozenset[str]] = set()
"""Cycles inside one layer that are being removed; each must still exist."""


@dataclasses.dataclass(frozen=True)
class Edge:
    source: str
    written: str
    """The module the import statement names (`tracebaton.collector`, `tracebaton._errors`)."""
    target: str
    """The module that defines what it imports (the facade's re-export followed)."""
    line: int


@dataclasses.dataclass
class Module:
    name: str
    path: Path
    is_package: bool
    tree: ast.Module


def layer_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in COMPONENTS:
        return parts[1]
    if module in CORE_BASE:
        return "core-base"
    if module in CORE_APP:
        return "core-app"
    raise AssertionError(
        f"{module} is in neither core layer: add it to CORE_BASE (importable by every component) "
        "or CORE_APP (imports components) in tests/test_import_graph.py, and to README's Layout"
    )


def component_of(module: str) -> str:
    """The folder a module lives in: privates may be imported within it (core's two layers too)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in COMPONENTS else "core"


def read_package(root: Path, package: str) -> dict[str, Module]:
    modules = {}
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root).with_suffix("")
        parts = [package, *relative.parts]
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        name = ".".join(parts)
        modules[name] = Module(name, path, is_package, ast.parse(path.read_text(), str(path)))
    return modules


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(node: ast.AST, *, skip_getattr: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import that can run: in functions too, not under TYPE_CHECKING, and not in a
    facade's own `__getattr__` when `skip_getattr`."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child):
            for other in child.orelse:
                yield from _imports(ast.Module(body=[other], type_ignores=[]), skip_getattr=skip_getattr)
            continue
        if skip_getattr and isinstance(child, ast.FunctionDef) and child.name == "__getattr__":
            continue
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child
        else:
            yield from _imports(child, skip_getattr=skip_getattr)


def _absolute(module: Module, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module.name if module.is_package else module.name.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


class Graph:
    def __init__(self, modules: Mapping[str, Module]) -> None:
        self.modules = modules
        self.edges = [edge for module in modules.values() for edge in self._edges_of(module)]

    def _lazy_table(self, module: Module) -> dict[str, str]:
        """name → absolute module, from the module-level dict its `__getattr__` reads."""
        getattr_names = {
            n.id
            for f in module.tree.body
            if isinstance(f, ast.FunctionDef) and f.name == "__getattr__"
            for n in ast.walk(f)
            if isinstance(n, ast.Name)
        }
        table = {}
        for node in module.tree.body:
            target = node.target if isinstance(node, ast.AnnAssign) else (
                node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None)
            if not (isinstance(target, ast.Name) and target.id in getattr_names):
                continue
            value = node.value
            if isinstance(value, ast.Dict) and all(
                isinstance(v, ast.Constant) and isinstance(v.value, str) for v in value.values
            ):
                for key, where in zip(value.keys, value.values, strict=True):
                    assert isinstance(key, ast.Constant)
                    assert isinstance(where, ast.Constant)
                    level = len(where.value) - len(where.value.lstrip("."))
                    fake = ast.ImportFrom(module=where.value.lstrip(".") or None, names=[], level=level)
                    table[key.value] = _absolute(module, fake)
        return table

    def defining_module(self, module_name: str, name: str, seen: frozenset[str] = frozenset()) -> str:
        """Where `from module_name import name` really comes from."""
        submodule = f"{module_name}.{name}"
        if submodule in self.modules:
            return submodule
        module = self.modules.get(module_name)
        if module is None or module_name in seen:
            return module_name
        seen = seen | {module_name}
        for node in module.tree.body:  # module level only: what importing it binds
            if isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    if (alias.asname or alias.name) == name:
                        return self.defining_module(_absolute(module, node), alias.name, seen)
        lazy = self._lazy_table(module)
        if name in lazy:
            return self.defining_module(lazy[name], name, seen)
        return module_name

    def _edges_of(self, module: Module) -> Iterator[Edge]:
        package = module.name if module.is_package else module.name.rpartition(".")[0]
        for node in _imports(module.tree, skip_getattr=module.is_package):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == "tracebaton":
                        yield Edge(module.name, alias.name, alias.name, node.lineno)
                continue
            written = _absolute(module, node)
            if written.split(".")[0] != "tracebaton":
                continue
            if (written in self.modules and self.modules[written].is_package
                    and not (package + ".").startswith(written + ".")):
                # importing from another package runs its __init__, and so all it imports
                yield Edge(module.name, written, written, node.lineno)
            for alias in node.names:
                submodule = f"{written}.{alias.name}"
                shown = submodule if submodule in self.modules else written
                yield Edge(module.name, shown, self.defining_module(written, alias.name), node.lineno)


def direction_problems(graph: Graph) -> list[str]:
    problems: list[str] = []
    for edge in graph.edges:
        source, target = layer_of(edge.source), layer_of(edge.target)
        if target not in ALLOWED[source]:
            problems.append(
                f"{edge.source} (line {edge.line}, layer {source}) imports {edge.target} (layer {target}): "
                f"{source} may import only {', '.join(sorted(ALLOWED[source]))} — the allowed direction is "
                "api → assertions → collector → core-base, core-app → anything"
            )
    return list(dict.fromkeys(problems))  # one line for two imports on one line


def private_imports(graph: Graph) -> list[str]:
    problems: list[str] = []
    for edge in graph.edges:
        owner = component_of(edge.written)
        private = any(part.startswith("_") and part != "__main__" for part in edge.written.split(".")[1:])
        if private and owner != component_of(edge.source):
            problems.append(
                f"{edge.source} (line {edge.line}) imports {edge.written}, a private module of {owner}: "
                f"import it from its facade ({'tracebaton' if owner == 'core' else 'tracebaton.' + owner})"
            )
        elif layer_of(edge.source) == "demo" != layer_of(edge.written) and edge.written not in FACADES:
            problems.append(
                f"{edge.source} (line {edge.line}) imports {edge.written}: demo uses the public facades only"
            )
    return list(dict.fromkeys(problems))


def _successors(graph: Graph) -> dict[str, set[str]]:
    successors: dict[str, set[str]] = {name: set() for name in graph.modules}
    for edge in graph.edges:
        if edge.target in successors and edge.target != edge.source:
            successors[edge.source].add(edge.target)
    return successors


def cycles(graph: Graph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    successors = _successors(graph)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(successors[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(successors):
        if node not in index:
            visit(node)
    return found


def _a_cycle_through(members: list[str], successors: Mapping[str, set[str]]) -> list[str]:
    """One cycle of imports from members[0] back to it, within the strongly connected members."""
    start, within = members[0], set(members)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(successors[node] & within):
            if nxt == start:
                return [*paths[node], start]
            if nxt not in paths:
                paths[nxt] = [*paths[node], nxt]
                queue.append(nxt)
    raise AssertionError(f"{members} is not strongly connected")


def cycle_problems(graph: Graph) -> tuple[list[str], list[str]]:
    """(cycles that span layers, cycles inside one layer), each as a path of imports."""
    across, inside = [], []
    successors = _successors(graph)
    for members in cycles(graph):
        layers = sorted({layer_of(m) for m in members})
        text = " → ".join(_a_cycle_through(members, successors))
        if len(layers) > 1:
            across.append(f"import cycle between layers {', '.join(layers)}: {text}")
        elif frozenset(members) not in KNOWN_CYCLES:
            inside.append(f"import cycle inside {layers[0]}: {text}")
    return across, inside


@pytest.fixture(scope="module")
def installed() -> Graph:
    root = Path(tracebaton.__file__).parent
    return Graph(read_package(root, "tracebaton"))


def test_every_module_is_read_and_has_a_layer(installed: Graph) -> None:
    names = set(installed.modules)
    assert {"tracebaton", "tracebaton._embedded", "tracebaton.collector", "tracebaton.demo._run"} <= names
    for name in names:
        assert layer_of(name) in LAYERS
    lazy = [e for e in installed.edges if e.source == "tracebaton._cli" and layer_of(e.target) == "demo"]
    assert lazy, "the CLI's lazy import of the demo (inside a function) is an edge"


def test_layers_are_imported_the_allowed_way_only(installed: Graph) -> None:
    problems = direction_problems(installed)
    assert not problems, "\n".join(problems)


def test_no_import_cycle_spans_two_layers(installed: Graph) -> None:
    across, _ = cycle_problems(installed)
    assert not across, "\n".join(across)


def test_no_component_imports_another_ones_private_modules(installed: Graph) -> None:
    problems = private_imports(installed)
    assert not problems, "\n".join(problems)


def test_no_import_cycle_inside_a_layer(installed: Graph) -> None:
    _, inside = cycle_problems(installed)
    assert not inside, "\n".join(inside)
    gone = [sorted(c) for c in KNOWN_CYCLES if sorted(c) not in cycles(installed)]
    assert not gone, f"these cycles are gone: remove them from KNOWN_CYCLES: {gone}"


def test_the_facade_resolves_base_and_lazy_names_to_their_modules(installed: Graph) -> None:
    assert installed.defining_module("tracebaton", "StoreError") == "tracebaton._errors"
    assert installed.defining_module("tracebaton", "Collector") == "tracebaton._embedded"
    assert installed.defining_module("tracebaton", "Client") == "tracebaton.assertions._client"
    assert installed.defining_module("tracebaton", "__version__") == "tracebaton"
    assert not any(edge.source == "tracebaton" and layer_of(edge.target) != "core-base"
                   for edge in installed.edges), "the facade's eager part imports the base only"


# The checker on a package small enough to see every rule break.
FAKE = {
    "__init__.py": """
        from typing import TYPE_CHECKING
        from ._errors import StoreError
        if TYPE_CHECKING:
            from .assertions import Engine
        _LAZY = {"Engine": "tracebaton.assertions"}
        def __getattr__(name):
            import importlib
            from . import _cli  # the lazy loader: not an edge of the base layer
            return getattr(importlib.import_module(_LAZY[name]), name)
    """,
    "_errors.py": "class StoreError(Exception): ...\n",
    "_cli.py": "from tracebaton.assertions import Engine\n",
    "collector/__init__.py": "from ._store import Store\n",
    "collector/_store.py": """
        from tracebaton import StoreError
        class Store:
            def engine(self):
                from tracebaton.assertions._engine import Engine  # lazy, private, upwards
                return Engine
    """,
    "assertions/__init__.py": "from ._engine import Engine\n",
    "assertions/_engine.py": """
        from tracebaton.collector import Store
        from ..collector import _store
        class Engine: ...
    """,
    "demo/__init__.py": "from tracebaton import Engine\nfrom tracebaton._cli import main\n",
}


@pytest.fixture
def fake(tmp_path: Path) -> Graph:
    for name, text in FAKE.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(textwrap.dedent(text))
    return Graph(read_package(tmp_path, "tracebaton"))


def test_the_checker_reports_a_cycle_an_upward_import_and_private_imports(fake: Graph) -> None:
    assert set(direction_problems(fake)) == {
        "tracebaton.collector._store (line 5, layer collector) imports tracebaton.assertions._engine "
        "(layer assertions): collector may import only collector, core-base — the allowed direction "
        "is api → assertions → collector → core-base, core-app → anything",
    }
    assert cycle_problems(fake) == (
        ["import cycle between layers assertions, collector: tracebaton.assertions._engine → "
         "tracebaton.collector._store → tracebaton.assertions._engine"],
        [],
    )
    assert set(private_imports(fake)) == {
        "tracebaton.collector._store (line 5) imports tracebaton.assertions._engine, a private module of "
        "assertions: import it from its facade (tracebaton.assertions)",
        "tracebaton.assertions._engine (line 3) imports tracebaton.collector._store, a private module of "
        "collector: import it from its facade (tracebaton.collector)",
        "tracebaton.demo (line 2) imports tracebaton._cli, a private module of core: import it from its "
        "facade (tracebaton)",
    }


def test_the_checker_follows_facades_and_skips_what_never_runs(fake: Graph) -> None:
    edges = {(e.source, e.target) for e in fake.edges}
    assert ("tracebaton.collector._store", "tracebaton._errors") in edges, "through the facade to the base"
    assert ("tracebaton.demo", "tracebaton.assertions._engine") in edges, "through the lazy table"
    assert ("tracebaton.assertions._engine", "tracebaton.collector._store") in edges
    assert not any(e.source == "tracebaton" and e.target != "tracebaton._errors" for e in fake.edges), (
        "neither the TYPE_CHECKING import nor the lazy loader is an edge of the facade"
    )
