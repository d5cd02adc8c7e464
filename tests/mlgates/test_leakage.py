"""time_split / point_in_time / entity_overlap / target_leak."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlgates import entity_overlap, point_in_time, target_leak, time_split
from mlgates.result import GateInputError


def _events(n: int = 1000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2024-01-01", tz="UTC")
    ts = start + pd.to_timedelta(np.sort(rng.integers(0, 90 * 86400, n)), unit="s")
    return pd.DataFrame(
        {
            "transaction_id": np.arange(n),
            "user_id": rng.integers(0, 200, n),
            "event_timestamp": ts,
            "amount": rng.lognormal(3, 1, n),
            "label": rng.integers(0, 2, n),
        }
    )


def test_time_split_clean_with_embargo_passes() -> None:
    ev = _events()
    cut1, cut2 = pd.Timestamp("2024-02-15", tz="UTC"), pd.Timestamp("2024-03-05", tz="UTC")
    train = ev[ev.event_timestamp < cut1 - pd.Timedelta("7D")]
    val = ev[(ev.event_timestamp >= cut1) & (ev.event_timestamp < cut2 - pd.Timedelta("7D"))]
    test = ev[ev.event_timestamp >= cut2]
    r = time_split(train, test, "event_timestamp", val=val, embargo="7D")
    assert r.verdict == "pass", r.explain()
    assert r.measured == 0
    assert [b["boundary"] for b in r.details["boundaries"]] == ["train -> val", "val -> test"]


def test_time_split_random_split_is_called_out() -> None:
    ev = _events()
    mask = np.random.default_rng(1).random(len(ev)) < 0.8
    r = time_split(ev[mask], ev[~mask], "event_timestamp")
    assert r.verdict == "fail"
    assert "looks like a random split" in r.message
    assert "of train rows" in r.message
    assert "are later than the earliest test row" in r.message
    b = r.details["boundaries"][0]
    assert b["diagnosis"] == "random split"
    assert b["train_rows_at_or_after_test_start"] > 0.5 * mask.sum()
    assert r.measured is not None
    assert r.measured > 0


def test_time_split_boundary_overlap_and_embargo() -> None:
    ev = _events()
    cut = pd.Timestamp("2024-03-01", tz="UTC")
    train = ev[ev.event_timestamp < cut]
    # three train rows copied into test: overlap at the boundary, not a random split
    test = pd.concat([train.tail(3), ev[ev.event_timestamp >= cut]])
    r = time_split(train, test, "event_timestamp")
    assert r.verdict == "fail"
    assert "overlap in time" in r.message
    assert r.details["boundaries"][0]["test_rows_at_or_before_train_end"] == 3
    # ordered, but the gap is shorter than the label delay
    r2 = time_split(train, ev[ev.event_timestamp >= cut], "event_timestamp", embargo="3D")
    assert r2.verdict == "fail"
    assert "shorter than the embargo 3 days" in r2.message
    expected = int((train.event_timestamp > cut - pd.Timedelta("3D")).sum())
    assert r2.measured == expected


def test_time_split_numeric_times_and_errors() -> None:
    train = pd.DataFrame({"t": [1.0, 2.0, 3.0]})
    test = pd.DataFrame({"t": [5.0, 6.0]})
    assert time_split(train, test, "t", embargo=2).verdict == "pass"
    assert time_split(train, test, "t", embargo=3).verdict == "fail"
    with pytest.raises(GateInputError, match="missing column"):
        time_split(train, test, "ts")
    with pytest.raises(GateInputError, match="empty"):
        time_split(train.iloc[:0], test, "t")
    with pytest.raises(GateInputError, match="duration but the time column is numeric"):
        time_split(train, test, "t", embargo="1D")
    naive = pd.DataFrame({"t": pd.to_datetime(["2024-01-01"])})
    aware = pd.DataFrame({"t": pd.to_datetime(["2024-02-01"]).tz_localize("UTC")})
    with pytest.raises(GateInputError, match="timezone-aware"):
        time_split(naive, aware, "t")
    with pytest.raises(GateInputError, match="missing timestamp"):
        time_split(pd.DataFrame({"t": [1.0, np.nan]}), test, "t")


def test_point_in_time_future_dated_feature_fails() -> None:
    ev = _events(200)
    ev["velocity_ts"] = ev.event_timestamp - pd.Timedelta("1h")
    ev["avg_ts"] = ev.event_timestamp - pd.Timedelta("1ms")
    assert point_in_time(ev, "event_timestamp", ["velocity_ts", "avg_ts"]).verdict == "pass"
    ev.loc[ev.index[[5, 17, 40]], "avg_ts"] = ev.event_timestamp.iloc[[5, 17, 40]].to_numpy() + (
        pd.Timedelta("2h")
    )
    ev.loc[ev.index[7], "velocity_ts"] = pd.NaT  # missing feature time: not a violation
    r = point_in_time(ev, "event_timestamp", ["velocity_ts", "avg_ts"])
    assert r.verdict == "fail"
    assert r.measured == 3
    assert "avg_ts: 3 row(s)" in r.message
    assert "0 days 02:00:00 after the event" in r.message
    col = r.details["columns"]["avg_ts"]
    assert [e["index"] for e in col["examples"]] == [5, 17, 40]
    assert r.details["columns"]["velocity_ts"]["missing"] == 1
    with pytest.raises(GateInputError, match="feature_time_cols is empty"):
        point_in_time(ev, "event_timestamp", [])


def test_entity_overlap() -> None:
    train = pd.DataFrame({"user_id": [1, 2, 3, 4], "x": [0.1, 0.2, 0.3, 0.4]})
    test = pd.DataFrame({"user_id": [5, 6, 7], "x": [0.5, 0.6, 0.7]})
    assert entity_overlap(train, test, "user_id").verdict == "pass"
    leaky = pd.DataFrame({"user_id": [3, 4, 7], "x": [0.3, 0.45, 0.7]})
    r = entity_overlap(train, leaky, "user_id")
    assert r.verdict == "fail"
    assert r.measured == 2
    assert "2 user_id value(s) appear in both train and test" in r.message
    assert r.details["duplicate_rows"] == 1  # (3, 0.3) copied verbatim
    assert "exact copies" in r.message
    assert entity_overlap(train, leaky, "user_id", max_overlap=2, check_duplicates=False).passed
    with pytest.raises(GateInputError, match="missing column"):
        entity_overlap(train, test, "account_id")


def test_target_leak() -> None:
    rng = np.random.default_rng(2)
    n = 2000
    y = rng.integers(0, 2, n)
    frame = pd.DataFrame(
        {
            "label": y,
            "amount": rng.normal(size=n) + 0.5 * y,
            "user_id": rng.integers(0, 1500, n).astype(str),  # ID-like: must not look leaky
        }
    )
    ok = target_leak(frame, "label")
    assert ok.verdict == "pass", ok.explain()
    assert ok.details["features"]["user_id"]["strength"] < 0.7
    frame["chargeback_flag"] = np.where(rng.random(n) < 0.995, y, 1 - y)
    frame["status"] = np.where(y == 1, "disputed", "settled")
    bad = target_leak(frame, "label")
    assert bad.verdict == "fail"
    assert "chargeback_flag AUC" in bad.message
    assert "status AUC" in bad.message
    assert "amount" not in bad.message
    frame["neg"] = -frame["chargeback_flag"]
    assert target_leak(frame, "label", ["neg"]).details["features"]["neg"]["auc"] < 0.05


def test_target_leak_bad_labels() -> None:
    frame = pd.DataFrame({"label": [1, 1, 1], "x": [1.0, 2.0, 3.0]})
    with pytest.raises(GateInputError, match="single class"):
        target_leak(frame, "label")
    frame2 = pd.DataFrame({"label": [1, np.nan, 0], "x": [1.0, 2.0, 3.0]})
    with pytest.raises(GateInputError, match="NaN label"):
        target_leak(frame2, "label")


@pytest.mark.parametrize("bare", [86400, 86400.0, np.int64(86400), "86400"])
def test_time_split_bare_number_embargo_on_datetimes_is_refused(bare: object) -> None:
    ev = _events()
    cut = pd.Timestamp("2024-03-01", tz="UTC")
    train, test = ev[ev.event_timestamp < cut], ev[ev.event_timestamp >= cut]
    gap = test.event_timestamp.min() - train.event_timestamp.max()
    assert gap < pd.Timedelta("1D")  # a one-day embargo must fail on this split
    # read as nanoseconds, 86400 would be 86.4 us and the embargo silently off
    with pytest.raises(GateInputError, match="pass a duration such as '1D' or '24h'"):
        time_split(train, test, "event_timestamp", embargo=bare)
    assert time_split(train, test, "event_timestamp", embargo="1D").verdict == "fail"
    far = ev[ev.event_timestamp >= cut + pd.Timedelta("2D")]
    assert time_split(train, far, "event_timestamp", embargo="1D").verdict == "pass"


def test_entity_overlap_compares_values_not_dtypes() -> None:
    train = pd.DataFrame({"user_id": [1, 2], "x": [1, 5]})
    test = pd.DataFrame({"user_id": [1.0, 3.0], "x": [1.0, 6.0]})
    r = entity_overlap(train, test, "user_id")
    assert r.verdict == "fail"
    assert r.measured == 1
    assert r.details["duplicate_rows"] == 1  # (1, 1) int == (1.0, 1.0) float
    assert r.details["duplicate_examples"] == [0]
    assert "exact copies" in r.message
    # other dtype pairs that hold the same values: int32/int64, -0.0/0.0, us/ns datetimes
    t = pd.to_datetime(["2024-01-01 10:00", "2024-01-02 00:00"])
    a = pd.DataFrame({"k": np.array([7, 8], "int32"), "v": [0.0, 1.0], "t": t})
    b = pd.DataFrame({"k": np.array([7, 9], "int64"), "v": [-0.0, 2.0], "t": t.as_unit("us")})
    dup = entity_overlap(a, b, "k")
    assert (dup.measured, dup.details["duplicate_rows"]) == (1, 1)
    clean = pd.DataFrame({"user_id": [3.0, 4.0], "x": [1.0, 6.0]})
    ok = entity_overlap(train, clean, "user_id")
    assert ok.verdict == "pass", ok.explain()
    assert ok.details["duplicate_rows"] == 0


def test_entity_overlap_missing_keys_are_not_shared_entities() -> None:
    train = pd.DataFrame({"user_id": [1.0, np.nan, 3.0], "x": [0.1, 0.2, 0.3]})
    test = pd.DataFrame({"user_id": pd.array([None, 5, 6], dtype="Int64"), "x": [0.9, 0.8, 0.7]})
    r = entity_overlap(train, test, "user_id")
    assert r.verdict == "pass", r.explain()
    assert r.measured == 0
    assert (r.details["train_rows_missing_key"], r.details["test_rows_missing_key"]) == (1, 1)
    assert "1 train and 1 test row(s) with a missing user_id were left out" in r.message
    leaky = pd.DataFrame({"user_id": [np.nan, 3.0], "x": [0.5, 0.6]})
    bad = entity_overlap(train, leaky, "user_id")
    assert bad.verdict == "fail"
    assert bad.measured == 1
    assert bad.details["examples"] == [{"user_id": 3.0}]
    assert "e.g. 3.0" in bad.message
    assert "None" not in bad.message
    with pytest.raises(GateInputError, match="every user_id value in test is missing"):
        entity_overlap(train, pd.DataFrame({"user_id": [np.nan], "x": [1.0]}), "user_id")
    with pytest.raises(GateInputError, match="cast the key to the same type"):
        entity_overlap(train, pd.DataFrame({"user_id": ["1"], "x": [1.0]}), "user_id")
