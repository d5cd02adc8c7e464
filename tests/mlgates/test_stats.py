"""PSI, KS, Holm, DeLong and the bootstrap against independent references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mlgates import stats
from mlgates.metrics import roc_auc
from mlgates.result import GateInputError


def test_psi_matches_hand_computed_table() -> None:
    # reference shares 10/20/30/40 %, current 20/20/30/30 % in bins split at 1, 2, 3
    ref = np.repeat([0.5, 1.5, 2.5, 3.5], [10, 20, 30, 40])
    cur = np.repeat([0.5, 1.5, 2.5, 3.5], [20, 20, 30, 30])
    # (0.2-0.1)*ln(0.2/0.1) + 0 + 0 + (0.3-0.4)*ln(0.3/0.4)
    expected = 0.1 * math.log(2.0) + (-0.1) * math.log(0.75)
    assert expected == pytest.approx(0.0980829, abs=1e-6)
    assert stats.psi(ref, cur, bins=[1.0, 2.0, 3.0]) == pytest.approx(expected, abs=1e-12)


def test_psi_empty_bin_uses_eps_and_nan_bucket() -> None:
    ref = np.array([0.5] * 50 + [1.5] * 50)
    cur = np.array([0.5] * 50 + [np.nan] * 50)
    counts = stats.bin_counts(cur, [1.0])
    assert counts.tolist() == [50, 0, 50]
    # bins: [0.5 share .5 vs .5], [1.5: .5 vs eps], [nan: eps vs .5]
    eps = stats.DEFAULT_EPS
    expected = 2 * (0.5 - eps) * math.log(0.5 / eps)
    assert stats.psi(ref, cur, bins=[1.0]) == pytest.approx(expected, rel=1e-12)


def test_bin_counts_left_closed_open_ended() -> None:
    x = np.array([-np.inf, -5.0, 1.0, 1.5, 2.0, 99.0, np.inf, np.nan])
    assert stats.bin_counts(x, [1.0, 2.0]).tolist() == [2, 2, 3, 1]
    many = np.linspace(0, 1, 40)
    x2 = np.random.default_rng(0).random(1000)
    reference = np.bincount(np.searchsorted(many, x2, side="right"), minlength=41)
    assert stats.bin_counts(x2, many)[:-1].tolist() == reference.tolist()


def test_quantile_bins_match_numpy_and_dedupe() -> None:
    x = np.random.default_rng(1).normal(size=1001)
    qs = np.linspace(0, 1, 11)[1:-1]
    np.testing.assert_allclose(stats.quantile_bins(x, 10), np.quantile(x, qs), rtol=1e-12)
    heavy = np.r_[np.zeros(900), np.arange(100)]
    edges = stats.quantile_bins(heavy, 10)
    assert np.all(np.diff(edges) > 0)
    # a constant column: its own bin, with open bins below and above it
    assert stats.quantile_bins(np.ones(10)).tolist() == [1.0, np.nextafter(1.0, np.inf)]
    with pytest.raises(GateInputError, match="n_bins"):
        stats.quantile_bins(x, 1)


finite = st.floats(-1e6, 1e6, allow_nan=False)


@settings(max_examples=40, deadline=None)
@given(
    arrays(np.float64, st.integers(5, 200), elements=finite),
    arrays(np.float64, st.integers(5, 200), elements=finite),
)
def test_psi_nonnegative_and_zero_on_itself(ref: np.ndarray, cur: np.ndarray) -> None:
    assert stats.psi(ref, cur) >= 0.0
    assert stats.psi(ref, ref) == 0.0


@pytest.mark.parametrize(("n1", "n2", "shift"), [(50, 70, 0.0), (400, 300, 0.3), (200, 200, 1.0)])
def test_ks_matches_scipy(n1: int, n2: int, shift: float) -> None:
    rng = np.random.default_rng(n1)
    a = np.round(rng.normal(size=n1), 1)  # ties
    b = np.round(rng.normal(shift, 1.0, size=n2), 1)
    ours = stats.ks_2samp(a, b)
    ref = scipy.stats.ks_2samp(a, b, method="asymp")
    assert ours.statistic == pytest.approx(ref.statistic, abs=1e-12)
    assert ours.pvalue == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-300)


def test_holm_and_bonferroni_hand_computed() -> None:
    p = [0.01, 0.04, 0.03]
    # sorted 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> monotone 0.03, 0.06, 0.06
    np.testing.assert_allclose(stats.holm(p), [0.03, 0.06, 0.06])
    np.testing.assert_allclose(stats.bonferroni(p), [0.03, 0.12, 0.09])


def test_midrank_matches_scipy() -> None:
    x = np.random.default_rng(2).integers(0, 20, 300).astype(float)
    np.testing.assert_allclose(stats.midrank(x), scipy.stats.rankdata(x, method="average"))


def _delong_slow(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """DeLong et al. (1988) straight from the definition: O(n^2) placement values."""
    y = y.astype(bool)
    v10s, v01s, aucs = [], [], []
    for s in (a, b):
        x, z = s[y], s[~y]
        psi = (x[:, None] > z[None, :]) + 0.5 * (x[:, None] == z[None, :])
        aucs.append(psi.mean())
        v10s.append(psi.mean(axis=1))
        v01s.append(psi.mean(axis=0))
    m, n = y.sum(), (~y).sum()
    s10, s01 = np.cov(np.vstack(v10s)), np.cov(np.vstack(v01s))
    cov = s10 / m + s01 / n
    var = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    return aucs[1] - aucs[0], math.sqrt(var)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_delong_matches_slow_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 300
    y = rng.integers(0, 2, n)
    a = np.round(y * 0.8 + rng.normal(size=n), 1)
    b = np.round(y * 1.2 + rng.normal(size=n), 1)
    fast = stats.delong(y, a, b)
    diff, se = _delong_slow(y, a, b)
    assert fast.diff == pytest.approx(diff, abs=1e-12)
    assert fast.se == pytest.approx(se, rel=1e-9)
    assert fast.auc_a == pytest.approx(roc_auc(y, a), abs=1e-12)
    z = diff / se
    assert fast.pvalue == pytest.approx(2 * scipy.stats.norm.sf(abs(z)), rel=1e-6)


def test_delong_se_agrees_with_bootstrap_std() -> None:
    rng = np.random.default_rng(5)
    n = 2000
    y = rng.integers(0, 2, n)
    a = y * 0.7 + rng.normal(size=n)
    b = y * 0.9 + rng.normal(size=n)
    d = stats.delong(y, a, b)
    boot = stats.paired_bootstrap(y, a, b, "roc_auc", n_resamples=400, seed=1)
    assert boot.estimate == pytest.approx(d.diff, abs=1e-12)
    assert boot.std == pytest.approx(d.se, rel=0.2)


def test_paired_bootstrap_is_seeded_and_oriented() -> None:
    rng = np.random.default_rng(6)
    y = rng.integers(0, 2, 400)
    good = np.clip(0.2 + 0.6 * y + rng.normal(0, 0.1, 400), 0, 1)
    bad = np.clip(0.5 + rng.normal(0, 0.2, 400), 0, 1)
    r1 = stats.paired_bootstrap(y, bad, good, "log_loss", n_resamples=200, seed=3)
    r2 = stats.paired_bootstrap(y, bad, good, "log_loss", n_resamples=200, seed=3)
    assert r1.low == r2.low
    assert r1.high == r2.high
    assert r1.estimate > 0  # lower log loss -> positive = b better
    assert r1.low > 0


def test_bootstrap_ci_coverage_is_near_nominal() -> None:
    """Binormal scores: true AUC = Phi(mu / sqrt(2)); the 90% CI should cover ~90%."""
    rng = np.random.default_rng(7)
    mu_a, mu_b = 1.0, 1.3
    truth = scipy.stats.norm.cdf(mu_b / math.sqrt(2)) - scipy.stats.norm.cdf(mu_a / math.sqrt(2))
    n_sim, n, covered = 200, 300, 0
    for i in range(n_sim):
        y = rng.integers(0, 2, n)
        shared = rng.normal(size=n)
        a = mu_a * y + math.sqrt(0.5) * (shared + rng.normal(size=n))
        b = mu_b * y + math.sqrt(0.5) * (shared + rng.normal(size=n))
        r = stats.paired_bootstrap(y, a, b, "roc_auc", n_resamples=200, confidence=0.9, seed=i)
        covered += r.low <= truth <= r.high
    assert 0.83 <= covered / n_sim <= 0.96


def test_percentiles() -> None:
    x = np.arange(1, 101, dtype=float)
    p = stats.percentiles(x)
    assert p == {
        "p50": np.percentile(x, 50),
        "p95": np.percentile(x, 95),
        "p99": np.percentile(x, 99),
    }
    with pytest.raises(GateInputError, match="NaN"):
        stats.percentiles([1.0, np.nan])
