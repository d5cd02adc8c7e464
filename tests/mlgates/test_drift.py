"""psi_drift / FrozenBins / ks_drift / prediction_drift: defects fail, clean data passes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlgates import FrozenBins, ks_drift, prediction_drift, psi_drift, stats
from mlgates.result import GateInputError


def _frame(n: int, seed: int, shift: float = 0.0, drift_cats: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cats = np.array(["grocery", "travel", "electronics", "fuel"])
    p = [0.4, 0.3, 0.2, 0.1]
    category = rng.choice(cats, size=n, p=p).astype(object)
    if drift_cats:
        category[rng.random(n) < 0.15] = "crypto"  # a category the reference never saw
    return pd.DataFrame(
        {
            "amount": rng.lognormal(3.0 + shift, 1.0, n),
            "hour": rng.integers(0, 24, n).astype(float),
            "velocity": rng.poisson(2.0, n).astype(float),
            "category": category,
        }
    )


def test_psi_clean_passes() -> None:
    r = psi_drift(_frame(5000, 0), _frame(5000, 1))
    assert r.verdict == "pass", r.explain()
    assert set(r.details["features"]) == {"amount", "hour", "velocity", "category"}
    assert r.measured == max(f["psi"] for f in r.details["features"].values())
    assert r.rubric == ("monitor-2",)
    json.loads(r.to_json())


def test_psi_shifted_numeric_fails_naming_feature() -> None:
    r = psi_drift(_frame(5000, 0), _frame(5000, 1, shift=1.0))
    assert r.verdict == "fail"
    assert "amount PSI" in r.message
    top = r.details["features"]["amount"]["top_bins"][0]
    assert top["current_share"] > top["reference_share"]
    assert r.details["features"]["hour"]["verdict"] == "pass"
    assert "Next step" in r.explain()


def test_psi_drifted_categories_use_unseen_bucket() -> None:
    r = psi_drift(_frame(5000, 0), _frame(5000, 1, drift_cats=True), features=["category"])
    assert r.verdict == "fail"
    row = r.details["features"]["category"]
    assert row["top_bins"][0]["bin"] == "__unseen__"
    assert row["unseen_share_current"] == pytest.approx(0.15, abs=0.02)
    assert "__unseen__" in r.message


def test_psi_warn_band() -> None:
    ref = pd.DataFrame({"x": np.random.default_rng(0).normal(size=20000)})
    cur = pd.DataFrame({"x": np.random.default_rng(1).normal(0.3, 1.0, size=20000)})
    value = psi_drift(ref, cur).measured
    assert value is not None
    assert 0.05 < value < 0.2
    r = psi_drift(ref, cur, warn=value / 2, fail=value * 2)
    assert r.verdict == "warn"
    assert r.passed


def test_psi_nan_bucket() -> None:
    ref = _frame(4000, 0)
    cur = _frame(4000, 1)
    cur.loc[cur.index[:800], "amount"] = np.nan
    r = psi_drift(ref, cur, features=["amount"])
    assert r.verdict == "fail"
    assert r.details["features"]["amount"]["top_bins"][0]["bin"] == "__nan__"


def test_frozen_bins_roundtrip_and_reuse(tmp_path: Path) -> None:
    ref, cur = _frame(3000, 0), _frame(3000, 1, shift=0.5)
    frozen = FrozenBins.fit(ref)
    path = frozen.save(tmp_path / "bins.json")
    loaded = FrozenBins.load(path)
    assert loaded == FrozenBins.from_json(frozen.to_json())
    assert loaded.features["category"].categories == ("electronics", "fuel", "grocery", "travel")
    fitted = psi_drift(ref, cur)
    reused = psi_drift(ref, cur, bins=loaded)
    from_path = psi_drift(ref, cur, bins=str(path))
    without_reference = psi_drift(None, cur, bins=loaded)
    for other in (reused, from_path, without_reference):
        assert other.measured == pytest.approx(fitted.measured, abs=1e-12)
        assert other.verdict == fitted.verdict
    # frozen edges really are reused: the current frame's own quantiles differ
    edges = loaded.features["amount"].edges
    assert not np.allclose(edges, stats.quantile_bins(cur["amount"]))


def test_frozen_bins_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(GateInputError, match="does not exist"):
        FrozenBins.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"version": 99, "features": {}}')
    with pytest.raises(GateInputError, match="version"):
        FrozenBins.load(bad)
    frozen = FrozenBins.fit(_frame(100, 0), features=["amount"])
    with pytest.raises(GateInputError, match="not in the frozen bins"):
        psi_drift(None, _frame(100, 1), features=["hour"], bins=frozen)


def test_psi_bad_inputs() -> None:
    ref = _frame(100, 0)
    with pytest.raises(GateInputError, match="missing column"):
        psi_drift(ref, ref.drop(columns=["amount"]), features=["amount"])
    with pytest.raises(GateInputError, match="empty"):
        psi_drift(ref, ref.iloc[:0])
    with pytest.raises(GateInputError, match="reference frame or frozen bins"):
        psi_drift(None, ref)
    with pytest.raises(GateInputError, match="warn <= fail"):
        psi_drift(ref, ref, warn=0.3, fail=0.2)


def test_ks_drift_clean_and_shifted() -> None:
    ref = _frame(3000, 0)
    ok = ks_drift(ref, _frame(3000, 1))
    assert ok.verdict == "pass", ok.explain()
    assert ok.details["skipped_columns"] == ["category"]
    bad = ks_drift(ref, _frame(3000, 1, shift=0.5))
    assert bad.verdict == "fail"
    assert "amount D=" in bad.message
    row = bad.details["features"]["amount"]
    assert row["pvalue_adjusted"] >= row["pvalue"]
    assert bad.details["features"]["hour"]["verdict"] == "pass"


def test_ks_drift_small_but_significant_shift_warns() -> None:
    rng = np.random.default_rng(3)
    ref = pd.DataFrame({"x": rng.normal(size=50_000)})
    cur = pd.DataFrame({"x": rng.normal(0.05, 1.0, size=50_000)})
    r = ks_drift(ref, cur)
    assert r.verdict == "warn"
    assert "significant but small" in r.message


def test_ks_drift_rejects_categorical_feature() -> None:
    ref = _frame(100, 0)
    with pytest.raises(GateInputError, match="numeric"):
        ks_drift(ref, ref, features=["category"])


def test_prediction_drift() -> None:
    rng = np.random.default_rng(4)
    ref = rng.beta(1, 30, 20000)  # ~3% mean score
    same = rng.beta(1, 30, 20000)
    ok = prediction_drift(ref, same)
    assert ok.verdict == "pass", ok.explain()
    shifted = prediction_drift(ref, rng.beta(2, 30, 20000))
    assert shifted.verdict == "fail"
    assert "prediction drift" in shifted.message


def test_prediction_drift_mean_floor_stops_low_base_rate_explosion() -> None:
    rng = np.random.default_rng(5)
    ref = rng.beta(1, 99, 50000)  # mean ~1%
    cur = ref + 0.003  # +0.3 points: 30% relative to 1%, 6% relative to the 5% floor
    r = prediction_drift(ref, cur, psi_fail=10.0, psi_warn=10.0)
    assert r.details["relative_mean_shift"] == pytest.approx(0.003 / 0.05, rel=1e-6)
    assert r.verdict == "pass"
    tight = prediction_drift(ref, cur, psi_fail=10.0, psi_warn=10.0, mean_floor=0.001)
    assert tight.verdict == "fail"
    assert tight.details["criterion"] == "mean_shift"
    assert "mean score moved" in tight.message


def test_prediction_drift_bad_input() -> None:
    with pytest.raises(GateInputError, match="NaN"):
        prediction_drift([0.1, np.nan], [0.1, 0.2])


def _rare_high_scores(n: int, n_high: int) -> np.ndarray:
    """Scores of a rare-positive model: ``n_high`` rows near 0.9, the rest near 0.001."""
    return np.r_[np.full(n_high, 0.9), np.full(n - n_high, 0.001)]


def test_prediction_drift_mean_shift_on_many_rows_fails() -> None:
    from scipy.stats import ttest_ind

    ref = _rare_high_scores(20_000, 240)  # 1.2% high scores, mean ~0.0118
    cur = _rare_high_scores(50_000, 1_100)  # 2.2%: +0.009, 18% of the 0.05 floor
    r = prediction_drift(ref, cur)
    assert r.details["relative_mean_shift"] > 0.15
    welch = ttest_ind(cur, ref, equal_var=False).statistic  # the same z as the gate's
    assert r.details["mean_shift_z"] == pytest.approx(abs(welch), rel=1e-9)
    assert r.details["mean_shift_z"] > 3
    assert r.verdict == "fail", r.explain()
    assert "the mean score moved" in r.message
    assert r.details["mean_shift_within_noise"] is False


def test_prediction_drift_same_shift_on_few_noisy_rows_warns_within_noise() -> None:
    from scipy.stats import ttest_ind

    ref = _rare_high_scores(20_000, 240)
    cur = _rare_high_scores(500, 11)  # 2.2% as above, but only 500 served requests
    r = prediction_drift(ref, cur)
    assert r.details["relative_mean_shift"] > 0.15  # would fail on the shift alone
    welch = ttest_ind(cur, ref, equal_var=False).statistic
    assert r.details["mean_shift_z"] == pytest.approx(abs(welch), rel=1e-9)
    assert r.details["mean_shift_z"] < 3
    assert r.verdict == "warn", r.explain()
    assert "within noise" in r.message
    assert r.details["mean_shift_within_noise"] is True
    # a lower bar (z > 1) turns the same window into a failure
    assert prediction_drift(ref, cur, mean_z=1.0).verdict == "fail"
    with pytest.raises(GateInputError, match="mean_z"):
        prediction_drift(ref, cur, mean_z=-1.0)
