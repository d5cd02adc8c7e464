"""code_coverage on coverage.py data whose truth is known: a small module run by a script
under ``coverage run --branch`` (a subprocess, so the test run's own measurement, if any,
is untouched), then judged against hand-counted lines and branches."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mlgates import GateInputError, code_coverage
from mlgates.gates.coverage import ranges

MODULE = textwrap.dedent(
    """\
    def sign(x):
        if x > 0:
            return 1
        if x < 0:
            return -1
        return 0


    def unused(x):
        y = x * 2
        return y
    """
)


def measure(tmp_path: Path, calls: str, *, branch: bool = True) -> Path:
    """Run ``calls`` against the module under coverage; returns the data file."""
    (tmp_path / "featmod.py").write_text(MODULE)
    (tmp_path / "run.py").write_text(f"import featmod\n{calls}\n")
    data = tmp_path / ".coverage"
    args = [sys.executable, "-m", "coverage", "run", f"--data-file={data}"]
    args += ["--branch"] if branch else []
    subprocess.run([*args, "run.py"], cwd=tmp_path, check=True, capture_output=True)
    return data


def test_fully_exercised_module_passes(tmp_path: Path) -> None:
    calls = "featmod.sign(1); featmod.sign(-1); featmod.sign(0); featmod.unused(1)"
    data = measure(tmp_path, calls)
    result = code_coverage(data, [str(tmp_path / "featmod.py")], min_line=1.0, min_branch=1.0)
    assert result.verdict == "pass", result.explain()
    assert result.measured == 1.0
    assert result.rubric == ("data-7",)


def test_uncovered_lines_and_partial_branches_are_named(tmp_path: Path) -> None:
    data = measure(tmp_path, "featmod.sign(1)")
    result = code_coverage(data, [str(tmp_path / "featmod.py")], code="model")
    assert result.verdict == "fail"
    assert result.rubric == ("infra-2",)
    # statements: def sign, if x>0, return 1, if x<0, return -1, return 0, def unused,
    # y = ..., return y -> 9; run: the two defs, if x>0, return 1 -> 4
    assert result.details["statements"] == 9
    assert result.measured == pytest.approx(4 / 9)
    row = result.details["modules"][0]
    assert row["missing_lines"] == [4, 5, 6, 10, 11]
    assert row["partial_lines"] == [2]  # x > 0 never false
    assert "lines 4-6, 10-11; partial branches at 2" in result.message
    assert "line coverage 44.4% < 90.0%" in result.message


def test_a_well_tested_module_cannot_hide_an_untested_one(tmp_path: Path) -> None:
    calls = "featmod.sign(1); featmod.sign(-1); featmod.sign(0); featmod.unused(1)"
    data = measure(tmp_path, calls)
    (tmp_path / "other.py").write_text("def f(x):\n    return x\n")  # never run: 0 of 2
    modules = [str(tmp_path / "featmod.py"), str(tmp_path / "other.py")]
    # totals: 9 of 11 lines (81.8%), every measured branch run
    totals_only = code_coverage(data, modules, min_line=0.8, min_branch=0.0, min_module_line=None)
    assert totals_only.verdict == "pass", totals_only.explain()
    assert totals_only.measured == pytest.approx(9 / 11)
    result = code_coverage(data, modules, min_line=0.8, min_branch=0.0, min_module_line=0.5)
    assert result.verdict == "fail"
    assert "other.py line coverage 0.0% < 50.0%" in result.message
    assert "featmod.py line coverage" not in result.message


def test_data_without_branches_cannot_pass(tmp_path: Path) -> None:
    calls = "featmod.sign(1); featmod.sign(-1); featmod.sign(0); featmod.unused(1)"
    data = measure(tmp_path, calls, branch=False)
    result = code_coverage(data, [str(tmp_path / "featmod.py")])
    assert result.verdict == "inconclusive"
    assert "--branch" in result.explain()


def test_missing_data_file_is_inconclusive(tmp_path: Path) -> None:
    (tmp_path / "featmod.py").write_text(MODULE)
    result = code_coverage(tmp_path / "nope", [str(tmp_path / "featmod.py")])
    assert result.verdict == "inconclusive"
    assert "coverage run --branch" in result.explain()


def test_dotted_module_names_resolve_to_their_files(tmp_path: Path) -> None:
    data = measure(tmp_path, "featmod.sign(1)")
    # mlgates.gates._common is not in this data: never run counts as all uncovered
    result = code_coverage(data, ["mlgates.gates._common"], min_line=0.0, min_branch=0.0)
    assert result.details["modules"][0]["file"].endswith("mlgates/gates/_common.py")
    assert result.details["modules"][0]["covered"] == 0


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"modules": []}, "modules"),
        ({"modules": ["no_such_module_xyz"]}, "modules"),
        ({"modules": ["mlgates.gates._common"], "min_line": 1.5}, "min_line"),
        ({"modules": ["mlgates.gates._common"], "code": "data"}, "code"),
        ({"modules": ["mlgates.gates._common"], "data": 3}, "data"),
    ],
)
def test_bad_input_names_the_argument(tmp_path: Path, kwargs: dict, named: str) -> None:
    kwargs = {"data": tmp_path / ".coverage", **kwargs}
    with pytest.raises(GateInputError, match=named):
        code_coverage(**kwargs)


def test_ranges() -> None:
    assert ranges([9, 1, 2, 3, 7, 10]) == "1-3, 7, 9-10"
    assert ranges([]) == ""
