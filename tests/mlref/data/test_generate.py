"""The transaction generator: shape, determinism, plausibility of fraud signals, drift."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mlref.data.columns import CATEGORIES, DRIFT_CATEGORY, RAW_COLUMNS
from mlref.data.generate import (
    DRIFT_CATEGORY_SHARE,
    RAW_DTYPES,
    generate_transactions,
    read_parquet,
    write_parquet,
)
from mlref.settings import DataConfig

if TYPE_CHECKING:
    from pathlib import Path

SMALL = DataConfig(n_users=300, days=45, fraud_rate=0.02, seed=3)


@pytest.fixture(scope="module")
def small() -> pd.DataFrame:
    return generate_transactions(SMALL)


def _parquet_digest(df: pd.DataFrame, path: Path) -> str:
    return hashlib.sha256(write_parquet(df, path).read_bytes()).hexdigest()


def _frame_digest(df: pd.DataFrame) -> str:
    hashed = pd.util.hash_pandas_object(df, index=True).to_numpy()
    return hashlib.sha256(hashed.tobytes()).hexdigest()


def test_columns_dtypes_order_and_ids(small: pd.DataFrame) -> None:
    assert tuple(small.columns) == RAW_COLUMNS
    assert {c: str(t) for c, t in small.dtypes.items()} == RAW_DTYPES
    assert small.notna().all().all()
    ids = small["transaction_id"]
    assert ids.is_unique
    assert ids.str.fullmatch(r"t\d{9}").all()
    # sorted by (event_timestamp, transaction_id), and ids sort like the rows
    keys = list(zip(small["event_timestamp"], ids, strict=True))
    assert keys == sorted(keys)
    assert ids.is_monotonic_increasing
    nanos = small["event_timestamp"].astype("int64")
    assert (nanos % 1_000_000_000 == 0).all()  # whole seconds
    start = pd.Timestamp(SMALL.start)
    assert small["event_timestamp"].min() >= start
    assert small["event_timestamp"].max() < start + pd.Timedelta(days=SMALL.days)
    assert set(small["merchant_category"]) <= set(CATEGORIES)  # no drift category by default
    assert set(small["is_fraud"].unique()) == {0, 1}
    assert small["amount"].between(0.01, 1_000_000).all()
    assert (small["label_timestamp"] >= small["event_timestamp"]).all()


def test_same_config_gives_identical_bytes(small: pd.DataFrame, tmp_path: Path) -> None:
    again = generate_transactions(SMALL)
    assert _frame_digest(again) == _frame_digest(small)
    assert _parquet_digest(again, tmp_path / "a.parquet") == _parquet_digest(
        small, tmp_path / "b.parquet"
    )


def test_different_seed_gives_different_data(small: pd.DataFrame) -> None:
    other = generate_transactions(replace(SMALL, seed=SMALL.seed + 1))
    assert _frame_digest(other) != _frame_digest(small)


def test_parquet_round_trip_keeps_dtypes_and_zone(small: pd.DataFrame, tmp_path: Path) -> None:
    back = read_parquet(write_parquet(small, tmp_path / "sub" / "raw.parquet"))
    pd.testing.assert_frame_equal(back, small)
    assert str(back["event_timestamp"].dt.tz) == "UTC"


def test_read_parquet_missing_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="generate or copy the data"):
        read_parquet(tmp_path / "nope.parquet")


def test_default_size_is_in_the_documented_range() -> None:
    cfg = DataConfig()
    # expected rows from the generator's own parameters: ~1.3 txns/user/day, 20% join late;
    # the default (1000 users x 90 days, ~100k rows) keeps the demo within its time budget
    rows = len(generate_transactions(replace(cfg, n_users=200)))
    assert 75_000 <= rows * cfg.n_users / 200 <= 150_000


def test_fraud_rate_matches_config(small: pd.DataFrame) -> None:
    assert small["is_fraud"].mean() == pytest.approx(SMALL.fraud_rate, abs=0.001)
    none = generate_transactions(replace(SMALL, fraud_rate=0.0, n_users=50))
    assert none["is_fraud"].sum() == 0


def _velocity_24h(df: pd.DataFrame) -> pd.Series:
    """Number of the user's transactions in the 24 h before each one (excluding it)."""
    out = np.zeros(len(df), dtype=np.int64)
    seconds = df["event_timestamp"].astype("int64").to_numpy() // 1_000_000_000
    for _, rows in df.groupby("user_id").indices.items():
        t = seconds[rows]  # rows are in time order (frame is sorted)
        out[rows] = np.arange(len(t)) - np.searchsorted(t, t - 86_400, side="left")
    return pd.Series(out, index=df.index)


def test_fraud_comes_in_bursts(small: pd.DataFrame) -> None:
    velocity = _velocity_24h(small)
    fraud = small["is_fraud"] == 1
    assert velocity[fraud].mean() > 1.5 * velocity[~fraud].mean()
    # within a user, most fraud follows the previous transaction within minutes
    gap = small.groupby("user_id")["event_timestamp"].diff().dt.total_seconds()
    assert (gap[fraud] <= 600).mean() > 0.5
    assert (gap[~fraud] <= 600).mean() < 0.1


def test_fraud_happens_at_night_and_legit_follows_the_day(small: pd.DataFrame) -> None:
    night = small["event_timestamp"].dt.hour < 6
    fraud = small["is_fraud"] == 1
    legit_night, fraud_night = night[~fraud].mean(), night[fraud].mean()
    assert legit_night < 0.1  # 6 of 24 hours would be 0.25 without a diurnal pattern
    assert fraud_night > 3 * legit_night


def test_fraud_amounts_are_far_above_the_users_habit(small: pd.DataFrame) -> None:
    fraud = small["is_fraud"] == 1
    habit = small[~fraud].groupby("user_id")["amount"].median()
    ratio = small["amount"] / small["user_id"].map(habit)
    assert ratio[fraud].median() > 3 * ratio[~fraud].median()
    # heavy right tail overall
    assert stats.skew(small.loc[~fraud, "amount"]) > 2


def test_fraud_uses_new_merchants_and_risky_categories(small: pd.DataFrame) -> None:
    fraud = small["is_fraud"] == 1
    first_visit = ~small.duplicated(["user_id", "merchant_id"])
    assert first_visit[fraud].mean() > first_visit[~fraud].mean() + 0.3
    risky = small["merchant_category"].isin(["electronics", "online", "travel"])
    assert risky[fraud].mean() > 0.8 > risky[~fraud].mean()


def test_labels_arrive_late_and_fraud_later(small: pd.DataFrame) -> None:
    delay_days = (small["label_timestamp"] - small["event_timestamp"]).dt.total_seconds() / 86_400
    fraud = small["is_fraud"] == 1
    assert delay_days[~fraud].median() == pytest.approx(SMALL.label_delay_days, abs=0.1)
    assert (
        delay_days[~fraud].between(SMALL.label_delay_days - 0.5, SMALL.label_delay_days + 0.5).all()
    )
    assert delay_days[fraud].median() > delay_days[~fraud].median()
    assert delay_days.min() >= 0


def test_drift_switch_only_changes_rows_from_drift_from(small: pd.DataFrame) -> None:
    drift_from = "2026-01-31"
    factor = 2.5
    drifted = generate_transactions(
        replace(SMALL, drift_from=drift_from, drift_amount_factor=factor)
    )
    after = drifted["event_timestamp"] >= pd.Timestamp(drift_from, tz="UTC")
    assert 0.2 < after.mean() < 0.5
    # same events, same order: the switch changes categories and amounts only
    for column in ("transaction_id", "user_id", "event_timestamp", "is_fraud"):
        pd.testing.assert_series_equal(drifted[column], small[column])
    pd.testing.assert_frame_equal(drifted[~after], small[~after])

    crypto = drifted["merchant_category"] == DRIFT_CATEGORY
    assert not crypto[~after].any()
    assert crypto[after].mean() == pytest.approx(DRIFT_CATEGORY_SHARE, abs=0.02)
    assert set(drifted.loc[crypto, "merchant_id"]).isdisjoint(small["merchant_id"])
    # untouched-category rows after drift_from: amount scaled by the factor (cent rounding)
    kept = after & ~crypto
    expected = np.round(small.loc[kept, "amount"] * factor, 2)
    np.testing.assert_allclose(drifted.loc[kept, "amount"], expected, atol=0.01 * factor)
    shift = drifted.loc[after, "amount"].median() / small.loc[after, "amount"].median()
    assert shift > 0.8 * factor


def test_scale_multiplies_users() -> None:
    cfg = replace(SMALL, n_users=100, days=10)
    base = generate_transactions(cfg)
    double = generate_transactions(cfg, scale=2.0)
    assert double["user_id"].max() > 150 >= base["user_id"].max()
    assert 1.5 < len(double) / len(base) < 2.5


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"n_users": 0}, "n_users must be >= 1"),
        ({"days": 0}, "days must be >= 1"),
        ({"fraud_rate": 0.7}, "fraud_rate must be in"),
        ({"drift_amount_factor": 0.0}, "drift_amount_factor must be > 0"),
        ({"label_delay_days": -1}, "label_delay_days must be >= 0"),
        ({"drift_from": "not a date"}, "drift_from='not a date' is not an ISO-8601"),
    ],
)
def test_bad_config_is_refused_with_a_clear_message(change: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate_transactions(replace(SMALL, **{"n_users": 20, "days": 5, **change}))
