"""Metrics against scikit-learn, and the weighted (bootstrap) path against repeated rows."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from mlgates import metrics
from mlgates.result import GateInputError


def _data(n: int, seed: int, ties: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p = 1 / (1 + np.exp(-(rng.normal(size=n) + 1.2 * y - 0.5)))
    if ties:
        p = np.round(p, 1).clip(0.05, 0.95)
    return y, p


@pytest.mark.parametrize(("n", "seed", "ties"), [(40, 0, True), (500, 1, False), (500, 2, True)])
def test_metrics_match_sklearn(n: int, seed: int, ties: bool) -> None:
    y, p = _data(n, seed, ties)
    assert metrics.roc_auc(y, p) == pytest.approx(skm.roc_auc_score(y, p), abs=1e-12)
    assert metrics.pr_auc(y, p) == pytest.approx(skm.average_precision_score(y, p), abs=1e-12)
    assert metrics.log_loss(y, p) == pytest.approx(skm.log_loss(y, p), abs=1e-12)
    assert metrics.brier(y, p) == pytest.approx(skm.brier_score_loss(y, p), abs=1e-12)
    precision, recall, _ = skm.precision_recall_curve(y, p)
    for target in (0.5, 0.7, 0.9):
        expected = recall[precision >= target].max()
        assert metrics.recall_at_precision(y, p, target) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("name", sorted(metrics.METRICS))
def test_weighted_batch_equals_repeated_rows(name: str) -> None:
    y, p = _data(60, 3, ties=True)
    counts = np.random.default_rng(4).integers(0, 4, size=(3, y.size)).astype(np.float64)
    m = metrics.METRICS[name]
    batch = m.prepare(y, p)(counts)
    for row, w in zip(batch, counts, strict=True):
        rep = np.repeat(np.arange(y.size), w.astype(int))
        assert row == pytest.approx(m(y[rep], p[rep]), abs=1e-12)


def test_lower_is_better_flags() -> None:
    assert metrics.METRICS["roc_auc"].higher_is_better
    assert not metrics.METRICS["log_loss"].higher_is_better
    assert not metrics.METRICS["brier"].higher_is_better


@pytest.mark.parametrize(
    ("y", "s", "match"),
    [
        ([0, 1, np.nan], [0.1, 0.2, 0.3], "NaN label"),
        ([1, 1, 1], [0.1, 0.2, 0.3], "both classes"),
        ([0, 1, 2], [0.1, 0.2, 0.3], "only 0/1"),
        ([0, 1], [0.1, 0.2, 0.3], "has 3 values but the labels have 2"),
        ([0, 1], [0.1, np.nan], "non-finite"),
        ([], [], "empty"),
    ],
)
def test_bad_input_raises(y: list[float], s: list[float], match: str) -> None:
    with pytest.raises(GateInputError, match=match):
        metrics.roc_auc(y, s)


def test_probability_metrics_need_probabilities() -> None:
    with pytest.raises(GateInputError, match=r"probabilities in \[0, 1\]"):
        metrics.log_loss([0, 1], [-0.5, 2.0])
    with pytest.raises(GateInputError, match="unknown metric"):
        metrics.get_metric("accuracy")
