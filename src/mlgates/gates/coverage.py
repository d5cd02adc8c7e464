"""code_coverage: line and branch coverage of named modules from coverage.py data.

coverage.py is imported here only (``pip install 'mlgates[coverage]'``). The figures are
coverage.py's own (its JSON report over the named files), so the gate agrees with what
``coverage report`` prints for them.
"""

from __future__ import annotations

import importlib.util
import json
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from mlgates.gates._common import as_list, pct
from mlgates.result import GateInputError, GateResult, Verdict

#: uncovered line ranges listed per module in the message
MAX_RANGES = 12


def _import_coverage() -> Any:
    try:
        import coverage
    except ImportError as exc:  # pragma: no cover - optional dependency
        raise GateInputError(
            "code_coverage needs coverage.py: pip install 'mlgates[coverage]'"
        ) from exc
    return coverage


def _module_file(module: str) -> Path:
    """A file path as given, or the source file of a dotted module name."""
    path = Path(module)
    if path.suffix == ".py" or path.exists():
        if not path.is_file():
            raise GateInputError(f"modules: no file at {path}")
        return path.resolve()
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError) as exc:
        raise GateInputError(f"modules: cannot find module {module!r}: {exc}") from exc
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        raise GateInputError(f"modules: {module!r} is not a Python source module")
    return Path(spec.origin).resolve()


def ranges(lines: Iterable[int]) -> str:
    """``[1, 2, 3, 7, 9, 10]`` -> ``"1-3, 7, 9-10"``."""
    out: list[str] = []
    run: list[int] = []
    for n in sorted(lines):
        if run and n == run[-1] + 1:
            run.append(n)
            continue
        if run:
            out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [n]
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ", ".join(out)


def code_coverage(
    data: Any,
    modules: Iterable[str],
    *,
    code: Literal["features", "model"] = "features",
    min_line: float = 0.9,
    min_branch: float = 0.8,
    min_module_line: float | None = 0.8,
) -> GateResult:
    """Line and branch coverage of ``modules`` (files or dotted names) in coverage.py ``data``.

    ``data`` is a coverage data file (``.coverage``, from ``coverage run --branch`` or
    pytest-cov with ``--cov-branch``; combine parallel/xdist files first with ``coverage
    combine``) or a live ``coverage.Coverage`` object (``coverage.Coverage.current()`` inside
    a measured run). Totals over the named modules must reach ``min_line`` (covered
    statements / statements) and ``min_branch`` (covered branches / branches; data
    measured without branches is inconclusive for it), and each module on its own must
    reach ``min_module_line`` (None: totals only), so a well-tested module cannot hide
    one whose tests are missing. A module the run never imported counts as all
    uncovered. Measured: line coverage; the message names each module's
    uncovered lines and partial branches. A missing data file is inconclusive.

    ``code`` says what the modules are, and so which ML Test Score item the result
    automates: ``"features"`` (feature code: data-7, "All input feature code is tested")
    or ``"model"`` (model specification/training code: infra-2, "Model specification code
    is unit tested").
    """
    coverage = _import_coverage()
    names = as_list(modules)
    if not names:
        raise GateInputError("modules is empty: name the modules whose tests are gated")
    floors = [("min_line", min_line), ("min_branch", min_branch)]
    if min_module_line is not None:
        floors.append(("min_module_line", min_module_line))
    for key, value in floors:
        if not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
            raise GateInputError(f"{key} must be a share in [0, 1], got {value!r}")
    if code not in ("features", "model"):
        raise GateInputError(f"code must be 'features' or 'model', got {code!r}")
    rubric = ("data-7",) if code == "features" else ("infra-2",)
    files = [_module_file(m) for m in names]

    if isinstance(data, coverage.Coverage):
        cov = data
    elif isinstance(data, (str, Path)):
        path = Path(data)
        if not path.is_file():
            return GateResult(
                name="code_coverage",
                verdict="inconclusive",
                measured=None,
                threshold=float(min_line),
                message=f"no coverage data at {path}: the run was not measured",
                hint=(
                    "run the tests under coverage with branches (`coverage run --branch -m "
                    "pytest`, or pytest-cov `--cov --cov-branch`; `coverage combine` parallel "
                    "files) and pass the data file"
                ),
                details={"data_file": str(path)},
                rubric=rubric,
            )
        cov = coverage.Coverage(data_file=str(path))
        cov.load()
    else:
        raise GateInputError(
            f"data must be a coverage data file or a coverage.Coverage, got {type(data).__name__}"
        )
    has_arcs = bool(cov.get_data().has_arcs())
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "coverage.json"
        try:
            cov.json_report(morfs=[str(f) for f in files], outfile=str(out), ignore_errors=False)
        except coverage.exceptions.NoDataError as exc:
            raise GateInputError(f"data holds no measurements: {exc}") from exc
        report = json.loads(out.read_text())
    by_file = {str(Path(k).resolve()): v for k, v in report.get("files", {}).items()}

    rows: list[dict[str, Any]] = []
    for name, file in zip(names, files, strict=True):
        entry = by_file.get(str(file))
        if entry is None:
            raise GateInputError(f"modules: coverage.py reported nothing for {name} ({file})")
        summary = entry["summary"]
        missing = list(entry.get("missing_lines") or [])
        # a branch is partial where its line ran but not every way out of it did (lines
        # that never ran are already listed as missing)
        missing_arcs = [a for a in entry.get("missing_branches") or [] if a[0] not in missing]
        rows.append(
            {
                "module": name,
                "file": str(file),
                "statements": int(summary["num_statements"]),
                "covered": int(summary["covered_lines"]),
                "missing_lines": missing,
                "branches": int(summary.get("num_branches", 0)),
                "covered_branches": int(summary.get("covered_branches", 0)),
                "partial_lines": sorted({int(a[0]) for a in missing_arcs}),
            }
        )
    statements = sum(r["statements"] for r in rows)
    covered = sum(r["covered"] for r in rows)
    branches = sum(r["branches"] for r in rows)
    covered_branches = sum(r["covered_branches"] for r in rows)
    line_share = covered / statements if statements else 1.0
    branch_share = covered_branches / branches if branches else 1.0
    details: dict[str, Any] = {
        "modules": rows,
        "line": line_share,
        "branch": branch_share if has_arcs else None,
        "statements": statements,
        "branches": branches,
        "min_line": float(min_line),
        "min_branch": float(min_branch),
        "min_module_line": None if min_module_line is None else float(min_module_line),
    }
    problems = []
    if line_share < min_line:
        problems.append(f"line coverage {pct(line_share)} < {pct(min_line)}")
    if has_arcs and branch_share < min_branch:
        problems.append(f"branch coverage {pct(branch_share)} < {pct(min_branch)}")
    if min_module_line is not None:
        for r in rows:
            share = r["covered"] / r["statements"] if r["statements"] else 1.0
            if share < min_module_line:
                problems.append(
                    f"{r['module']} line coverage {pct(share)} < {pct(min_module_line)}"
                )
    gaps = "; ".join(
        f"{r['module']}: lines {ranges(r['missing_lines'])[:400] or '-'}"
        + (
            f"; partial branches at {ranges(r['partial_lines'])[:200]}"
            if r["partial_lines"]
            else ""
        )
        for r in rows
        if r["missing_lines"] or r["partial_lines"]
    )
    headline = f"{len(rows)} module(s): {pct(line_share)} of {statements} lines" + (
        f", {pct(branch_share)} of {branches} branches" if has_arcs else ""
    )
    # the figures are the same whatever the verdict: one result, built once
    verdict: Verdict
    if problems:
        verdict = "fail"
        message = f"{headline}: {'; '.join(problems)}. Uncovered: {gaps}"
        hint = "write tests that run the uncovered lines and both sides of the partial branches"
    elif not has_arcs:
        verdict = "inconclusive"
        message = f"{headline}; the data has no branch measurements"
        hint = "measure with branches (`coverage run --branch`, pytest-cov `--cov-branch`)"
    else:
        verdict = "pass"
        message = headline + (f". Uncovered: {gaps}" if gaps else "")
        hint = ""
    return GateResult(
        name="code_coverage",
        verdict=verdict,
        measured=line_share,
        threshold=float(min_line),
        direction="min",
        message=message,
        hint=hint,
        details=details,
        rubric=rubric,
    )
