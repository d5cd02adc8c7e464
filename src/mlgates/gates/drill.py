"""``new_feature_drill``: a new feature costs one definition (ML Test Score data-6).

The gate does not know any feature store. The project writes the drill as ordered steps
(build the offline rows, the online path, the store's objects, compare them ...), each run
on a temporary copy of its feature set with ONLY the new definition added; the gate runs
them in order and names the first step that needed more than the definition.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Mapping
from typing import Any

from mlgates.result import GateInputError, GateResult

_NAME = "new_feature_drill"


def _outcome(value: Any) -> tuple[str, str]:
    """(verdict, why) of one step's value: a step that returned or is a failed gate result,
    ``False`` or an exception needed more than the definition."""
    if isinstance(value, GateResult):
        if value.verdict in ("pass", "warn", "note"):
            return "pass", ""
        return value.verdict, f"its {value.name} gate says {value.verdict}: {value.message}"
    if isinstance(value, BaseException):
        return "fail", f"{type(value).__name__}: {value}"
    if value is False:
        return "fail", "the step returned False"
    return "pass", ""


def new_feature_drill(
    steps: Mapping[str, Callable[[], Any] | Any],
    *,
    feature: str = "",
) -> GateResult:
    """A new feature costs one definition: every step of adding it succeeds with nothing
    but that definition.

    ``steps`` maps step name -> a callable taking no arguments (run here, in order) or the
    step's result already computed. Each step is meant to run on a temporary copy of the
    feature set with only the new ``feature``'s definition added (no other code changed).
    How "needed more than the definition" is measured: a step needed more when it raises
    (or its given result is an exception), returns ``False``, or returns a gate result that
    does not pass (e.g. the offline vs online ``feature_parity`` of the new feature fails).
    The first such step fails the drill (an inconclusive gate result makes it inconclusive),
    named with its error; the steps after it are not run. Measured: steps that needed more
    than the definition (0 to pass).
    """
    if not isinstance(steps, Mapping):
        raise GateInputError(
            f"steps must be a mapping step name -> callable or result, got {type(steps).__name__}"
        )
    if not steps:
        raise GateInputError("steps is empty: give the drill's steps (offline, online, ...)")
    label = f"feature {feature!r}" if feature else "the new feature"
    done: list[str] = []
    checks: dict[str, str] = {}  # step -> the message of the gate result it returned
    for name, step in steps.items():
        if callable(step) and not isinstance(step, GateResult):
            try:
                value = step()
            except Exception as exc:  # the step's failure is the measurement
                value = exc
                tb = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            else:
                tb = ""
        else:
            value, tb = step, ""
        verdict, why = _outcome(value)
        if isinstance(value, GateResult):
            checks[str(name)] = f"{value.verdict}: {value.message}"
        if verdict == "pass":
            done.append(str(name))
            continue
        skipped = [str(s) for s in list(steps)[len(done) + 1 :]]
        return GateResult(
            name=_NAME,
            verdict="inconclusive" if verdict == "inconclusive" else "fail",
            measured=1.0 if verdict != "inconclusive" else None,
            threshold=0.0,
            direction="max",
            unit="steps",
            message=f"adding {label}: step {name!r} needed more than the definition ({why})",
            hint=(
                f"step {name!r} could not decide: "
                + (value.hint or "give its gate the data it asks for")
                if verdict == "inconclusive" and isinstance(value, GateResult)
                else f"make step {name!r} derive the feature from its definition (or support "
                "the definition's kind there), so that adding a feature is one definition"
            ),
            details={
                "failed_step": str(name),
                "error": tb or why,
                "passed_steps": done,
                "not_run": skipped,
                "checks": checks,
            },
            rubric=("data-6",),
        )
    return GateResult(
        name=_NAME,
        verdict="pass",
        measured=0.0,
        threshold=0.0,
        direction="max",
        unit="steps",
        message=f"adding {label}: all {len(done)} steps succeeded with only its definition",
        details={"passed_steps": done, "checks": checks},
        rubric=("data-6",),
    )
