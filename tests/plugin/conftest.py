"""Shared pieces of the plugin's pytester tests."""

from __future__ import annotations

import contextlib

import hypothesis  # noqa: F401
import pytest

# pytester's in-process runs drop the modules an inner run imported. Import here, once, what
# inner runs would otherwise import again each time: hypothesis (its plugin's header) and the
# gate library with numpy, which cannot be imported twice in one process.
with contextlib.suppress(ImportError):
    import mlgates.gates  # noqa: F401

# A tiny gate library written into each pytester project: gates whose verdict the test
# chooses, so these tests do not depend on the statistics in mlgates.gates.
GATELIB = '''
from __future__ import annotations

from mlgates.result import GateResult


def budget(measured, limit=1.0, warn_at=None):
    """fail above limit, warn above warn_at."""
    if measured > limit:
        verdict = "fail"
    elif warn_at is not None and measured > warn_at:
        verdict = "warn"
    else:
        verdict = "pass"
    return GateResult(
        name="budget", verdict=verdict, measured=measured, threshold=limit,
        message=f"measured {measured} against limit {limit}", direction="max",
        hint="look at the slowest slice first", details={"limit_used": limit},
        rubric=("monitor-6",),
    )


def unsure(n_rows):
    return GateResult(
        name="unsure", verdict="inconclusive", measured=0.0, threshold=0.0,
        message=f"only {n_rows} rows: the interval straddles the margin",
        hint="collect more rows", rubric=("infra-4",),
    )
'''


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # A CI runner's own step summary must never receive the inner runs' tables.
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    monkeypatch.delenv("PYTEST_XDIST_AUTO_NUM_WORKERS", raising=False)
    # one terminal width for the inner runs' tables, whatever runs the outer one
    monkeypatch.setenv("COLUMNS", "120")


@pytest.fixture
def gate_project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester project with the small gate library importable as ``gatelib``."""
    pytester.makepyfile(gatelib=GATELIB)
    return pytester
