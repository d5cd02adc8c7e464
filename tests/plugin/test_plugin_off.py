"""With the gates off (the default) the plugin costs nothing and writes nothing."""

from __future__ import annotations

import subprocess
import sys

import pytest

GATE_TESTS = """
import pytest
from gatelib import budget

@pytest.mark.mlgate("budget", limit=5.0)
def test_marked(mlgates):
    mlgates.run(budget, 99.0)

def test_uses_fixture_only(mlgates):
    mlgates.run(budget, 99.0)

def test_plain():
    assert True
"""


def _files(pytester: pytest.Pytester) -> set[str]:
    return {str(p.relative_to(pytester.path)) for p in pytester.path.rglob("*")}


def test_off_by_default_skips_gate_tests_with_the_fix_in_the_reason(
    gate_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate_project.makepyfile(test_gates=GATE_TESTS)
    summary = gate_project.path / "step_summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    before = _files(gate_project)
    result = gate_project.runpytest("-p", "no:cacheprovider", "-rs", "--strict-markers")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(["*SKIPPED*re-run with --mlgates*"])
    text = result.stdout.str()
    assert "mlgates summary" not in text
    assert "mlgates:" not in text  # no header line, no "wrote" line
    assert "ML Test Score" not in text
    new = _files(gate_project) - before
    assert {p for p in new if "__pycache__" not in p} == set()
    assert not summary.exists()


def test_off_run_prints_no_header_even_verbose(gate_project: pytest.Pytester) -> None:
    gate_project.makepyfile(test_gates=GATE_TESTS)
    result = gate_project.runpytest("-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=1, skipped=2)
    assert not [line for line in result.stdout.lines if line.startswith("mlgates")]


def test_strict_markers_pass_when_off(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.mlgate("anything", margin=0.1)
        def test_x():
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--strict-markers")
    result.assert_outcomes(skipped=1)
    assert result.ret == pytest.ExitCode.OK


def test_marker_is_listed(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(
        ["@pytest.mark.mlgate(name, rubric=(), settings={}, **overrides)*--mlgates*"]
    )


def test_report_option_without_gates_on_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "--mlgates-report=r.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--mlgates-report needs --mlgates*"])
    assert not (pytester.path / "r.json").exists()


def test_no_mlgates_wins_over_ini(gate_project: pytest.Pytester) -> None:
    gate_project.makeini("[pytest]\nmlgates = true\n")
    gate_project.makepyfile(test_gates=GATE_TESTS)
    gate_project.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1, failed=2)
    off = gate_project.runpytest("-p", "no:cacheprovider", "--no-mlgates")
    off.assert_outcomes(passed=1, skipped=2)


def test_entry_module_imports_no_numerics() -> None:
    code = (
        "import sys, mlgates.plugin\n"
        "heavy = [m for m in ('numpy', 'pandas', 'scipy', 'mlgates.session', 'mlgates.gates')"
        " if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_off_run_does_not_load_the_gate_machinery(
    gate_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A None entry in sys.modules makes any import of that module fail: an off run that
    # touched the machinery would error instead of passing.
    for module in ("mlgates.session", "mlgates.config", "mlgates.report", "mlgates.fixture"):
        monkeypatch.setitem(sys.modules, module, None)
    gate_project.makepyfile(test_gates=GATE_TESTS)
    result = gate_project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, skipped=2)
    on = gate_project.runpytest("-p", "no:cacheprovider", "--mlgates")
    assert on.ret == pytest.ExitCode.INTERNAL_ERROR  # proves the blocking bites when on
