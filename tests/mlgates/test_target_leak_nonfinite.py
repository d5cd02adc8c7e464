"""target_leak with +inf / -inf / NaN / huge values: ranks are consistent, AUC as sklearn's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import rankdata
from sklearn.metrics import roc_auc_score

from mlgates import target_leak


def _finite_mapped(x: np.ndarray) -> np.ndarray:
    """The documented order as finite numbers: NaN < -inf < finite values < +inf.

    Finite values become their scipy dense ranks (AUC depends on order only; shifting
    raw values by a margin would be absorbed by values around 1e20).
    """
    finite = np.isfinite(x)
    out = np.empty(x.size)
    out[finite] = rankdata(x[finite], method="dense") if finite.any() else []
    top = float(out[finite].max()) if finite.any() else 0.0
    out[np.isnan(x)] = -1.0
    out[x == -np.inf] = 0.0
    out[x == np.inf] = top + 1.0
    return out


def test_leak_through_plus_inf_is_caught() -> None:
    # positives carry +inf; negatives are half missing, half ordinary values
    rng = np.random.default_rng(0)
    n = 100
    y = np.r_[np.zeros(n), np.ones(n)].astype(int)
    neg = np.where(np.arange(n) % 2 == 0, np.nan, rng.normal(size=n))
    x = np.r_[neg, np.full(n, np.inf)]
    r = target_leak(pd.DataFrame({"x": x, "label": y}), "label")
    assert r.verdict == "fail", r.explain()
    row = r.details["features"]["x"]
    assert row["auc"] == pytest.approx(roc_auc_score(y, _finite_mapped(x)))
    assert row["auc"] == 1.0
    assert (row["missing"], row["infinite"]) == (n // 2, n)


def test_nan_is_separated_from_huge_values() -> None:
    # nanmin - 1.0 == 1e20 in floats: NaN used to tie with the huge values
    n = 60
    y = np.r_[np.zeros(n), np.ones(n)].astype(int)
    x = np.r_[np.full(n, np.nan), np.full(n, 1e20)]
    r = target_leak(pd.DataFrame({"x": x, "label": y}), "label")
    assert r.verdict == "fail", r.explain()
    assert r.details["features"]["x"]["auc"] == pytest.approx(roc_auc_score(y, _finite_mapped(x)))
    # and huge negatives: NaN still ranks below them
    x2 = np.r_[np.full(n, -1e20), np.full(n, np.nan)]
    r2 = target_leak(pd.DataFrame({"x": x2, "label": y}), "label")
    assert r2.verdict == "fail"
    assert r2.details["features"]["x"]["auc"] == 0.0
    assert r2.details["features"]["x"]["direction"] == "lower means positive"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_auc_matches_sklearn_on_finite_mapped_values(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 400
    y = rng.integers(0, 2, n)
    x = rng.normal(0.3 * y, 1.0) * rng.choice([1.0, 1e20], n)
    kind = rng.random(n)
    x[kind < 0.1] = np.nan
    x[(kind >= 0.1) & (kind < 0.2)] = -np.inf
    x[(kind >= 0.2) & (kind < 0.3) & (y == 1)] = np.inf
    x[(kind >= 0.3) & (kind < 0.35)] = np.inf
    r = target_leak(pd.DataFrame({"x": x, "label": y}), "label")
    row = r.details["features"]["x"]
    assert row["auc"] == pytest.approx(roc_auc_score(y, _finite_mapped(x)), abs=1e-12)
    assert row["missing"] == int(np.isnan(x).sum())
    assert row["infinite"] == int(np.isinf(x).sum())


def test_clean_features_pass_with_sklearn_auc() -> None:
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 500)
    x = rng.normal(0.5 * y, 1.0)
    r = target_leak(pd.DataFrame({"x": x, "label": y}), "label")
    assert r.verdict == "pass", r.explain()
    assert r.details["features"]["x"]["auc"] == pytest.approx(roc_auc_score(y, x), abs=1e-12)
    assert (r.details["features"]["x"]["missing"], r.details["features"]["x"]["infinite"]) == (
        0,
        0,
    )


def test_only_infinite_values_are_still_scored() -> None:
    y = np.r_[np.zeros(10), np.ones(10)].astype(int)
    x = np.r_[np.full(10, -np.inf), np.full(10, np.inf)]
    r = target_leak(pd.DataFrame({"x": x, "label": y}), "label")
    assert r.verdict == "fail"
    assert r.details["features"]["x"]["auc"] == 1.0
    only_nan = target_leak(
        pd.DataFrame({"x": np.full(20, np.nan), "z": np.arange(20.0), "label": y}), "label"
    )
    assert only_nan.details["features"]["x"]["note"] == "all missing"
