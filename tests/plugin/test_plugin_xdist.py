"""Under pytest-xdist the workers' results reach the controller, which alone reports."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("xdist")

SPREAD = """
import pytest
from gatelib import budget

@pytest.mark.parametrize("value", [0.1, 0.2, 0.3, 0.4, 2.5, 0.8])
def test_gate(mlgates, value):
    mlgates.run(budget, value, warn_at=0.75)
"""


def test_results_gathered_from_workers(
    gate_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    step = gate_project.path / "step.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    gate_project.makepyfile(test_spread=SPREAD)
    result = gate_project.runpytest(
        "-p", "no:cacheprovider", "-p", "xdist", "-n", "2", "--mlgates", "--mlgates-report=r.json"
    )
    result.assert_outcomes(passed=5, failed=1)
    assert result.ret == 1
    result.stdout.fnmatch_lines(["6 gate results: 4 pass, 1 warn, 1 fail"])
    text = result.stdout.str()
    assert text.count("= mlgates summary =") == 1
    doc = json.loads((gate_project.path / "r.json").read_text())
    assert doc["environment"]["xdist_workers"] == 2
    assert doc["summary"]["total"] == 6
    assert (doc["summary"]["pass"], doc["summary"]["warn"], doc["summary"]["fail"]) == (4, 1, 1)
    # gathered from two workers, listed in collection order
    assert [r["measured"] for r in doc["results"]] == [0.1, 0.2, 0.3, 0.4, 2.5, 0.8]
    assert step.read_text().count("### mlgates") == 1  # written once, by the controller
