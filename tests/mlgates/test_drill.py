"""new_feature_drill: runs the steps in order, names the first that needed more than the
definition, and never passes a drill whose step raised, returned False or a failing gate."""

from __future__ import annotations

import pytest

from mlgates import GateInputError, GateResult, new_feature_drill


def _gate(verdict: str) -> GateResult:
    return GateResult(
        name="feature_parity",
        verdict=verdict,
        measured=0.5,
        threshold=0.0,
        message="m",
        hint="more matched keys would settle it",
    )


def test_all_steps_succeeding_passes_and_runs_them_in_order() -> None:
    ran: list[str] = []
    steps = {
        "offline": lambda: ran.append("offline"),
        "online": lambda: ran.append("online"),
        "parity": lambda: _gate("pass"),
    }
    result = new_feature_drill(steps, feature="max_amount_7d")
    assert result.verdict == "pass"
    assert result.measured == 0.0
    assert ran == ["offline", "online"]
    assert result.details["passed_steps"] == ["offline", "online", "parity"]


def test_a_raising_step_fails_naming_it_and_later_steps_do_not_run() -> None:
    ran: list[str] = []

    def online() -> None:
        raise ValueError("aggregation 'median' is not supported")

    steps = {
        "offline": lambda: ran.append("offline"),
        "online": online,
        "feast": lambda: ran.append("feast"),
    }
    result = new_feature_drill(steps, feature="median_amount_7d")
    assert result.verdict == "fail"
    assert result.measured == 1.0
    assert result.details["failed_step"] == "online"
    assert "median" in result.details["error"]
    assert result.details["not_run"] == ["feast"]
    assert ran == ["offline"]
    assert "'online'" in result.message
    assert "median_amount_7d" in result.message
    assert result.rubric == ("data-6",)


@pytest.mark.parametrize(
    ("value", "verdict"),
    [
        (_gate("fail"), "fail"),
        (_gate("inconclusive"), "inconclusive"),
        (False, "fail"),
        (RuntimeError("hand code needed"), "fail"),
        (_gate("warn"), "pass"),
        (None, "pass"),
    ],
)
def test_given_results_decide_like_run_steps(value: object, verdict: str) -> None:
    result = new_feature_drill({"build": None, "parity": value})
    assert result.verdict == verdict
    if verdict != "pass":
        assert result.details["failed_step"] == "parity"
        assert result.details["passed_steps"] == ["build"]
    if verdict == "inconclusive":
        # says what would settle it: the step's own gate's hint
        assert result.hint.startswith("step 'parity' could not decide: ")
        assert "settle" in result.hint


@pytest.mark.parametrize("steps", [{}, [("a", None)]])
def test_bad_steps_are_input_errors(steps: object) -> None:
    with pytest.raises(GateInputError):
        new_feature_drill(steps)  # type: ignore[arg-type]
