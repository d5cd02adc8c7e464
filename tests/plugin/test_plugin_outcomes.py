"""Nothing hidden from the summary and the reports: gate tests that errored or were skipped,
notes (a gate with nothing to judge), a marker naming another gate, the table's units."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from mlgates import report, rubric
from mlgates.result import GateResult

OUTCOMES = """
import pytest
from gatelib import budget
from mlgates.result import GateInputError

@pytest.fixture
def broken_fixture():
    raise RuntimeError("feature store unreachable at 127.0.0.1:6566")

@pytest.mark.mlgate("budget", rubric=("model-6",))
def test_passes(mlgates):
    mlgates.run(budget, 0.5)

@pytest.mark.mlgate("budget", rubric=("infra-4",))
def test_setup_error(mlgates, broken_fixture):
    mlgates.run(budget, 0.5)

@pytest.mark.mlgate("budget")
def test_raises_before_its_gate(mlgates):
    frame = {}
    mlgates.run(budget, frame["latency"])

@pytest.mark.mlgate("budget")
def test_input_error(mlgates):
    def budget(x):
        raise GateInputError("column 'amount' is missing")
    mlgates.run(budget, 1)

@pytest.mark.mlgate("budget")
def test_skipped(mlgates):
    pytest.skip("no GPU on this runner")

@pytest.mark.mlgate("budget")
@pytest.mark.skipif(True, reason="needs the nightly data")
def test_skipif(mlgates):
    mlgates.run(budget, 0.5)

@pytest.mark.mlgate("budget")
def test_fails_after_its_gate(mlgates):
    result = mlgates.run(budget, 0.5)
    assert result.measured == 0.25, "the slice count was wrong"
"""

NAMES = [
    "test_passes",
    "test_setup_error",
    "test_raises_before_its_gate",
    "test_input_error",
    "test_skipped",
    "test_skipif",
    "test_fails_after_its_gate",
]


def _run_outcomes(gate_project: pytest.Pytester, *args: str) -> pytest.RunResult:
    gate_project.makepyfile(test_outcomes=OUTCOMES)
    return gate_project.runpytest(
        "-p",
        "no:cacheprovider",
        "--mlgates",
        "--mlgates-report=r.json",
        "--mlgates-markdown=summary.md",
        "--junitxml=junit.xml",
        *args,
    )


def test_errored_and_skipped_gate_tests_appear_everywhere_with_the_reason(
    gate_project: pytest.Pytester,
) -> None:
    result = _run_outcomes(gate_project)
    result.assert_outcomes(passed=1, failed=3, errors=1, skipped=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # errors still fail the run

    # terminal: every gate test has a row, in test order, with its reason under it
    result.stdout.fnmatch_lines(
        [
            "*= mlgates summary =*",
            "budget*test_outcomes.py::test_passes*0.5*<= 1*PASS",
            "budget*test_outcomes.py::test_setup_error*-*-*ERROR",
            "*error in setup (the test did not run): RuntimeError: feature store unreachable at*",
            "*test_outcomes.py:7)",
            "budget*test_outcomes.py::test_raises_before_its_gate*ERROR",
            "*the test raised before its gate returned: KeyError: 'latency'*",
            "budget*test_outcomes.py::test_input_error*ERROR",
            "*column 'amount' is missing*",
            "budget*test_outcomes.py::test_skipped*SKIPPED",
            "*no GPU on this runner*",
            "budget*test_outcomes.py::test_skipif*SKIPPED",
            "*needs the nightly data*",
            "budget*test_outcomes.py::test_fails_after_its_gate*0.5*PASS",
            "budget*test_outcomes.py::test_fails_after_its_gate*ERROR",
            "*the test failed after its gate returned: AssertionError: the slice count was wrong (at*",
            "8 gate results: 2 pass, 4 error, 2 skipped",
        ]
    )

    doc = json.loads((gate_project.path / "r.json").read_text())
    assert report.validate(doc) == []
    assert doc["summary"]["total"] == 8
    assert (doc["summary"]["error"], doc["summary"]["skipped"]) == (4, 2)
    rows = [(r["test"].split("::")[1], r["verdict"]) for r in doc["results"]]
    assert rows == [
        ("test_passes", "pass"),
        ("test_setup_error", "error"),
        ("test_raises_before_its_gate", "error"),
        ("test_input_error", "error"),
        ("test_skipped", "skipped"),
        ("test_skipif", "skipped"),
        ("test_fails_after_its_gate", "pass"),
        ("test_fails_after_its_gate", "error"),
    ]
    setup_error = doc["results"][1]
    assert setup_error["name"] == "budget"
    assert setup_error["passed"] is False
    assert "feature store unreachable" in setup_error["message"]
    assert setup_error["details"] == {"when": "setup"}
    assert setup_error["rubric"] == ["infra-4"]  # the marker's claim, which earned nothing
    assert doc["rubric"]["points"]["infra-4"] == 0
    assert "infra-4" in doc["rubric"]["covering"]  # shown as covered but not passing
    assert doc["results"][4]["message"] == "no GPU on this runner"

    md = (gate_project.path / "summary.md").read_text()
    assert md.startswith("### mlgates: 8 gate results: 2 pass, 4 error, 2 skipped")
    assert "| **ERROR** | budget | `test_outcomes.py::test_setup_error` | - | - |" in md
    assert "| SKIPPED | budget | `test_outcomes.py::test_skipif` | - | - |" in md
    assert "- SKIPPED `test_outcomes.py::test_skipif`: needs the nightly data" in md
    assert "- ERROR `test_outcomes.py::test_input_error`: " in md

    tree = ET.parse(gate_project.path / "junit.xml")
    props = {
        case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}
        for case in tree.iter("testcase")
    }
    assert set(props) == set(NAMES)
    assert props["test_setup_error"]["mlgates.budget.verdict"] == "error"
    assert "feature store unreachable" in props["test_setup_error"]["mlgates.budget.reason"]
    assert props["test_skipped"]["mlgates.budget.verdict"] == "skipped"
    assert props["test_skipped"]["mlgates.budget.reason"] == "no GPU on this runner"
    assert props["test_input_error"]["mlgates.budget.verdict"] == "error"


def test_every_gate_test_is_in_the_step_summary_when_all_error(
    gate_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    step = gate_project.path / "step.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    gate_project.makepyfile(
        test_broken="""
        import pytest

        @pytest.mark.mlgate("budget")
        def test_one(mlgates):
            raise RuntimeError("server did not start")

        @pytest.mark.mlgate("budget")
        def test_two(mlgates):
            raise RuntimeError("server did not start")
        """
    )
    result = gate_project.runpytest("-p", "no:cacheprovider", "--mlgates")
    result.assert_outcomes(failed=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    text = step.read_text()
    assert text.startswith("### mlgates: 2 gate results: 2 error")
    assert text.count("RuntimeError: server did not start") == 2


def test_a_gate_that_fails_its_test_is_not_also_an_error(gate_project: pytest.Pytester) -> None:
    gate_project.makepyfile(
        "from gatelib import budget\n\ndef test_a(mlgates):\n    mlgates.run(budget, 5.0)\n"
    )
    result = gate_project.runpytest("-p", "no:cacheprovider", "--mlgates")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["1 gate result: 1 fail"])


def test_a_test_that_records_its_verdict_then_skips_is_one_row(
    gate_project: pytest.Pytester,
) -> None:
    # e.g. a latency gate test that records INCONCLUSIVE (the machine was starved) and skips:
    # the recorded verdict, with its reason, is the test's row; not a second SKIPPED one
    gate_project.makepyfile(
        """
import contextlib
import pytest
from gatelib import budget

@pytest.mark.mlgate("budget")
def test_starved(mlgates):
    with contextlib.suppress(pytest.fail.Exception):
        mlgates.run(budget, 5.0)
    pytest.skip("machine starved the measurement")
"""
    )
    result = gate_project.runpytest(
        "-p", "no:cacheprovider", "--mlgates", "--mlgates-report=r.json"
    )
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["1 gate result: 1 fail"])
    doc = json.loads((gate_project.path / "r.json").read_text())
    assert [r["verdict"] for r in doc["results"]] == ["fail"]


def test_errors_and_skips_come_back_from_xdist_workers(gate_project: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    result = _run_outcomes(gate_project, "-p", "xdist", "-n", "2")
    result.assert_outcomes(passed=1, failed=3, errors=1, skipped=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    doc = json.loads((gate_project.path / "r.json").read_text())
    assert [r["test"].split("::")[1] for r in doc["results"]] == [*NAMES, NAMES[-1]]
    assert doc["summary"]["error"] == 4
    assert result.stdout.str().count("= mlgates summary =") == 1


# ------------------------------------------------------------------ a marker for another gate

MISMATCH = """
import pytest
from gatelib import budget, unsure

@pytest.mark.mlgate("unsure", n_rows=10)
def test_marked_for_another_gate(mlgates):
    mlgates.run(budget, 0.5)

@pytest.mark.mlgate("budget", limit=2.0)
def test_checks_a_result_it_computed(mlgates):
    mlgates.check(unsure(40))
"""


def test_a_marker_naming_another_gate_is_a_usage_error_naming_both(
    gate_project: pytest.Pytester,
) -> None:
    gate_project.makepyprojecttoml('[tool.mlgates]\ncustom_gates = ["budget", "unsure"]\n')
    gate_project.makepyfile(test_mismatch=MISMATCH)
    result = gate_project.runpytest("-p", "no:cacheprovider", "--mlgates", "-rf")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*[[]mlgates[]] usage error: test_mismatch.py::test_marked_for_another_gate is "
            "marked @pytest.mark.mlgate('unsure') but runs mlgates.run(budget, ...)*'unsure', "
            "not 'budget'*",
        ]
    )
    # the gate never ran with the wrong thresholds; the test is listed as an error
    result.stdout.fnmatch_lines(["unsure*test_marked_for_another_gate*ERROR"])
    # mlgates.check(result) keeps its meaning: it records whatever result it is given
    result.stdout.fnmatch_lines(["unsure*test_checks_a_result_it_computed*INCONCLUSIVE"])
    assert "budget: PASS" not in result.stdout.str()


# ------------------------------------------------------------------ notes

NOTE = """
import pytest
from mlgates.result import GateResult

def first_deploy(score):
    return GateResult(
        name="first_deploy", verdict="note", measured=score, threshold=None,
        message="first deploy: no champion to compare against", rubric=("infra-4",),
    )

@pytest.mark.mlgate("first_deploy", rubric=("model-6",))
def test_first_deploy(mlgates):
    result = mlgates.run(first_deploy, 0.99)
    assert result.passed  # a note does not block a promotion
"""


def test_a_note_does_not_fail_and_earns_nothing(gate_project: pytest.Pytester) -> None:
    gate_project.makepyprojecttoml('[tool.mlgates]\ncustom_gates = ["first_deploy"]\n')
    gate_project.makepyfile(test_note=NOTE)
    result = gate_project.runpytest(
        "-p",
        "no:cacheprovider",
        "--mlgates",
        "--mlgates-report=r.json",
        "--mlgates-markdown=s.md",
        "--junitxml=j.xml",
    )
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "first_deploy*test_note.py::test_first_deploy*0.99*NOTE",
            "*first deploy: no champion to compare against",
            "1 gate result: 1 note",
            "ML Test Score (Breck et al. 2017): 0  (minimum over sections: "
            "data 0/7  model 0/7  infra 0/7  monitor 0/7)",
        ]
    )
    doc = json.loads((gate_project.path / "r.json").read_text())
    assert report.validate(doc) == []
    (note,) = doc["results"]
    assert note["verdict"] == "note"
    assert note["passed"] is True
    assert note["rubric"] == []  # neither the gate's infra-4 nor the marker's model-6
    assert doc["summary"]["note"] == 1
    assert sum(doc["rubric"]["points"].values()) == 0
    assert doc["rubric"]["covering"] == {}
    assert (
        "| NOTE | first_deploy | `test_note.py::test_first_deploy` | 0.99 | - |"
        in (gate_project.path / "s.md").read_text()
    )
    tree = ET.parse(gate_project.path / "j.xml")
    props = {p.get("name"): p.get("value") for p in tree.iter("property")}
    assert props["mlgates.first_deploy.verdict"] == "note"
    assert props["mlgates.first_deploy.rubric"] == ""


def test_rubric_counts_only_what_results_earned() -> None:
    results = [
        {"name": "no_worse", "verdict": "note", "rubric": ["model-6", "infra-4"]},
        {"name": "x", "verdict": "error", "rubric": ["data-1"]},
        {"name": "y", "verdict": "skipped", "rubric": ["data-2"]},
    ]
    s = rubric.score(results)
    assert sum(s.points.values()) == 0
    assert "model-6" in s.uncovered  # a note tested nothing
    assert "infra-4" in s.uncovered
    assert s.covering == {"data-1": ["x"], "data-2": ["y"]}  # covered, not passing


def test_a_note_passes_without_being_a_pass() -> None:
    note = GateResult("g", "note", 0.9, None, "first deploy: nothing to compare against")
    assert note.passed
    assert note.explain().startswith("[mlgates] g: NOTE measured 0.9")


# ------------------------------------------------------------------ units in the table


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "0 s"),
        (45.25, "45.2 s"),
        (119.0, "119 s"),
        (150.0, "2.5 min"),
        (5400.0, "90 min"),
        (86400.0, "24 h"),
        (93784.0, "26.1 h"),
        (3 * 86400.0, "3 d"),
        (400 * 86400.0, "400 d"),
    ],
)
def test_durations_read_in_s_min_h_d(seconds: float, text: str) -> None:
    from mlgates.result import format_duration

    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("value", "unit", "total", "text"),
    [
        (2057.0, " rows", 2058, "2,057 of 2,058 rows"),
        (3.0, " rows", None, "3 rows"),
        (12.0, " entities", 1500, "12 of 1,500 entities"),
        (93784.0, " s", None, "26.1 h"),
        (12.3456, " ms", None, "12.3456 ms"),
        (2500.0, " ms", None, "2.5 s"),
        (0.69, " USD/1M", None, "0.69 USD/1M"),
        (0.0123, "", None, "0.0123"),
        ("inf", " rows", None, "inf rows"),
        (None, " s", None, "-"),
    ],
)
def test_values_are_formatted_by_unit(
    value: object, unit: str, total: int | None, text: str
) -> None:
    from mlgates.result import format_value

    assert format_value(value, unit, total) == text


UNITS = """
from mlgates.result import GateResult

def test_stale(mlgates):
    mlgates.check(GateResult(
        name="freshness", verdict="warn", measured=93784.0, threshold=86400.0,
        direction="max", unit=" s", message="stale-ish",
    ))

def test_schema(mlgates):
    mlgates.check(GateResult(
        name="schema_gate", verdict="warn", measured=2057.0, threshold=0.0, direction="max",
        unit=" rows", message="rows break the contract", details={"rows": 2058},
    ))
"""


def test_summary_table_shows_durations_and_counts_with_their_total(
    gate_project: pytest.Pytester,
) -> None:
    gate_project.makepyfile(test_units=UNITS)
    result = gate_project.runpytest(
        "-p", "no:cacheprovider", "--mlgates", "--mlgates-markdown=m.md"
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "freshness*test_units.py::test_stale*26.1 h*<= 24 h*WARN",
            "schema_gate*test_units.py::test_schema*2,057 of 2,058 rows*<= 0 rows*WARN",
        ]
    )
    md = (gate_project.path / "m.md").read_text()
    assert "| 2,057 of 2,058 rows | <= 0 rows |" in md


def test_long_test_ids_are_wrapped_whole_in_the_terminal(
    gate_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    name = "test_" + "very_long_name_" * 8
    gate_project.makepyfile(
        **{
            "test_wrap": f"from gatelib import budget\n\ndef {name}(mlgates):\n"
            "    mlgates.run(budget, 0.5)\n"
        }
    )
    result = gate_project.runpytest("-p", "no:cacheprovider", "--mlgates")
    result.assert_outcomes(passed=1)
    lines = result.stdout.lines
    start = next(i for i, line in enumerate(lines) if line.startswith("budget  "))
    assert lines[start].split() == ["budget", "0.5", "<=", "1", "PASS"]
    id_lines = []
    for line in lines[start + 1 :]:
        if not line.startswith("  "):
            break
        id_lines.append(line)
    assert all(len(line) <= 80 for line in id_lines)
    assert "".join(line.strip() for line in id_lines) == f"test_wrap.py::{name}"
