"""ks_drift / stats.ks_2samp on small samples: exact p-values, no NaN pass, a row floor."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from mlgates import ks_drift, stats
from mlgates.gates import drift
from mlgates.result import GateInputError


def test_one_row_each_side_is_inconclusive_not_pass() -> None:
    # the defect: asymptotic p at n*m/(n+m) = 0.5 is NaN, and NaN < alpha is False -> "pass"
    r = ks_drift(pd.DataFrame({"x": [0.0]}), pd.DataFrame({"x": [100.0]}))
    assert r.verdict == "inconclusive", r.explain()
    assert not r.passed
    assert "too few rows" in r.message
    assert "at least 20" in r.message
    row = r.details["features"]["x"]
    assert row["verdict"] == "inconclusive"
    assert (row["rows_reference"], row["rows_current"]) == (1, 1)
    assert r.measured is None  # nothing was tested


def test_clean_tested_feature_plus_untestable_one_is_inconclusive() -> None:
    rng = np.random.default_rng(6)
    ref = pd.DataFrame({"a": rng.normal(size=200), "b": [np.nan] * 195 + [0.0] * 5})
    cur = pd.DataFrame({"a": rng.normal(size=200), "b": [np.nan] * 195 + [9.0] * 5})
    r = ks_drift(ref, cur)
    assert r.verdict == "inconclusive", r.explain()
    assert r.details["features"]["a"]["verdict"] == "pass"
    assert r.details["untested"] == ["b"]
    assert "the 1 tested feature(s) showed no significant shift" in r.message
    assert r.measured == r.details["features"]["a"]["statistic"]


def test_nan_values_do_not_count_towards_the_floor() -> None:
    ref = pd.DataFrame({"x": [np.nan] * 30 + [1.0] * 5})
    cur = pd.DataFrame({"x": np.linspace(0.0, 1.0, 40)})
    r = ks_drift(ref, cur)
    assert r.verdict == "inconclusive"
    assert "x has 5 reference and 40 current" in r.message


def test_non_finite_pvalue_never_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    real = stats.ks_2samp

    def nan_pvalue(a: np.ndarray, b: np.ndarray, method: str = "asymp") -> stats.KSResult:
        r = real(a, b, method=method)  # type: ignore[arg-type]
        return stats.KSResult(r.statistic, math.nan, r.n_reference, r.n_current, r.method)

    monkeypatch.setattr(drift.stats, "ks_2samp", nan_pvalue)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=200)})
    r = ks_drift(frame, frame)
    assert r.verdict == "inconclusive", r.explain()
    assert "not finite" in r.message
    assert r.details["features"]["x"]["verdict"] == "inconclusive"


def test_inconclusive_feature_does_not_hide_a_fail_elsewhere() -> None:
    rng = np.random.default_rng(1)
    ref = pd.DataFrame({"a": rng.normal(size=100), "b": [np.nan] * 99 + [1.0]})
    cur = pd.DataFrame({"a": rng.normal(3.0, 1.0, size=100), "b": [np.nan] * 99 + [2.0]})
    r = ks_drift(ref, cur)
    assert r.verdict == "fail", r.explain()
    assert r.details["features"]["b"]["verdict"] == "inconclusive"
    assert "too few rows" in r.message
    assert "b has 1 reference" in r.message
    # only the tested feature is corrected for: Holm over one p-value is the p-value
    a = r.details["features"]["a"]
    assert a["pvalue_adjusted"] == a["pvalue"]


@pytest.mark.parametrize(
    ("n", "m", "shift", "seed"),
    [(20, 20, 0.0, 0), (20, 35, 0.8, 1), (25, 60, 1.5, 2), (47, 31, 0.4, 3)],
)
def test_small_sample_pvalues_match_scipy_exact(n: int, m: int, shift: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = np.round(rng.normal(size=n), 1)  # ties
    b = np.round(rng.normal(shift, 1.0, size=m), 1)
    ref = scipy.stats.ks_2samp(a, b, method="exact")
    ours = stats.ks_2samp(a, b, method="exact")
    assert ours.statistic == pytest.approx(ref.statistic, abs=1e-12)
    assert ours.pvalue == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-300)
    assert ours.method == "exact"
    r = ks_drift(pd.DataFrame({"x": a}), pd.DataFrame({"x": b}), correction="none")
    row = r.details["features"]["x"]
    assert row["method"] == "exact"
    assert row["pvalue"] == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-300)
    expected = "pass" if ref.pvalue >= 0.05 else "fail" if ref.statistic >= 0.1 else "warn"
    assert r.verdict == expected


def test_auto_matches_scipy_auto_on_both_sides_of_the_switch() -> None:
    rng = np.random.default_rng(4)
    small_a, small_b = rng.normal(size=30), rng.normal(0.5, 1.0, size=40)
    big_a, big_b = rng.normal(size=stats.KS_EXACT_MAX_N + 1), rng.normal(0.02, 1.0, size=500)
    for a, b, method in ((small_a, small_b, "exact"), (big_a, big_b, "asymp")):
        ours = stats.ks_2samp(a, b, method="auto")
        ref = scipy.stats.ks_2samp(a, b, method="auto")
        assert ours.method == method
        assert ours.pvalue == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-300)


def test_exact_differs_from_asymptotic_on_small_samples() -> None:
    # why exact matters: at n=m=20 the asymptotic p-value is off by a visible margin
    a, b = np.arange(20.0), np.arange(20.0) + 7.5
    exact = scipy.stats.ks_2samp(a, b, method="exact").pvalue
    asymp = scipy.stats.ks_2samp(a, b, method="asymp").pvalue
    assert abs(exact - asymp) > 0.1 * exact
    r = ks_drift(pd.DataFrame({"x": a}), pd.DataFrame({"x": b}))
    assert r.details["features"]["x"]["pvalue"] == pytest.approx(exact, rel=1e-9)


def test_asymptotic_pvalue_undefined_below_one_effective_row_is_nan() -> None:
    r = stats.ks_2samp([0.0], [1.0], method="asymp")
    assert r.statistic == 1.0
    assert math.isnan(r.pvalue)
    assert stats.ks_2samp([0.0], [1.0], method="exact").pvalue == pytest.approx(
        scipy.stats.ks_2samp([0.0], [1.0], method="exact").pvalue
    )


def test_clean_small_samples_pass_and_a_clear_shift_fails() -> None:
    rng = np.random.default_rng(5)
    ref = pd.DataFrame({"x": rng.normal(size=30)})
    ok = ks_drift(ref, pd.DataFrame({"x": rng.normal(size=30)}))
    assert ok.verdict == "pass", ok.explain()
    bad = ks_drift(ref, pd.DataFrame({"x": rng.normal(3.0, 1.0, size=30)}))
    assert bad.verdict == "fail", bad.explain()


def test_min_rows_is_configurable_and_validated() -> None:
    ref, cur = pd.DataFrame({"x": [0.0, 1.0, 2.0]}), pd.DataFrame({"x": [5.0, 6.0, 7.0]})
    r = ks_drift(ref, cur, min_rows=3)
    assert r.verdict != "inconclusive"
    # n = m = 3: the smallest attainable exact p-value is 2 / C(6, 3) = 0.1 > alpha
    assert r.details["features"]["x"]["pvalue"] == pytest.approx(2 / math.comb(6, 3))
    assert r.verdict == "pass"
    for bad in (0, -1, 2.5, True):
        with pytest.raises(GateInputError, match="min_rows"):
            ks_drift(ref, cur, min_rows=bad)  # type: ignore[arg-type]
    with pytest.raises(GateInputError, match="method"):
        stats.ks_2samp([1.0], [2.0], method="fast")  # type: ignore[arg-type]
