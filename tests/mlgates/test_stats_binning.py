"""PSI binning of low-cardinality and heavily tied data, and validation of bins/eps/CI args.

References are independent of ``quantile_bins``: PSI summed by hand over the distinct
values (``collections.Counter``), and ``np.unique`` counts.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mlgates import stats
from mlgates.result import GateInputError


def _psi_by_value(ref: np.ndarray, cur: np.ndarray, eps: float = stats.DEFAULT_EPS) -> float:
    """PSI with one bin per distinct value of either side, from plain counting."""
    rc, cc = Counter(ref.tolist()), Counter(cur.tolist())
    total = 0.0
    for v in set(rc) | set(cc):
        r = max(rc[v] / ref.size, eps)
        c = max(cc[v] / cur.size, eps)
        total += (c - r) * math.log(c / r)
    return total


def test_binary_flag_gets_one_bin_per_value_and_hand_computed_psi() -> None:
    ref = np.r_[np.ones(50), np.zeros(950)]  # 5% flagged: every decile is 0
    cur = np.r_[np.ones(600), np.zeros(400)]  # 60% flagged
    edges = stats.quantile_bins(ref, 10)
    assert edges.tolist() == [0.0, 1.0, np.nextafter(1.0, np.inf)]
    # below 0 | {0} | {1} | above 1 | NaN
    assert stats.bin_counts(ref, edges).tolist() == [0, 950, 50, 0, 0]
    assert stats.bin_counts(cur, edges).tolist() == [0, 400, 600, 0, 0]
    hand = (0.6 - 0.05) * math.log(0.6 / 0.05) + (0.4 - 0.95) * math.log(0.4 / 0.95)
    assert hand == pytest.approx(1.8425, abs=1e-4)
    assert stats.psi(ref, cur) == pytest.approx(hand, rel=1e-12)
    assert stats.psi(ref, cur) == pytest.approx(_psi_by_value(ref, cur), rel=1e-12)


def test_low_cardinality_counts_match_unique() -> None:
    rng = np.random.default_rng(0)
    ref = rng.poisson(1.5, 3000).clip(0, 6).astype(float)
    cur = rng.poisson(2.5, 3000).clip(0, 6).astype(float)
    values, counts = np.unique(ref, return_counts=True)
    assert values.size <= 10
    edges = stats.quantile_bins(ref, 10)
    np.testing.assert_array_equal(edges[:-1], values)
    assert edges[-1] == np.nextafter(values[-1], np.inf)
    assert stats.bin_counts(ref, edges)[1:-2].tolist() == counts.tolist()
    assert stats.psi(ref, cur) == pytest.approx(_psi_by_value(ref, cur), rel=1e-12)
    assert stats.psi(ref, cur) > 0.2


@pytest.mark.parametrize("jump", [5.0, -5.0, 1e-9, -1e-9])
def test_constant_reference_sees_jumps_up_and_down(jump: float) -> None:
    ref = np.zeros(200)
    cur = np.full(200, jump)
    # reference share 1 -> eps, current eps -> 1 in the bin below/above the constant
    eps = stats.DEFAULT_EPS
    hand = 2 * (1 - eps) * math.log(1 / eps)
    assert stats.psi(ref, cur) == pytest.approx(hand, rel=1e-12)
    assert stats.psi(ref, ref) == 0.0


def test_heavy_value_is_separated_from_the_mass_above_it() -> None:
    rng = np.random.default_rng(1)
    high = np.sort(rng.uniform(0.5, 1.0, 50))
    ref = np.r_[np.full(950, 0.001), high]  # 95% of scores at 0.001
    edges = stats.quantile_bins(ref, 10)
    assert edges.tolist() == [0.001, high[0]]
    assert stats.bin_counts(ref, edges).tolist() == [0, 950, 50, 0]
    cur = np.r_[np.full(500, 0.001), rng.choice(high, 500)]
    hand = (0.5 - 0.95) * math.log(0.5 / 0.95) + (0.5 - 0.05) * math.log(0.5 / 0.05)
    assert stats.psi(ref, cur) == pytest.approx(hand, rel=1e-12)
    # a heavy value at the maximum gets the bin just above it
    top = np.r_[np.arange(50.0), np.full(950, 100.0)]
    e = stats.quantile_bins(top, 10)
    assert e[-1] == np.nextafter(100.0, np.inf)
    assert stats.psi(top, np.full(100, 200.0)) > 10


def test_continuous_reference_keeps_numpy_quantiles() -> None:
    x = np.random.default_rng(2).exponential(size=5000)
    qs = np.linspace(0, 1, 11)[1:-1]
    np.testing.assert_allclose(stats.quantile_bins(x, 10), np.quantile(x, qs), rtol=1e-12)


def test_clean_low_cardinality_psi_is_small() -> None:
    rng = np.random.default_rng(3)
    ref = (rng.random(5000) < 0.05).astype(float)
    cur = (rng.random(5000) < 0.05).astype(float)
    assert stats.psi(ref, cur) < 0.02
    assert stats.psi(np.full(300, 7.0), np.full(100, 7.0)) == 0.0


def test_bin_labels_mark_single_value_bins() -> None:
    edges = stats.quantile_bins(np.r_[np.zeros(95), np.ones(5)], 10)
    assert stats.bin_labels(edges) == ["(-inf, 0)", "[0, 1)", "{1}", "(1, inf)", "__nan__"]
    assert stats.bin_labels([1.0, 2.0]) == ["(-inf, 1)", "[1, 2)", "[2, inf)", "__nan__"]


tied = st.one_of(
    st.sampled_from([0.0, 1.0, 2.5, -3.0]),
    st.floats(-100, 100, allow_nan=False),
)


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, st.integers(2, 300), elements=tied), st.integers(2, 12))
def test_heavy_values_sit_alone_in_their_bin(ref: np.ndarray, n_bins: int) -> None:
    edges = stats.quantile_bins(ref, n_bins)
    assert np.all(np.isfinite(edges))
    assert np.all(np.diff(edges) > 0)
    values, counts = np.unique(ref, return_counts=True)
    spacing = (ref.size - 1) / n_bins
    few = values.size <= n_bins
    for v, m in zip(values, counts, strict=True):
        if few or m - 1 >= 2 * spacing:  # its own value or it covers >= 2 quantiles
            i = int(np.searchsorted(edges, v, side="right"))
            lo = edges[i - 1]
            hi = edges[i] if i < edges.size else np.inf
            in_bin = ref[(ref >= lo) & (ref < hi)]
            assert lo == v
            assert np.all(in_bin == v)
    assert stats.psi(ref, ref, bins=n_bins) == 0.0


@pytest.mark.parametrize(
    ("edges", "match"),
    [
        ([1.0, 0.0, -1.0], "strictly increasing"),
        ([0.0, 0.0, 1.0], "strictly increasing"),
        ([0.0, np.inf], "finite"),
        ([np.nan, 1.0], "finite"),
        ([[0.0, 1.0]], "1-d"),
        (["a", "b"], "1-d sequence of numbers"),
    ],
)
def test_bad_explicit_edges_are_rejected(edges: object, match: str) -> None:
    ref = np.random.default_rng(4).normal(size=100)
    with pytest.raises(GateInputError, match=match):
        stats.bin_counts(ref, edges)  # type: ignore[arg-type]
    with pytest.raises(GateInputError, match=match):
        stats.psi(ref, ref, bins=edges)  # type: ignore[arg-type]


def test_sorted_edges_and_numpy_integer_bin_counts_work() -> None:
    ref = np.random.default_rng(5).normal(size=1000)
    cur = ref + 0.5
    counts = stats.bin_counts(ref, [-1.0, 0.0, 1.0])
    assert counts.min() >= 0
    assert counts.sum() == ref.size
    assert stats.psi(ref, cur, bins=np.int64(10)) == stats.psi(ref, cur, bins=10)
    assert stats.psi(ref, cur, bins=np.int32(5)) == stats.psi(ref, cur, bins=5)
    for bad in (10.0, True, np.float64(10.0)):
        with pytest.raises(GateInputError, match="integer bin count"):
            stats.psi(ref, cur, bins=bad)
    with pytest.raises(GateInputError, match="n_bins must be an integer"):
        stats.quantile_bins(ref, 10.5)  # type: ignore[arg-type]


@pytest.mark.parametrize("eps", [0.0, -1e-4, 1.0, float("nan")])
def test_eps_must_be_a_positive_share(eps: float) -> None:
    ref = np.r_[np.zeros(50), np.ones(50)]
    with pytest.raises(GateInputError, match="eps must be in"):
        stats.psi(ref, ref, bins=[0.5, 2.0], eps=eps)  # bin [2, inf) empty on both sides
    with pytest.raises(GateInputError, match="eps must be in"):
        stats.psi_terms([1, 0], [1, 0], eps=eps)
