"""The fast paths of issue 18 against the straightforward ones they replace.

- The rank-based weighted ROC AUC (``mlgates.metrics``) is fed the SAME multinomial
  resample weights as a loop that rebuilds each resample's rows and calls scikit-learn,
  and as scikit-learn with ``sample_weight``: equal within 1e-12, ties included.
- The paired bootstrap's chunks stay bounded in memory.

The speed goals themselves are measured in ``nox -s perf`` (benchmarks/bench_gates.py and
bench_evidently.py, each as a ratio against its reference in the same run), not in timed
tests, which a busy CI machine would turn into coin flips.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from mlgates import stats
from mlgates.metrics import METRICS


def _scores(n: int, seed: int, ties: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.15).astype(int)
    latent = rng.normal(size=n)
    a = 1.2 * y + latent
    b = 1.3 * y + latent + 0.3 * rng.normal(size=n)
    if ties:  # coarse scores: many positive-negative ties, which count one half
        a, b = np.round(a, 1), np.round(b, 0)
    return y, a, b


def _resample_weights(n: int, k: int, seed: int) -> np.ndarray:
    """Multinomial(n, 1/n) counts, drawn the way ``stats.bootstrap_weights`` draws them."""
    return np.concatenate(list(stats.bootstrap_weights(n, k, np.random.default_rng(seed))))


@pytest.mark.parametrize(("n", "ties"), [(2000, False), (2000, True), (37, True)])
def test_weighted_auc_equals_sklearn_loop_on_the_same_weights(n: int, ties: bool) -> None:
    y, a, b = _scores(n, seed=n, ties=ties)
    weights = _resample_weights(n, 25, seed=1)
    for s in (a, b):
        fast = METRICS["roc_auc"].prepare(y, s)(weights)
        for j, w in enumerate(weights):
            rows = np.repeat(np.arange(n), w.astype(int))  # the resample, row by row
            yi = y[rows]
            if 0 < yi.sum() < yi.size:
                assert abs(fast[j] - roc_auc_score(yi, s[rows])) <= 1e-12
                assert abs(fast[j] - roc_auc_score(y, s, sample_weight=w)) <= 1e-12
            else:  # one class only: undefined, and the bootstrap drops it as invalid
                assert np.isnan(fast[j])


def test_weighted_auc_handles_fractional_weights_and_all_ties() -> None:
    y = np.array([0, 1, 0, 1, 1, 0, 0, 1])
    s = np.array([0.5, 0.5, 0.5, 0.5, 0.9, 0.1, 0.9, 0.2])
    w = np.array([[0.5, 2.0, 1.0, 0.25, 3.0, 1.5, 0.0, 1.0], np.ones(8)])
    fast = METRICS["roc_auc"].prepare(y, s)(w)
    for j in range(2):
        assert fast[j] == pytest.approx(roc_auc_score(y, s, sample_weight=w[j]), abs=1e-12)
    constant = METRICS["roc_auc"].prepare(y, np.zeros(8))(w)
    assert constant == pytest.approx([0.5, 0.5], abs=1e-15)


def test_paired_bootstrap_diffs_equal_the_loop_on_the_same_resamples() -> None:
    y, a, b = _scores(3000, seed=5, ties=True)
    result = stats.paired_bootstrap(y, a, b, "roc_auc", n_resamples=40, seed=9)
    # the bootstrap's own draws, replayed through sklearn
    expected = []
    for w in _resample_weights(y.size, 40, seed=9):
        expected.append(roc_auc_score(y, b, sample_weight=w) - roc_auc_score(y, a, sample_weight=w))
    assert result.n_invalid == 0
    np.testing.assert_allclose(result.diffs, expected, rtol=0, atol=1e-12)


def test_bootstrap_chunks_stay_bounded() -> None:
    n = 100_000
    shapes = [w.shape for w in stats.bootstrap_weights(n, 1000, np.random.default_rng(0))]
    assert sum(k for k, _ in shapes) == 1000
    assert all(k * cols <= max(stats.CHUNK_CELLS, n) for k, cols in shapes)
    assert stats.CHUNK_CELLS * 8 <= 8_000_000  # one float64 chunk matrix stays cache-sized


# --------------------------------------------------------------------------- PSI


def _old_quantile_bins(values: np.ndarray, k: int) -> np.ndarray:
    """``stats.quantile_bins`` before issue 18 (its own sort of the finite values)."""
    x = np.asarray(values, dtype=np.float64).ravel()
    xs = np.sort(x[np.isfinite(x)])
    if xs.size == 0:
        return np.empty(0)
    distinct = xs[np.r_[True, xs[1:] != xs[:-1]]]
    if distinct.size <= k:
        return np.r_[distinct, np.nextafter(distinct[-1:], np.inf)]
    h = (xs.size - 1) * np.linspace(0.0, 1.0, k + 1)[1:-1]
    lo = np.floor(h).astype(np.intp)
    hi = np.minimum(lo + 1, xs.size - 1)
    raw = xs[lo] + (h - lo) * (xs[hi] - xs[lo])
    edges, repeats = np.unique(raw, return_counts=True)
    heavy = edges[repeats > 1]
    if heavy.size == 0:
        return edges
    pos = np.searchsorted(xs, heavy, side="right")
    above = np.where(pos < xs.size, xs[np.minimum(pos, xs.size - 1)], np.nextafter(heavy, np.inf))
    return np.unique(np.r_[edges, above])


def _old_bin_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """``stats.bin_counts`` before issue 18: one full pass per edge."""
    x = np.asarray(values, dtype=np.float64)
    n_nan = int(np.count_nonzero(np.isnan(x)))
    at_or_above = np.array([np.count_nonzero(x >= v) for v in edges], dtype=np.int64)
    bounds = np.r_[x.size - n_nan, at_or_above, 0]
    return np.r_[bounds[:-1] - bounds[1:], n_nan].astype(np.int64)


def _psi_columns() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    n = 150_001  # more than two COUNT_BLOCKs, and not a multiple of one
    heavy = rng.normal(size=n)
    heavy[rng.random(n) < 0.35] = 0.0  # one value collapses several quantiles
    with_holes = rng.normal(size=n)
    with_holes[rng.random(n) < 0.05] = np.nan
    with_holes[:3] = [np.inf, -np.inf, np.inf]
    top_heavy = rng.exponential(size=n)
    top_heavy[rng.random(n) < 0.3] = top_heavy.max()  # the heavy tie is the maximum
    return {
        "continuous": rng.normal(size=n),
        "rounded": np.round(rng.normal(size=n), 1),
        "heavy_zero": heavy,
        "heavy_max": top_heavy,
        "nan_and_inf": with_holes,
        "flags": rng.integers(0, 2, n).astype(float),
        "ten_values": rng.integers(0, 10, n).astype(float),
        "eleven_values": rng.integers(0, 11, n).astype(float),
        "constant": np.full(n, 3.5),
        "signed_zeros": np.r_[np.zeros(500), -np.zeros(500), rng.normal(size=500)],
        "all_nan": np.full(100, np.nan),
        "only_inf": np.r_[np.full(5, np.inf), np.full(3, -np.inf), np.nan],
        "tiny": np.array([2.0]),
        "empty": np.empty(0),
    }


@pytest.mark.parametrize("name", sorted(_psi_columns()))
@pytest.mark.parametrize("n_bins", [2, 10, 20])
def test_fit_bins_equals_the_old_sort_then_count(name: str, n_bins: int) -> None:
    values = _psi_columns()[name]
    edges, counts = stats.fit_bins(values, n_bins)
    old_edges = _old_quantile_bins(values, n_bins)
    np.testing.assert_array_equal(edges, old_edges)
    np.testing.assert_array_equal(stats.quantile_bins(values, n_bins), old_edges)
    np.testing.assert_array_equal(counts, _old_bin_counts(values, old_edges))
    shifted = np.r_[values, values[: values.size // 3] + 0.25] if values.size else values
    np.testing.assert_array_equal(
        stats.bin_counts(shifted, old_edges), _old_bin_counts(shifted, old_edges)
    )


def test_psi_drift_values_equal_the_old_counts() -> None:
    import pandas as pd

    from mlgates import FrozenBins, psi_drift

    cols = {k: v for k, v in _psi_columns().items() if v.size == 150_001}
    ref = pd.DataFrame(cols)
    rng = np.random.default_rng(8)
    cur = ref.sample(frac=1.0, random_state=3).reset_index(drop=True)
    cur = cur + rng.normal(0.0, 0.1, size=cur.shape)  # NaN stays NaN, inf stays inf
    fitted = psi_drift(ref, cur)
    frozen = psi_drift(ref, cur, bins=FrozenBins.fit(ref))
    for name, values in cols.items():
        edges = _old_quantile_bins(values, 10)
        expected = stats.psi_terms(
            _old_bin_counts(values, edges), _old_bin_counts(cur[name].to_numpy(), edges)
        ).sum()
        assert fitted.details["features"][name]["psi"] == expected
        assert frozen.details["features"][name]["psi"] == expected
