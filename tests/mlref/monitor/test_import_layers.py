"""The monitor package's modules import one way: no cycle, not even through an import
inside a function (drift.py and report_html.py once imported each other)."""

from __future__ import annotations

import ast
from pathlib import Path

import mlref.monitor

PACKAGE = "mlref.monitor"


def _imports(path: Path) -> set[str]:
    """Every ``mlref.monitor.X`` module ``path`` imports, at any depth of the file."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == PACKAGE:  # from mlref.monitor import charts
                found |= {f"{PACKAGE}.{alias.name}" for alias in node.names}
            elif node.module.startswith(PACKAGE + "."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith(PACKAGE + ".")}
    return found


def test_monitor_modules_have_no_import_cycle() -> None:
    folder = Path(mlref.monitor.__file__).parent
    modules = {f"{PACKAGE}.{p.stem}": p for p in folder.glob("*.py") if p.stem != "__init__"}
    graph = {name: _imports(path) & set(modules) for name, path in modules.items()}
    assert graph[f"{PACKAGE}.report_html"], "the walk should see report_html's imports"

    def cycle_from(start: str) -> list[str] | None:
        stack = [(start, [start])]
        while stack:
            node, trail = stack.pop()
            for nxt in graph[node]:
                if nxt == start:
                    return [*trail, nxt]
                if nxt not in trail:
                    stack.append((nxt, [*trail, nxt]))
        return None

    cycles = [c for c in map(cycle_from, sorted(graph)) if c]
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_importing_the_monitor_does_not_import_matplotlib() -> None:
    # charts are drawn when a report is written, never at import (the package is imported
    # by the flywheel and the CLI; matplotlib costs seconds there)
    import subprocess
    import sys

    code = "import sys, mlref.monitor; print('matplotlib' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "False"
