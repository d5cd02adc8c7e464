"""The fast paths of issue 18 against the straightforward ones they replace.

- The rank-based weighted ROC AUC (``mlgates.metrics``) is fed the SAME multinomial
  resample weights as a loop that rebuilds each resample's rows and calls scikit-learn,
  and as scikit-learn with ``sample_weight``: equal within 1e-12, ties included.
- The paired bootstrap's chunks stay bounded in memory.
- Speed: the paired bootstrap against the sklearn loop on a reduced problem, with a floor
  below what it reaches, so it fails on the grouped-ties path it replaced (9-11x there,
  under load) but not on a busy machine.
"""

from __future__ import annotations

import time

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


def _best_of(fn: object, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        best = min(best, time.perf_counter() - start)
    return best


def test_paired_bootstrap_is_many_times_faster_than_the_sklearn_loop() -> None:
    rows, resamples, loop_resamples = 50_000, 200, 8
    y, a, b = _scores(rows, seed=2, ties=False)
    fast = _best_of(
        lambda: stats.paired_bootstrap(y, a, b, "roc_auc", n_resamples=resamples, seed=0), 3
    )
    rng = np.random.default_rng(0)

    def loop() -> None:
        for _ in range(loop_resamples):
            idx = rng.integers(0, rows, rows)
            roc_auc_score(y[idx], b[idx]) - roc_auc_score(y[idx], a[idx])

    slow = _best_of(loop, 2) / loop_resamples * resamples
    # issue 18 asks >= 30x at 100k x 1000 (benchmarks/bench_gates.py measures that). Here, at
    # half the rows on a machine at load 6: 25-35x, and 9-11x for the grouped-ties path this
    # replaced; the floor sits between, below the goal, to stay robust to load
    assert slow / fast >= 18, f"bootstrap {fast:.3f}s vs sklearn loop {slow:.3f}s"
