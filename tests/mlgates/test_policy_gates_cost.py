"""feature_cost on costs and importances whose verdict is known by hand."""

from __future__ import annotations

import math

import pytest

from mlgates import GateInputError, feature_cost

COSTS = {
    "velocity": {"compute_ms": 0.20, "storage_bytes": 40},
    "spend": {"compute_ms": 0.20, "storage_bytes": 40},
    "log_amount": {"compute_ms": 0.01, "storage_bytes": 0},
}
IMPORTANCE = {"velocity": 0.4, "spend": 0.4, "log_amount": 0.2}


def test_costs_in_proportion_pass() -> None:
    result = feature_cost(COSTS, IMPORTANCE)
    assert result.verdict == "pass", result.explain()
    # velocity: compute share 0.2 / 0.41, storage share 0.5 -> cost share 0.5, importance 0.4
    rows = {r["feature"]: r for r in result.details["features"]}
    assert rows["velocity"]["ratio"] == pytest.approx(0.5 / 0.4)
    assert result.measured == pytest.approx(1.25)
    assert result.rubric == ("data-3",)


def test_a_feature_over_its_compute_budget_fails() -> None:
    costs = {**COSTS, "spend": {"compute_ms": 2.5, "storage_bytes": 40}}
    result = feature_cost(costs, IMPORTANCE, max_compute_ms=1.0, max_cost_ratio=100)
    assert result.verdict == "fail"
    assert "spend: compute 2.5 ms > budget 1 ms" in result.message


def test_a_feature_over_its_storage_budget_fails() -> None:
    costs = {**COSTS, "velocity": {"compute_ms": 0.2, "storage_bytes": 10_000}}
    result = feature_cost(costs, IMPORTANCE, max_storage_bytes=4096, max_cost_ratio=100)
    assert result.verdict == "fail"
    assert "velocity: storage 10,000 B > budget 4,096 B" in result.message


def test_a_feature_costing_more_than_n_times_its_importance_share_fails() -> None:
    # spend: compute 0.2/0.41 = 48.8% of the cost for 2% of the importance: x24.4
    importance = {"velocity": 0.78, "spend": 0.02, "log_amount": 0.2}
    result = feature_cost(COSTS, importance, max_cost_ratio=5.0)
    assert result.verdict == "fail"
    assert "spend: 50.0% of the cost for 2.0% of the importance (x25 > x5)" in result.message
    assert "velocity" not in result.message.split("cost too much:")[1]
    assert result.measured == pytest.approx(25.0)


def test_a_costly_feature_the_model_never_uses_fails() -> None:
    result = feature_cost(COSTS, {**IMPORTANCE, "spend": 0.0})
    assert result.verdict == "fail"
    assert math.isinf(result.measured)
    assert "spend:" in result.message


def test_an_immaterial_cost_out_of_proportion_warns() -> None:
    costs = {
        "velocity": {"compute_ms": 0.014, "storage_bytes": 208},
        "spend": {"compute_ms": 0.006, "storage_bytes": 100},
        "log_amount": {"compute_ms": 0.0001, "storage_bytes": 0},
    }
    importance = {"velocity": 0.0005, "spend": 0.003, "log_amount": 0.004}
    result = feature_cost(costs, importance)
    assert result.verdict == "warn", result.explain()
    assert "velocity:" in result.message
    assert "immaterial" in result.message
    # the same disproportion at a material cost fails
    costs["velocity"]["compute_ms"] = 0.5
    assert feature_cost(costs, importance).verdict == "fail"


def test_no_importance_at_all_is_inconclusive() -> None:
    result = feature_cost(COSTS, dict.fromkeys(COSTS, 0.0))
    assert result.verdict == "inconclusive"


@pytest.mark.parametrize(
    ("args", "kwargs", "named"),
    [
        (({}, IMPORTANCE), {}, "costs"),
        ((COSTS, [1, 2]), {}, "importance"),
        ((COSTS, {"velocity": 1.0}), {}, "importance has no value"),
        (({"x": {"compute_ms": 1}}, {"x": 1}), {}, r"costs\['x'\]"),
        (({"x": {"compute_ms": -1, "storage_bytes": 0}}, {"x": 1}), {}, "compute_ms"),
        ((COSTS, IMPORTANCE), {"max_cost_ratio": 0}, "max_cost_ratio"),
        ((COSTS, IMPORTANCE), {"min_material_ms": -1}, "min_material_ms"),
    ],
)
def test_bad_input_names_the_argument(args: tuple, kwargs: dict, named: str) -> None:
    with pytest.raises(GateInputError, match=named):
        feature_cost(*args, **kwargs)
