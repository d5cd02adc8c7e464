"""Mutation proofs of the online half's gates (tests/gates/test_online_gates.py), each run
through the gate test's own helpers (the module loaded by path) next to its clean counterpart:

- dependency_drift: the champion's recorded environment passes; the same record with a faked
  major-version change of a package that computes scores (xgboost one major behind: a model
  trained under another xgboost than the one serving it) fails naming the package, and the
  server's metric says fail.
"""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from mlref.pipeline import ReferenceSystem
    from mlref.settings import Settings


def gate_suite(name: str) -> ModuleType:
    """``tests/gates/<name>.py`` as a module (test modules are not importable by name)."""
    path = Path(__file__).parents[1] / "gates" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"mlref_gate_suite_{name}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def online_gates() -> ModuleType:
    return gate_suite("test_online_gates")


def _major_behind(version: str) -> str:
    major, _, rest = version.partition(".")
    return f"{max(int(major) - 1, 0) if int(major) > 0 else 1}.{rest or '0'}"


def test_faked_major_version_change_fails_dependency_drift(
    online_gates: ModuleType, ref_settings: Settings, reference_system: ReferenceSystem
) -> None:
    from mlref.serve.metrics import ScrapeState, ServingMetrics, parse_metrics

    recorded = online_gates.champion_environment(ref_settings)
    clean = online_gates.dependency_result(recorded)
    assert clean.verdict == "pass", clean.explain()

    faked = copy.deepcopy(recorded)
    real = faked["packages"]["xgboost"]
    faked["packages"]["xgboost"] = _major_behind(real)
    result = online_gates.dependency_result(faked)
    assert result.verdict == "fail", result.explain()
    assert result.measured == 1
    assert f"xgboost {faked['packages']['xgboost']} -> {real}" in result.message

    metrics = ServingMetrics()  # what the server exposes after that check at start
    metrics.set_dependency_drift(result.verdict, int(result.measured))
    text = metrics.render(ScrapeState(0, 0, True, "1", None, 0)).decode()
    assert parse_metrics(text)['mlref_dependency_drift{verdict="fail"}'] == 1.0
