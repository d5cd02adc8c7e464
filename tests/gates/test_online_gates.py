"""The online half's gates enforced against mlref (issue 17): what the served champion runs on
and what it serves, against what it was trained and validated with.

- dependency_drift (monitor-1): the environment training recorded with the champion (the
  ``mlref.environment`` run tag, ``mlref.train.provenance``) against this interpreter, and
  the same comparison as the session's server made it at start (``/metrics``).

The mutation proofs (tests/mutations/test_online_gates.py) run the helpers of this module on
the defect each gate exists for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from mlgates.fixture import Gates
    from mlgates.result import GateResult
    from mlref.pipeline import ReferenceSystem
    from mlref.settings import Settings


def champion_environment(settings: Settings) -> dict[str, Any]:
    """The environment recorded with the registry's champion (a fresh copy: callers may
    change it)."""
    from mlref.train.provenance import recorded_environment

    version, recorded = recorded_environment(settings, "champion")
    assert recorded is not None, f"champion version {version} has no mlref.environment tag"
    return recorded


def dependency_result(recorded: dict[str, Any]) -> GateResult:
    """What ``mlref serve`` checks at start: the recorded environment against this one."""
    from mlref.train.provenance import dependency_check

    return dependency_check(recorded)


@pytest.mark.mlgate("dependency_drift")
def test_champion_runs_in_its_recorded_environment(
    mlgates: Gates, ref_settings: Settings, reference_system: ReferenceSystem, server_url: str
) -> None:
    """The champion's training environment (package versions, Python, uv.lock hash) against
    the one serving it; the server exposes the verdict it reached at start in /metrics."""
    import httpx

    from mlref.serve.metrics import parse_metrics

    recorded = champion_environment(ref_settings)
    assert recorded["packages"].get("xgboost"), recorded  # the versions were really captured
    result = mlgates.check(dependency_result(recorded))
    metrics = parse_metrics(httpx.get(f"{server_url}/metrics", timeout=10.0).text)
    exposed = {k: v for k, v in metrics.items() if k.startswith("mlref_dependency_drift{")}
    assert exposed == {f'mlref_dependency_drift{{verdict="{result.verdict}"}}': 0.0}, exposed
