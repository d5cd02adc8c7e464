"""dependency_drift (monitor-1) and capture_environment."""

from __future__ import annotations

import hashlib
import platform
from pathlib import Path

import numpy as np
import pytest

from mlgates import GateInputError, capture_environment, dependency_drift
from mlgates.gates import GATES

ROOT = Path(__file__).resolve().parents[2]


def _recorded() -> dict:
    return {
        "python": "3.12.3",
        "packages": {"numpy": "2.1.3", "xgboost": "2.1.1", "pandas": "2.2.3"},
        "lockfile_sha256": "a" * 64,
    }


def test_capture_reads_this_interpreter_and_hashes_the_lockfile() -> None:
    env = capture_environment(["numpy", "NumPy", "no-such-package-xyz"], lockfile=ROOT / "uv.lock")
    assert env["python"] == platform.python_version()
    assert env["packages"] == {"numpy": np.__version__, "no-such-package-xyz": None}
    assert env["lockfile_sha256"] == hashlib.sha256((ROOT / "uv.lock").read_bytes()).hexdigest()
    with pytest.raises(GateInputError, match="lockfile"):
        capture_environment(lockfile=ROOT / "missing.lock")


def test_same_environment_passes_and_defaults_to_this_interpreter() -> None:
    here = capture_environment(["numpy", "scipy"])
    result = dependency_drift(here)
    assert result.verdict == "pass", result.explain()
    assert result.rubric == ("monitor-1",)
    assert result.measured == 0


def test_faked_major_change_of_a_scoring_package_fails() -> None:
    current = _recorded()
    current["packages"] = {**current["packages"], "xgboost": "3.0.0"}
    result = dependency_drift(_recorded(), current)
    assert result.verdict == "fail"
    assert result.measured == 1
    assert "xgboost 2.1.1 -> 3.0.0" in result.message
    assert "revalidated_in" in result.explain()


def test_revalidation_in_the_current_environment_downgrades_to_warn() -> None:
    current = _recorded()
    current["packages"] = {**current["packages"], "xgboost": "3.0.0"}
    result = dependency_drift(_recorded(), current, revalidated_in=current)
    assert result.verdict == "warn"
    assert result.details["revalidated"] is True
    assert "re-validated in this environment: xgboost" in result.message
    stale = {"packages": {"xgboost": "3.0.1"}}  # re-validated with another version
    assert dependency_drift(_recorded(), current, revalidated_in=stale).verdict == "fail"


def test_minor_changes_other_packages_python_and_lockfile_warn() -> None:
    for change in (
        {"packages": {**_recorded()["packages"], "numpy": "2.2.0"}},
        {"packages": {**_recorded()["packages"], "pandas": "3.0.0"}},  # does not score
        {"python": "3.13.0"},
        {"lockfile_sha256": "b" * 64},
    ):
        result = dependency_drift(_recorded(), {**_recorded(), **change})
        assert result.verdict == "warn", change
        assert result.measured == 0


def test_zero_major_versions_count_the_minor_and_removal_fails() -> None:
    recorded = {"onnx": "0.17.1", "numpy": "2.1.3"}
    assert dependency_drift(recorded, {"onnx": "0.18.0", "numpy": "2.1.3"}).verdict == "fail"
    assert dependency_drift(recorded, {"onnx": "0.17.2", "numpy": "2.1.3"}).verdict == "warn"
    removed = dependency_drift(recorded, {"numpy": "2.1.3"})
    assert removed.verdict == "fail"
    assert "onnx 0.17.1 -> (absent)" in removed.message


def test_score_packages_is_configurable_and_names_normalised() -> None:
    recorded = {"Scikit_Learn": "1.5.2"}
    current = {"scikit-learn": "2.0.0"}
    assert dependency_drift(recorded, current).verdict == "fail"
    assert dependency_drift(recorded, current, score_packages=["numpy"]).verdict == "warn"


@pytest.mark.parametrize(
    ("recorded", "match"),
    [
        ([("numpy", "2.0")], "recorded must be a mapping"),
        ({}, "no packages"),
        ({"numpy": 2}, "version of 'numpy'"),
        ({"packages": ["numpy"]}, "packages"),
    ],
)
def test_bad_input_names_the_argument(recorded: object, match: str) -> None:
    with pytest.raises(GateInputError, match=match):
        dependency_drift(recorded, {"numpy": "2.0"})  # type: ignore[arg-type]


def test_registered() -> None:
    assert GATES["dependency_drift"] is dependency_drift
