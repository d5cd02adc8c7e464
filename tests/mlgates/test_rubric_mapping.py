"""Each gate claims only ML Test Score items whose title it really tests.

The pinned mapping below is the reviewed one (titles in ``mlgates.rubric``); a gate that
starts claiming another item must be reviewed again. model-2 ("Offline proxy metrics
correlate with actual online impact metrics") needs online metrics, which only
offline_online_agreement measures.
"""

from __future__ import annotations

import inspect
import re

import numpy as np
import pandas as pd
import pytest

from mlgates import rubric
from mlgates.gates import (
    GATES,
    entity_overlap,
    freshness,
    model_parity,
    no_worse,
    point_in_time,
    target_leak,
    time_split,
)

RUBRIC_ID = re.compile(r"\"((?:data|model|infra|monitor)-[1-7])\"")

REVIEWED: dict[str, set[str]] = {
    "psi_drift": {"monitor-2"},
    "ks_drift": {"monitor-2"},
    "prediction_drift": {"monitor-7"},
    "time_split": set(),
    "point_in_time": set(),
    "entity_overlap": set(),
    "target_leak": set(),
    "feature_parity": {"monitor-3"},
    "model_parity": set(),
    "no_worse": {"infra-4", "model-6"},
    "latency_budget": {"monitor-6"},
    "cost_budget": {"monitor-6"},
    "schema_gate": {"data-1", "monitor-2"},
    "freshness": set(),
    "beats_baseline": {"model-5"},
    "features_beneficial": {"data-2"},
    "group_parity": {"model-7"},
    "staleness_impact": {"model-4"},
    "tuning_gap": {"model-3"},
    "pii_scan": {"data-5"},
    "feature_policy": {"data-4"},
    "spec_in_version_control": {"model-1"},
    "code_coverage": {"data-7", "infra-2"},
    "feature_cost": {"data-3"},
    "canary": {"infra-6"},
    "offline_online_agreement": {"model-2"},
    "numeric_stability": {"monitor-5"},
    "dependency_drift": {"monitor-1"},
    "explanation_consistency": {"infra-5"},
    "new_feature_drill": {"data-6"},
    "model_staleness": {"monitor-4"},
}


def test_every_gate_is_reviewed() -> None:
    assert set(GATES) == set(REVIEWED)


@pytest.mark.parametrize("name", sorted(REVIEWED))
def test_gate_source_claims_only_reviewed_items(name: str) -> None:
    claimed = set(RUBRIC_ID.findall(inspect.getsource(GATES[name])))
    assert claimed == REVIEWED[name]
    assert not rubric.unknown_ids(claimed)


def test_only_the_online_gate_claims_offline_online_correlation() -> None:
    # model-2 needs online metrics: only offline_online_agreement measures them
    claiming = {name for name, fn in GATES.items() if '"model-2"' in inspect.getsource(fn)}
    assert claiming == {"offline_online_agreement"}


def _times(n: int, start: str) -> pd.Series:
    return pd.Series(pd.date_range(start, periods=n, freq="h"))


def test_leakage_gates_return_no_model_2() -> None:
    train = pd.DataFrame({"t": _times(50, "2024-01-01"), "user": range(50)})
    test = pd.DataFrame({"t": _times(50, "2024-03-01"), "user": range(100, 150)})
    assert time_split(train, test, "t").rubric == ()
    assert entity_overlap(train, test, "user").rubric == ()
    frame = pd.DataFrame({"t": _times(50, "2024-01-01")})
    frame["f_time"] = frame["t"] - pd.Timedelta(hours=1)
    assert point_in_time(frame, "t", ["f_time"]).rubric == ()
    rng = np.random.default_rng(0)
    leak = pd.DataFrame({"x": rng.normal(size=200), "y": rng.integers(0, 2, 200)})
    assert target_leak(leak, "y").rubric == ()


def test_model_parity_and_freshness_claim_nothing_they_do_not_test() -> None:
    assert model_parity(np.zeros(5), np.zeros(5)).rubric == ()
    assert freshness(_times(5, "2024-01-01"), "2024-01-01 05:00").rubric == ()


def test_no_worse_claims_quality_validation_and_slices_only() -> None:
    rng = np.random.default_rng(1)
    y = (rng.random(2000) < 0.3).astype(int)
    s = y + rng.normal(size=2000)
    assert no_worse(y, s, s).rubric == ("infra-4",)
    assert no_worse(y, s, s, slices=np.arange(2000) % 2).rubric == ("infra-4", "model-6")


def test_code_coverage_claims_the_item_of_the_code_it_measured() -> None:
    import inspect as _inspect

    from mlgates.gates import code_coverage

    source = _inspect.getsource(code_coverage)
    assert 'rubric = ("data-7",) if code == "features" else ("infra-2",)' in source


def test_the_summary_names_the_gates_of_each_item_as_reviewed() -> None:
    # rubric.GATES_FOR (what the summary says would cover an item) is the reviewed mapping
    # turned around: no gate missing, none invented
    inverted: dict[str, set[str]] = {}
    for name, items in REVIEWED.items():
        for item in items:
            inverted.setdefault(item, set()).add(name)
    assert {k: set(v) for k, v in rubric.GATES_FOR.items()} == inverted


def test_every_uncovered_item_says_why() -> None:
    s = rubric.score([{"name": "canary", "verdict": "pass", "rubric": ["infra-6"]}])
    assert "infra-6" not in s.uncovered
    assert len(s.uncovered) == 27
    assert "model_staleness" in rubric.why_uncovered("monitor-4")
    assert 'rubric=("infra-1",)' in rubric.why_uncovered("infra-1")
    from mlgates import report

    lines = report.score_lines(rubric.score([]))
    assert "      infra-6: " + rubric.why_uncovered("infra-6") in lines
    assert all(f"- {i}: " in report.markdown([], rubric.score([])) for i in rubric.ITEMS)
