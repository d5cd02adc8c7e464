"""psi_drift / prediction_drift on flags, constant columns and heavily tied scores, and the
argument checks (eps, thresholds, explicit edges). PSI references are hand-computed."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from mlgates import FrozenBins, prediction_drift, psi_drift, stats
from mlgates.gates.drift import _feature_verdict
from mlgates.result import GateInputError


def _flag(n: int, share: float, seed: int) -> np.ndarray:
    """Exactly ``round(n * share)`` ones, shuffled."""
    k = round(n * share)
    return np.random.default_rng(seed).permutation(np.r_[np.ones(k), np.zeros(n - k)])


def _frame(n: int, seed: int, flag_share: float = 0.05, const: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "amount": rng.lognormal(3.0, 1.0, n),
            "is_foreign": _flag(n, flag_share, seed),
            "n_items": rng.poisson(1.0, n).clip(0, 4).astype(float),
            "api_version": np.full(n, const),
        }
    )


def test_binary_flag_shift_fails_naming_feature_with_hand_computed_psi() -> None:
    ref, cur = _frame(4000, 0), _frame(4000, 1, flag_share=0.60)
    r = psi_drift(ref, cur)
    assert r.verdict == "fail", r.explain()
    assert "is_foreign PSI" in r.message
    row = r.details["features"]["is_foreign"]
    hand = (0.6 - 0.05) * math.log(0.6 / 0.05) + (0.4 - 0.95) * math.log(0.4 / 0.95)
    assert row["psi"] == pytest.approx(hand, rel=1e-9)
    assert row["top_bins"][0]["bin"] == "{1}"
    for name in ("amount", "n_items", "api_version"):
        assert r.details["features"][name]["verdict"] == "pass", name


@pytest.mark.parametrize("jump", [5.0, -5.0])
def test_constant_column_jump_up_or_down_fails(jump: float) -> None:
    ref, cur = _frame(2000, 0), _frame(2000, 1, const=jump)
    r = psi_drift(ref, cur)
    assert r.verdict == "fail", r.explain()
    assert "api_version PSI" in r.message
    eps = stats.DEFAULT_EPS
    hand = 2 * (1 - eps) * math.log(1 / eps)  # all mass moves to an empty outer bin
    assert r.details["features"]["api_version"]["psi"] == pytest.approx(hand, rel=1e-9)
    expected_bin = "(0, inf)" if jump > 0 else "(-inf, 0)"
    assert r.details["features"]["api_version"]["top_bins"][0]["bin"] == expected_bin


def test_clean_low_cardinality_features_pass() -> None:
    r = psi_drift(_frame(5000, 0), _frame(5000, 1))
    assert r.verdict == "pass", r.explain()
    assert r.details["features"]["api_version"]["psi"] == 0.0


def test_frozen_low_cardinality_bins_survive_json() -> None:
    ref, cur = _frame(3000, 0), _frame(3000, 1, flag_share=0.6, const=1.0)
    frozen = FrozenBins.fit(ref)
    loaded = FrozenBins.from_json(frozen.to_json())
    assert loaded == frozen  # the edge just above a value round-trips exactly
    edges = loaded.features["api_version"].edges
    assert edges == (0.0, float(np.nextafter(0.0, np.inf)))
    fitted = psi_drift(ref, cur)
    reused = psi_drift(None, cur, bins=loaded)
    assert reused.verdict == fitted.verdict == "fail"
    assert reused.details["features"]["is_foreign"]["psi"] == pytest.approx(
        fitted.details["features"]["is_foreign"]["psi"], rel=1e-12
    )
    assert "api_version" in reused.message


def test_frozen_bins_with_unsorted_edges_are_rejected() -> None:
    ref = _frame(500, 0)
    raw = json.loads(FrozenBins.fit(ref, features=["amount"]).to_json())
    raw["features"]["amount"]["edges"] = raw["features"]["amount"]["edges"][::-1]
    bad = FrozenBins.from_json(json.dumps(raw))
    with pytest.raises(GateInputError, match="strictly increasing"):
        psi_drift(ref, ref, bins=bad)


def test_psi_drift_eps_zero_is_an_input_error() -> None:
    # "api_version" is constant: its below/above bins are empty on both sides (0 * ln 0/0)
    ref, cur = _frame(500, 0), _frame(500, 1)
    with pytest.raises(GateInputError, match="eps must be in"):
        psi_drift(ref, cur, eps=0)
    with pytest.raises(GateInputError, match="eps must be in"):
        psi_drift(None, cur, bins=FrozenBins.fit(ref), eps=0.0)
    with pytest.raises(GateInputError, match="n_bins"):
        psi_drift(ref, cur, n_bins=1)
    with pytest.raises(GateInputError, match="fail must be finite"):
        psi_drift(ref, cur, fail=float("nan"))


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_psi_never_passes(value: float) -> None:
    assert _feature_verdict(value, 0.1, 0.2) == "fail"
    assert _feature_verdict(0.05, 0.1, 0.2) == "pass"
    assert _feature_verdict(0.15, 0.1, 0.2) == "warn"


def _tied_scores(n: int, heavy_share: float, seed: int) -> np.ndarray:
    """A rare-positive model: ``heavy_share`` of scores exactly 0.001, the rest in [0.5, 1)."""
    k = round(n * heavy_share)
    high = np.random.default_rng(seed).uniform(0.5, 1.0, n - k)
    return np.r_[np.full(k, 0.001), high]


def test_prediction_drift_sees_a_shift_off_a_heavy_score() -> None:
    ref = _tied_scores(4000, 0.95, 0)
    high = np.random.default_rng(1).choice(ref[ref > 0.001], 800)  # high scores as before
    cur = np.r_[np.full(3200, 0.001), high]  # but 20% of them instead of 5%
    r = prediction_drift(ref, cur, mean_shift=1e6)  # isolate the PSI criterion
    # bins: below 0.001 | [0.001, smallest high score) | the high scores (their deciles
    # sit inside one bin, so only the two masses enter the hand computation)
    lo_ref, lo_cur = 0.95, 0.80
    hand = (lo_cur - lo_ref) * math.log(lo_cur / lo_ref) + ((1 - lo_cur) - (1 - lo_ref)) * math.log(
        (1 - lo_cur) / (1 - lo_ref)
    )
    assert r.details["psi"] == pytest.approx(hand, rel=1e-9)
    assert r.verdict == "fail", r.explain()
    assert "the score distribution moved" in r.message
    clean = prediction_drift(ref, _tied_scores(4000, 0.95, 2))
    assert clean.verdict == "pass", clean.explain()
    assert clean.details["psi"] < 0.01


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"psi_fail": 0}, "psi_fail must be > 0"),
        ({"mean_shift": 0}, "mean_shift must be > 0"),
        ({"mean_shift": -0.1}, "mean_shift must be > 0"),
        ({"psi_fail": 0.05}, "psi_warn <= psi_fail"),
        ({"psi_warn": -0.1}, "psi_warn <= psi_fail"),
        ({"psi_fail": float("nan")}, "psi_fail must be finite"),
        ({"mean_floor": 0}, "mean_floor must be > 0"),
        ({"n_bins": 1}, "n_bins must be >= 2"),
        ({"bins": [0.5, 0.1]}, "strictly increasing"),
        ({"bins": [0.1, np.nan]}, "finite"),
    ],
)
def test_prediction_drift_bad_arguments(kwargs: dict[str, object], match: str) -> None:
    ref, cur = _tied_scores(200, 0.9, 0), _tied_scores(200, 0.9, 1)
    with pytest.raises(GateInputError, match=match):
        prediction_drift(ref, cur, **kwargs)  # type: ignore[arg-type]
    assert prediction_drift(ref, cur, bins=[0.01, 0.6, 0.8]).verdict == "pass"
