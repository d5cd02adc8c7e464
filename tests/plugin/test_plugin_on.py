"""With --mlgates: gates run, failures explain themselves, the summary and reports appear."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from mlgates import report, rubric

PASS_WARN_FAIL = """
import pytest
from gatelib import budget

@pytest.mark.mlgate("budget", rubric=("model-6",))
def test_pass(mlgates):
    result = mlgates.run(budget, 0.5)
    assert result.verdict == "pass"

@pytest.mark.mlgate("budget", warn_at=0.5)
def test_warn(mlgates):
    result = mlgates.run(budget, 0.75)
    assert result.verdict == "warn"

@pytest.mark.mlgate("budget")
def test_fail(mlgates):
    mlgates.run(budget, 3.25)
    raise AssertionError("not reached: a failing gate stops the test")

def test_plain():
    pass
"""


def test_on_with_the_flag_runs_gates_and_prints_the_summary(gate_project: pytest.Pytester) -> None:
    gate_project.makepyfile(test_gates=PASS_WARN_FAIL)
    result = gate_project.runpytest("-p", "no:cacheprovider", "--mlgates")
    result.assert_outcomes(passed=3, failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "mlgates: gates on; settings from defaults*",
            "*= mlgates summary =*",
            "gate*test*measured*threshold*verdict",
            "budget*test_gates.py::test_pass*0.5*<= 1*PASS",
            "budget*test_gates.py::test_warn*0.75*<= 1*WARN",
            "budget*test_gates.py::test_fail*3.25*<= 1*FAIL",
            "3 gate results: 1 pass, 1 warn, 1 fail",
            "ML Test Score (Breck et al. 2017): 0 *",
        ]
    )


def test_failing_gate_shows_its_explanation_without_a_traceback(
    gate_project: pytest.Pytester,
) -> None:
    gate_project.makepyfile(test_gates=PASS_WARN_FAIL)
    result = gate_project.runpytest("-p", "no:cacheprovider", "--mlgates", "-k", "fail")
    result.assert_outcomes(failed=1)
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "*_ test_fail _*",
            "[[]mlgates[]] budget: FAIL measured 3.25 (threshold <= 1)",
            "measured 3.25 against limit 1.0",
            "Next step: look at the slowest slice first",
        ]
    )
    text = result.stdout.str()
    assert "not reached" not in text
    assert "def test_fail" not in text  # no source listing: pytrace=False
    assert "gatelib.py" not in text
    assert "fixture.py" not in text


def test_warn_does_not_fail_but_shows(gate_project: pytest.Pytester) -> None:
    gate_project.makepyfile(test_gates=PASS_WARN_FAIL)
    result = gate_project.runpytest("-p", "no:cacheprovider", "--mlgates", "-k", "warn")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["budget*test_warn*WARN", "1 gate result: 1 warn"])


INCONCLUSIVE = """
from gatelib import unsure

def test_unsure(mlgates):
    mlgates.run(unsure, 40)
"""


@pytest.mark.parametrize(("policy", "outcome"), [("fail", "failed"), ("warn", "passed")])
def test_inconclusive_policy(gate_project: pytest.Pytester, policy: str, outcome: str) -> None:
    gate_project.makepyprojecttoml(f'[tool.mlgates]\ninconclusive = "{policy}"\n')
    gate_project.makepyfile(test_unsure=INCONCLUSIVE)
    result = gate_project.runpytest("-p", "no:cacheprovider", "--mlgates")
    result.assert_outcomes(**{outcome: 1})
    result.stdout.fnmatch_lines(["unsure*test_unsure*INCONCLUSIVE"])
    if policy == "fail":
        result.stdout.fnmatch_lines(["*only 40 rows: the interval straddles the margin"])


PRECEDENCE = """
import pytest
from gatelib import budget

def test_from_pyproject(mlgates):
    assert mlgates.run(budget, 0.1).threshold == 2.0

@pytest.mark.mlgate("budget", limit=3.0)
def test_marker_wins(mlgates):
    assert mlgates.run(budget, 0.1).threshold == 3.0

@pytest.mark.mlgate("budget", limit=3.0)
def test_call_wins(mlgates):
    assert mlgates.run(budget, 0.1, limit=4.0).threshold == 4.0

@pytest.mark.mlgate("budget", limit=3.0, settings={"n_requests": 7, "rows": 9})
def test_setting(mlgates):
    assert mlgates.setting("n_requests", 1) == 7  # marker settings
    assert mlgates.setting("rows", 1) == 9  # marker settings win over [tool.mlgates.settings]
    assert mlgates.setting("limit") == 3.0  # marker override of the gate's keyword

@pytest.mark.mlgate("budget")
def test_setting_from_config(mlgates):
    assert mlgates.setting("limit") == 2.0  # [tool.mlgates.budget]
    assert mlgates.setting("rows", 1) == 250  # [tool.mlgates.settings]
    assert mlgates.setting("missing", "default") == "default"
"""


def test_thresholds_precedence_call_over_marker_over_pyproject(
    gate_project: pytest.Pytester,
) -> None:
    gate_project.makepyprojecttoml(
        """
        [tool.mlgates]
        custom_gates = ["budget", "other"]

        [tool.mlgates.budget]
        limit = 2.0

        [tool.mlgates.settings]
        rows = 250
        """
    )
    gate_project.makepyfile(test_precedence=PRECEDENCE)
    result = gate_project.runpytest("-p", "no:cacheprovider", "--mlgates")
    result.assert_outcomes(passed=5)


def test_ini_threshold_lines_win_over_pyproject(gate_project: pytest.Pytester) -> None:
    gate_project.makepyprojecttoml(
        '[tool.mlgates]\ncustom_gates = ["budget"]\n[tool.mlgates.budget]\nlimit = 2.0\n'
    )
    gate_project.makeini(
        "[pytest]\nmlgates = true\nmlgates_thresholds =\n    budget.limit = 0.25\n"
    )
    gate_project.makepyfile(
        "from gatelib import budget\n\n"
        "def test_limit(mlgates):\n    assert mlgates.run(budget, 0.1).threshold == 0.25\n"
    )
    result = gate_project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_json_report_is_valid_against_its_schema(gate_project: pytest.Pytester) -> None:
    gate_project.makepyfile(test_gates=PASS_WARN_FAIL)
    gate_project.mkdir("out")
    result = gate_project.runpytest(
        "-p", "no:cacheprovider", "--mlgates", "--mlgates-report=out/gates.json"
    )
    assert result.ret == 1
    path = gate_project.path / "out" / "gates.json"
    result.stdout.fnmatch_lines([f"mlgates: wrote {path}"])
    doc = json.loads(path.read_text())
    assert report.validate(doc) == []
    assert doc["schema_version"] == report.SCHEMA_VERSION
    assert doc["exit_status"] == 1
    assert doc["summary"] == {
        "total": 3, "pass": 1, "warn": 1, "note": 0, "fail": 1, "inconclusive": 0,
        "error": 0, "skipped": 0,
    }  # fmt: skip
    assert [r["test"].split("::")[1] for r in doc["results"]] == [  # collection order
        "test_pass",
        "test_warn",
        "test_fail",
    ]
    assert [r["order"] for r in doc["results"]] == [0, 1, 2]
    passing = doc["results"][0]
    assert passing["rubric"] == ["monitor-6", "model-6"]  # gate's own ids, then the marker's
    assert passing["details"] == {"limit_used": 1.0}
    assert doc["results"][1]["params"] == {"warn_at": 0.5}  # what config/marker supplied
    assert doc["started_at"] <= doc["finished_at"]
    assert doc["environment"]["pytest"] == pytest.__version__
    assert set(doc["git"]) == {"commit", "dirty"}
    assert doc["rubric"]["points"]["model-6"] == 1.0
    assert doc["rubric"]["points"]["monitor-6"] == 1.0  # one pass among its results


def test_report_schema_rejects_a_broken_report(gate_project: pytest.Pytester) -> None:
    gate_project.makepyfile(test_gates=PASS_WARN_FAIL)
    gate_project.runpytest("-p", "no:cacheprovider", "--mlgates", "--mlgates-report=r.json")
    doc = json.loads((gate_project.path / "r.json").read_text())
    doc["results"][0]["verdict"] = "maybe"
    del doc["git"]
    doc["schema_version"] = "0.9"
    errors = report.validate(doc)
    assert "$: 'git' is a required property" in errors
    assert any(e.startswith("$.results[0].verdict: 'maybe' is not one of") for e in errors)
    assert f"$.schema_version: '{report.SCHEMA_VERSION}' was expected" in errors


def test_git_commit_recorded_when_in_a_repository(gate_project: pytest.Pytester) -> None:
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-c", "user.email=t@example.invalid", "-c", "user.name=t", *args],
            cwd=gate_project.path,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()

    gate_project.makepyfile(
        test_one="from gatelib import budget\n\ndef test_a(mlgates):\n"
        "    mlgates.run(budget, 0.1)\n"
    )
    git("init", "-q")
    git("add", "-A")
    git("commit", "-q", "-m", "x")
    head = git("rev-parse", "HEAD")
    gate_project.runpytest("-p", "no:cacheprovider", "--mlgates", "--mlgates-report=../r.json")
    doc = json.loads((gate_project.path.parent / "r.json").read_text())
    assert doc["git"] == {"commit": head, "dirty": False}


def test_markdown_summary_to_file_and_github_step_summary(
    gate_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    step = gate_project.path / "step.md"
    step.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    gate_project.makepyfile(test_gates=PASS_WARN_FAIL)
    result = gate_project.runpytest(
        "-p", "no:cacheprovider", "--mlgates", "--mlgates-markdown=summary.md"
    )
    assert result.ret == 1
    md = (gate_project.path / "summary.md").read_text()
    assert md.startswith("### mlgates: 3 gate results: 1 pass, 1 warn, 1 fail")
    assert "| verdict | gate | test | measured | threshold |" in md
    assert "| **FAIL** | budget | `test_gates.py::test_fail` | 3.25 | <= 1 |" in md
    assert "| PASS | budget | `test_gates.py::test_pass` | 0.5 | <= 1 |" in md
    assert "**ML Test Score**: 0" in md
    assert step.read_text() == "earlier step\n" + md  # appended, not overwritten


def test_junit_xml_carries_gate_properties(gate_project: pytest.Pytester) -> None:
    gate_project.makepyfile(test_gates=PASS_WARN_FAIL)
    gate_project.runpytest("-p", "no:cacheprovider", "--mlgates", "--junitxml=junit.xml")
    tree = ET.parse(gate_project.path / "junit.xml")
    props = {
        case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}
        for case in tree.iter("testcase")
    }
    assert props["test_fail"]["mlgates.budget.verdict"] == "fail"
    assert props["test_fail"]["mlgates.budget.measured"] == "3.25"
    assert props["test_fail"]["mlgates.budget.threshold"] == "1.0"
    assert props["test_pass"]["mlgates.budget.rubric"] == "monitor-6,model-6"
    assert props["test_warn"]["mlgates.budget.verdict"] == "warn"
    assert props["test_plain"] == {}


SCORED = """
import pytest
from mlgates.result import GateResult

def result(verdict, ids):
    return GateResult("g", verdict, 1.0, 1.0, "m", rubric=tuple(ids))

ALL = [f"{s}-{n}" for s in ("data", "model", "infra", "monitor") for n in range(1, 8)]

def test_everything_passes(mlgates):
    mlgates.check(result("pass", ALL[:3] + ALL[7:10] + ALL[14:16] + ALL[21:25]))

def test_a_warn(mlgates):
    mlgates.check(result("warn", ["data-4", "infra-3"]))

@pytest.mark.mlgate("g", rubric=("monitor-5",))
def test_marker_rubric(mlgates):
    mlgates.check(result("warn", []))
"""


def test_rubric_score_printed_from_gate_results(gate_project: pytest.Pytester) -> None:
    gate_project.makepyprojecttoml('[tool.mlgates]\nrubric_manual = ["model-4", "data-1"]\n')
    gate_project.makepyfile(test_scored=SCORED)
    result = gate_project.runpytest(
        "-p", "no:cacheprovider", "--mlgates", "-v", "--mlgates-report=r.json"
    )
    result.assert_outcomes(passed=3)
    # data: 1,2,3 pass (data-1 manual does not lower it) + data-4 warn = 3.5
    # model: 1,2,3 pass + model-4 manual 0.5 = 3.5 ; infra: 1,2 pass + infra-3 warn = 2.5
    # monitor: 1..4 pass + monitor-5 warn = 4.5 ; final = min = 2.5
    result.stdout.fnmatch_lines(
        [
            "ML Test Score (Breck et al. 2017): 2.5  (minimum over sections: "
            "data 3.5/7  model 3.5/7  infra 2.5/7  monitor 4.5/7)",
            f"  {rubric.interpret(2.5)}",
            "  not covered by any gate (12 of 28):",
            "    data-5: The data pipeline has appropriate privacy controls",
        ]
    )
    doc = json.loads((gate_project.path / "r.json").read_text())
    assert doc["rubric"]["final"] == 2.5
    assert doc["rubric"]["uncovered"] == [
        "data-5", "data-6", "data-7", "model-5", "model-6", "model-7",
        "infra-4", "infra-5", "infra-6", "infra-7", "monitor-6", "monitor-7",
    ]  # fmt: skip


def test_report_write_failure_is_reported_and_fails_the_run(gate_project: pytest.Pytester) -> None:
    # The path was writable at start-up (checked then); the directory goes during the run.
    gate_project.mkdir("blocker")
    gate_project.makepyfile(
        "import shutil\nfrom gatelib import budget\n\n"
        "def test_a(mlgates):\n    mlgates.run(budget, 0.1)\n    shutil.rmtree('blocker')\n"
    )
    result = gate_project.runpytest(
        "-p", "no:cacheprovider", "--mlgates", "--mlgates-report=blocker/r.json"
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["mlgates: could not write *blocker/r.json*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED
