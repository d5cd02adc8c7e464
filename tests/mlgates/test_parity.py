"""feature_parity and model_parity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlgates import feature_parity, model_parity
from mlgates.result import GateInputError


def _features(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "transaction_id": [f"t{i}" for i in range(n)],
            "avg_order_30d": rng.lognormal(3, 1, n),
            "txn_velocity_24h": rng.poisson(3, n).astype(float),
            "merchant_category_code": rng.choice(["grocery", "travel"], n),
            "seconds_since_last_txn": np.where(
                rng.random(n) < 0.1, np.nan, rng.exponential(3600, n)
            ),
        }
    )


def test_feature_parity_clean_passes_with_float_noise_and_nan() -> None:
    off = _features()
    on = off.sample(frac=1.0, random_state=1).copy()  # row order must not matter
    on["avg_order_30d"] = on["avg_order_30d"] * (1 + 1e-12)
    r = feature_parity(off, on, keys="transaction_id")
    assert r.verdict == "pass", r.explain()
    assert r.details["matched"] == 200
    assert r.rubric == ("monitor-3",)


def test_feature_parity_mismatch_names_worst_feature_with_examples() -> None:
    off = _features()
    on = off.copy()
    on.loc[on.index[:20], "txn_velocity_24h"] += 1  # window boundary off by one event
    on.loc[on.index[3], "merchant_category_code"] = "GROCERY"
    r = feature_parity(off, on, keys=["transaction_id"])
    assert r.verdict == "fail"
    assert r.measured == pytest.approx(0.1)
    assert r.message.index("txn_velocity_24h") < r.message.index("merchant_category_code")
    assert "transaction_id=t0" in r.message
    row = r.details["features"]["txn_velocity_24h"]
    assert row["mismatches"] == 20
    assert row["examples"][0]["abs_diff"] == 1.0
    cat = r.details["features"]["merchant_category_code"]
    assert cat["kind"] == "exact"
    assert cat["examples"][0] == {
        "transaction_id": "t3",
        "offline": "grocery" if off.merchant_category_code[3] == "grocery" else "travel",
        "online": "GROCERY",
    }


def test_feature_parity_nan_on_one_side_and_tolerances() -> None:
    off = _features()
    on = off.copy()
    on.loc[on.index[0], "seconds_since_last_txn"] = (
        np.nan if pd.notna(off.seconds_since_last_txn[0]) else 5.0
    )
    on["avg_order_30d"] = on["avg_order_30d"] + 0.001
    r = feature_parity(off, on, keys="transaction_id")
    assert r.verdict == "fail"
    assert r.details["features"]["seconds_since_last_txn"]["mismatches"] == 1
    loose = feature_parity(
        off,
        on,
        keys="transaction_id",
        tolerances={"avg_order_30d": 0.01},
        features=["avg_order_30d"],
    )
    assert loose.verdict == "pass"
    with pytest.raises(GateInputError, match="unknown feature"):
        feature_parity(off, on, keys="transaction_id", tolerances={"nope": 1.0})


def test_feature_parity_missing_keys_fail() -> None:
    off = _features()
    on = off.iloc[5:].copy()
    extra = off.iloc[:1].copy()
    extra["transaction_id"] = "t999"
    on = pd.concat([on, extra])
    r = feature_parity(off, on, keys="transaction_id")
    assert r.verdict == "fail"
    assert r.details["missing_online"] == 5
    assert r.details["missing_offline"] == 1
    assert "5 key(s) missing online" in r.message
    assert r.details["missing_offline_examples"] == [{"transaction_id": "t999"}]


def test_feature_parity_bad_input() -> None:
    off = _features(10)
    with pytest.raises(GateInputError, match="duplicated key"):
        feature_parity(pd.concat([off, off.head(1)]), off, keys="transaction_id")
    with pytest.raises(GateInputError, match="missing column"):
        feature_parity(off, off, keys="user_id")
    with pytest.raises(GateInputError, match="empty"):
        feature_parity(off.iloc[:0], off, keys="transaction_id")


def test_model_parity() -> None:
    rng = np.random.default_rng(0)
    native = rng.random(1000)
    onnx = native.astype(np.float32).astype(np.float64)  # float32 rounding only
    ok = model_parity(native, onnx, atol=1e-6)
    assert ok.verdict == "pass", ok.explain()
    broken = onnx.copy()
    broken[[10, 500]] += [0.2, 0.05]
    r = model_parity(native, broken, atol=1e-5)
    assert r.verdict == "fail"
    assert r.measured == pytest.approx(0.2, abs=1e-6)
    assert [w["row"] for w in r.details["worst_rows"]] == [10, 500]
    assert "worst row 10" in r.message
    nan = onnx.copy()
    nan[3] = np.nan
    assert model_parity(native, nan).details["nan_mismatches"] == 1
    with pytest.raises(GateInputError, match="score the same rows"):
        model_parity(native, native[:10])
