"""No import cycle in src/: imports run one way, and a type two modules share lives below both.

What counts as an import (read with ``ast`` from the source, nothing is imported):

- **runtime** imports: module-level ``import``/``from ... import`` *and* imports inside
  functions. A lazy import inside a function is the usual way to hide a cycle (it only
  postpones the arrow to call time), so it counts like a module-level one. There is no
  exception for them: a module that needs a lazy import to avoid a cycle holds a piece that
  belongs lower down.
- **type-only** imports: those under ``if TYPE_CHECKING:``. They never run, so they are
  checked as a second graph (runtime + type-only): a cycle that closes only through a
  type-only arrow still means the shared type sits in the wrong room (it is how
  ``mlgates.fixture`` <-> ``mlgates.session`` hid).
- Only arrows between modules of src/ (``mlgates``, ``mlref``) count. ``from pkg import
  name`` is an arrow to ``pkg.name`` when that is a module, else to ``pkg`` (its
  ``__init__``). The implicit import of a parent package (``import a.b.c`` runs
  ``a/__init__``) is not an arrow: every submodule would then form a cycle with its own
  package's re-exports, which Python resolves by design and which says nothing about layering.

A failure names each cycle with the file and line of every arrow in it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGES = ("mlgates", "mlref")


@dataclass(frozen=True)
class Arrow:
    source: str
    target: str
    line: int
    kind: str  # "module", "lazy" (inside a function) or "type-only"

    def describe(self) -> str:
        path = module_path(self.source).relative_to(SRC.parent)
        return f"{self.source} -> {self.target} ({path}:{self.line}, {self.kind})"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def module_path(name: str) -> Path:
    base = SRC.joinpath(*name.split("."))
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def all_modules() -> dict[str, Path]:
    return {
        module_name(path): path for package in PACKAGES for path in (SRC / package).rglob("*.py")
    }


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterator[tuple[ast.Import | ast.ImportFrom, str]]:
    """Each import statement with its kind, walking into functions and TYPE_CHECKING blocks."""

    def walk(node: ast.AST, kind: str) -> Iterator[tuple[ast.Import | ast.ImportFrom, str]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                yield child, kind
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.body:
                    yield from walk(ast.Module(body=[stmt], type_ignores=[]), "type-only")
                for stmt in child.orelse:
                    yield from walk(ast.Module(body=[stmt], type_ignores=[]), kind)
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                yield from walk(child, "type-only" if kind == "type-only" else "lazy")
            else:
                yield from walk(child, kind)

    yield from walk(tree, "module")


def arrows_of(name: str, path: Path, modules: dict[str, Path]) -> list[Arrow]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    found: list[Arrow] = []
    for node, kind in _imports(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            if node.level:
                base_parts = name.split(".") if is_package else name.split(".")[:-1]
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                targets.append(sub if sub in modules else base)
        for target in targets:
            # `import a.b.c` names a.b.c; keep the longest prefix that is a module of src/
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.append(Arrow(name, target, node.lineno, kind))
    return found


def import_graph(*, with_type_only: bool) -> dict[str, list[Arrow]]:
    modules = all_modules()
    graph: dict[str, list[Arrow]] = {name: [] for name in modules}
    for name, path in modules.items():
        for arrow in arrows_of(name, path, modules):
            if with_type_only or arrow.kind != "type-only":
                graph[name].append(arrow)
    return graph


def cycles(graph: dict[str, list[Arrow]]) -> list[list[Arrow]]:
    """One shortest cycle through each strongly connected component with more than one module
    (Tarjan's algorithm for the components, then a breadth-first search inside each)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def connect(start: str) -> None:
        # iterative Tarjan: src/ is deep enough that recursion is not worth the risk
        work = [(start, iter(graph[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for arrow in edges:
                nxt = arrow.target
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(graph[nxt])))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component: set[str] = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        components.append(component)

    for name in sorted(graph):
        if name not in index:
            connect(name)

    found = []
    for component in components:
        start = min(component)
        # breadth-first from start back to start, inside the component
        previous: dict[str, Arrow] = {}
        frontier = [start]
        closing: Arrow | None = None
        while frontier and closing is None:
            next_frontier = []
            for node in frontier:
                for arrow in sorted(graph[node], key=lambda a: (a.target, a.line)):
                    if arrow.target == start:
                        closing = arrow
                        break
                    if arrow.target in component and arrow.target not in previous:
                        previous[arrow.target] = arrow
                        next_frontier.append(arrow.target)
                if closing is not None:
                    break
            frontier = next_frontier
        assert closing is not None
        path = [closing]
        while path[0].source != start:
            path.insert(0, previous[path[0].source])
        found.append(path)
    return found


def _unexpected(graph: dict[str, list[Arrow]]) -> list[str]:
    return ["\n  ".join(arrow.describe() for arrow in cycle) for cycle in cycles(graph)]


def test_runtime_imports_have_no_cycle() -> None:
    """Module-level and lazy (in-function) imports between modules of src/ form no cycle."""
    found = _unexpected(import_graph(with_type_only=False))
    assert not found, "import cycle(s) in src/; move the shared piece below both:\n" + "\n".join(
        f"- {text}" for text in found
    )


def test_type_only_imports_close_no_cycle() -> None:
    """With the ``TYPE_CHECKING`` imports added, still no cycle: a shared type lives below
    both modules that use it."""
    found = _unexpected(import_graph(with_type_only=True))
    assert not found, (
        "import cycle(s) in src/ through TYPE_CHECKING imports; move the shared type below "
        "both:\n" + "\n".join(f"- {text}" for text in found)
    )


def test_the_walker_sees_every_kind_of_arrow(tmp_path: Path) -> None:
    """The walker itself: a cycle hidden in a function or behind TYPE_CHECKING is found."""
    modules = {"mlref.a": tmp_path / "a.py", "mlref.b": tmp_path / "b.py", "mlref": tmp_path}
    (tmp_path / "a.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from mlref.b import B\n"
        "def f():\n    from . import b\n"
    )
    (tmp_path / "b.py").write_text("import mlref.a\n")
    kinds = {(a.target, a.kind) for a in arrows_of("mlref.a", modules["mlref.a"], modules)}
    assert kinds == {("mlref.b", "type-only"), ("mlref.b", "lazy")}
    graph = {
        "mlref.a": [Arrow("mlref.a", "mlref.b", 5, "lazy")],
        "mlref.b": [Arrow("mlref.b", "mlref.a", 1, "module")],
        "mlref.c": [Arrow("mlref.c", "mlref.a", 1, "module")],
    }
    assert [[a.source for a in cycle] for cycle in cycles(graph)] == [["mlref.a", "mlref.b"]]
    graph["mlref.b"] = []
    assert cycles(graph) == []
