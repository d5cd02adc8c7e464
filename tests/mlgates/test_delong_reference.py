"""DeLong against independent references: a hand-computed example, Mann-Whitney U, sklearn."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import expit, logit
from scipy.stats import mannwhitneyu, norm

from mlgates import stats


def test_delong_hand_computed_example() -> None:
    """Two positives, three negatives, worked by hand from the structural components.

    Model a: positives 0.9, 0.4; negatives 0.5, 0.2, 0.1.
      V10 (share of negatives below each positive) = [1, 2/3]; V01 (share of positives
      above each negative) = [1/2, 1, 1]; AUC = 5/6.
    Model b: positives 0.8, 0.6; negatives 0.7, 0.65, 0.1.
      V10 = [1, 1/3]; V01 = [1/2, 1/2, 1]; AUC = 2/3.
    S10 (m = 2): var_a = 1/18, var_b = 2/9, cov = 1/9.
    S01 (n = 3): var_a = 1/12, var_b = 1/12, cov = 1/24.
    Var(b - a) = (1/18 + 2/9 - 2/9) / 2 + (1/12 + 1/12 - 1/12) / 3 = 1/36 + 1/36 = 1/18.
    """
    y = np.array([1, 1, 0, 0, 0])
    a = np.array([0.9, 0.4, 0.5, 0.2, 0.1])
    b = np.array([0.8, 0.6, 0.7, 0.65, 0.1])
    d = stats.delong(y, a, b)
    assert d.auc_a == pytest.approx(5 / 6, abs=1e-12)
    assert d.auc_b == pytest.approx(2 / 3, abs=1e-12)
    assert d.diff == pytest.approx(-1 / 6, abs=1e-12)
    assert d.se == pytest.approx(math.sqrt(1 / 18), abs=1e-12)
    assert d.z == pytest.approx((-1 / 6) / math.sqrt(1 / 18), abs=1e-12)
    assert d.pvalue == pytest.approx(2 * norm.sf(abs(d.z)), abs=1e-12)
    low, high = d.ci(0.95)
    assert low == pytest.approx(-1 / 6 - norm.ppf(0.975) * math.sqrt(1 / 18), abs=1e-9)
    assert high == pytest.approx(-1 / 6 + norm.ppf(0.975) * math.sqrt(1 / 18), abs=1e-9)
    # one-sided p-values against a margin, from the same normal
    assert d.pvalue_inferior(0.1) == pytest.approx(norm.cdf((-1 / 6 + 0.1) / d.se), abs=1e-12)
    assert d.pvalue_noninferior(0.1) == pytest.approx(norm.sf((-1 / 6 + 0.1) / d.se), abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_delong_auc_is_the_mann_whitney_u_over_mn_with_ties(seed: int) -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    y = (rng.random(300) < 0.3).astype(int)
    a = np.round(y + rng.normal(size=300), 1)  # rounded: many ties
    b = np.round(0.5 * y + rng.normal(size=300), 1)
    d = stats.delong(y, a, b)
    m, n = int(y.sum()), int((1 - y).sum())
    for auc, s in ((d.auc_a, a), (d.auc_b, b)):
        u = mannwhitneyu(s[y == 1], s[y == 0], alternative="two-sided").statistic
        assert auc == pytest.approx(u / (m * n), abs=1e-12)
        assert auc == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_delong_variance_by_brute_force_structural_components() -> None:
    """O(m n) pairwise psi(x, y) = 1, 1/2, 0, written independently of the midrank form."""
    rng = np.random.default_rng(3)
    y = (rng.random(120) < 0.4).astype(int)
    a = np.round(y + rng.normal(size=120), 1)
    b = np.round(0.8 * y + 0.6 * a + rng.normal(size=120), 1)

    def components(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pos, neg = s[y == 1][:, None], s[y == 0][None, :]
        psi = (pos > neg) + 0.5 * (pos == neg)
        return psi.mean(axis=1), psi.mean(axis=0)

    (v10a, v01a), (v10b, v01b) = components(a), components(b)
    m, n = v10a.size, v01a.size
    var = np.var(v10b - v10a, ddof=1) / m + np.var(v01b - v01a, ddof=1) / n
    d = stats.delong(y, a, b)
    assert d.diff == pytest.approx(v10b.mean() - v10a.mean(), abs=1e-12)
    assert d.se == pytest.approx(math.sqrt(var), rel=1e-10)


def test_delong_variances_and_logit_statistic_of_the_hand_example() -> None:
    """Per-model variances from the same components: var_a = (1/18)/2 + (1/12)/3 = 1/18,
    var_b = (2/9)/2 + (1/12)/3 = 5/36, cov = (1/9)/2 + (1/24)/3 = 5/72; then the logit-scale
    z of H0 ``auc_b - auc_a = delta`` by the delta method, written out with scipy."""
    y = np.array([1, 1, 0, 0, 0])
    a = np.array([0.9, 0.4, 0.5, 0.2, 0.1])
    b = np.array([0.8, 0.6, 0.7, 0.65, 0.1])
    d = stats.delong(y, a, b)
    assert (d.var_a, d.var_b, d.cov_ab) == pytest.approx((1 / 18, 5 / 36, 5 / 72), abs=1e-12)
    delta = -0.1
    a0, b0 = 5 / 6 + delta, 2 / 3
    ga, gb = a0 * (1 - a0), b0 * (1 - b0)
    var = (5 / 36) / gb**2 + (1 / 18) / ga**2 - 2 * (5 / 72) / (ga * gb)
    expected = float((logit(b0) - logit(a0)) / math.sqrt(var))
    assert stats.auc_difference_z(d, 2, 3, delta) == pytest.approx(expected, abs=1e-12)
    # the interval holds the deltas the statistic does not reject at z = 1.96: on 5 rows
    # the upper side reaches the end of the range (auc_b cannot exceed 1)
    low, high = stats.auc_difference_ci(d, 2, 3, norm.ppf(0.975))
    assert stats.auc_difference_z(d, 2, 3, low) == pytest.approx(norm.ppf(0.975), abs=1e-6)
    assert high == pytest.approx(1 - 5 / 6, abs=1e-9)
    assert stats.auc_difference_z(d, 2, 3, high) > -norm.ppf(0.975)
    assert low < -1 / 6 < high
    assert float(expit(0.0)) == 0.5  # scipy's expit/logit are the reference transforms


@pytest.mark.parametrize("margin", [0.0, 0.02])
def test_auc_difference_pvalues_invert_the_interval(margin: float) -> None:
    """At z = Phi^-1(1 - p) the limit of that side sits exactly on -margin."""
    rng = np.random.default_rng(4)
    y = (rng.random(400) < 0.2).astype(int)
    latent = rng.normal(size=400) + 2.5 * y
    champ, better = latent + rng.normal(size=400), latent + 0.3 * rng.normal(size=400)
    d = stats.delong(y, champ, better)  # candidate clearly better: "not worse" p is small
    p_worse, p_ok = stats.auc_difference_pvalues(d, int(y.sum()), int((1 - y).sum()), margin)
    assert p_worse + p_ok == pytest.approx(1.0)
    assert p_ok < 0.5
    low, _ = stats.auc_difference_ci(d, int(y.sum()), int((1 - y).sum()), norm.isf(p_ok))
    assert low == pytest.approx(-margin, abs=1e-9)
    flipped = stats.delong(y, better, champ)
    p_worse, p_ok = stats.auc_difference_pvalues(flipped, int(y.sum()), int((1 - y).sum()), margin)
    assert p_worse < 0.5
    _, high = stats.auc_difference_ci(flipped, int(y.sum()), int((1 - y).sum()), norm.isf(p_worse))
    assert high == pytest.approx(-margin, abs=1e-9)
