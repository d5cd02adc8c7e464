"""schema_gate (pandera) and freshness."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pytest

from mlgates import freshness, schema_gate
from mlgates.result import GateInputError

SCHEMA = pa.DataFrameSchema(
    {
        "amount": pa.Column(float, pa.Check.ge(0)),
        "merchant_category": pa.Column(str, pa.Check.isin(["grocery", "travel"])),
    },
    name="raw_transactions",
)


def test_schema_clean_passes() -> None:
    df = pd.DataFrame({"amount": [1.0, 2.0], "merchant_category": ["grocery", "travel"]})
    r = schema_gate(df, SCHEMA)
    assert r.verdict == "pass"
    assert r.rubric == ("data-1", "monitor-2")


def test_schema_failures_counted_per_check_with_examples() -> None:
    df = pd.DataFrame(
        {
            "amount": [1.0, -2.0, -3.0, np.nan, 5.0],
            "merchant_category": ["grocery", "casino", "travel", "grocery", "casino"],
        }
    )
    r = schema_gate(df, SCHEMA)
    assert r.verdict == "fail"
    assert r.measured == 4  # rows 1, 2, 3, 4
    checks = {(c["column"], c["check"]): c for c in r.details["checks"]}
    ge = checks[("amount", "greater_than_or_equal_to(0)")]
    assert ge["failures"] == 2
    assert [e["index"] for e in ge["examples"]] == [1, 2]
    assert checks[("merchant_category", "isin(['grocery', 'travel'])")]["failures"] == 2
    assert "row 1=-2.0" in r.message
    assert "raw_transactions" in r.message


def test_schema_missing_column_is_frame_level() -> None:
    r = schema_gate(pd.DataFrame({"amount": [1.0]}), SCHEMA)
    assert r.verdict == "fail"
    assert "column_in_dataframe" in r.message
    assert "frame-level" in r.message
    with pytest.raises(GateInputError, match="pandera schema"):
        schema_gate(pd.DataFrame({"a": [1]}), {"amount": float})


def test_freshness() -> None:
    ts = pd.Series(pd.date_range("2024-05-01", periods=48, freq="h", tz="UTC"))
    as_of = pd.Timestamp("2024-05-03 02:00", tz="UTC")
    ok = freshness(ts, as_of, "6h")
    assert ok.verdict == "pass"
    assert ok.measured == 3 * 3600
    stale = freshness(ts, as_of + pd.Timedelta("1D"), timedelta(hours=6))
    assert stale.verdict == "fail"
    assert "data is stale" in stale.message
    assert "over the limit" in stale.message
    future = freshness(ts, pd.Timestamp("2024-05-02", tz="UTC"), "6h")
    assert future.verdict == "warn"
    assert "clock skew" in future.message
    with pytest.raises(GateInputError, match="timezone-aware"):
        freshness(ts, pd.Timestamp("2024-05-03"), "6h")
    with pytest.raises(GateInputError, match="duration"):
        freshness(ts, as_of, "soon")
    assert freshness([100.0, 200.0], 250.0, 60).verdict == "pass"


def _a_before_b(frame: pd.DataFrame) -> pd.Series:
    return frame["a"].isna() | frame["b"].isna() | (frame["b"] >= frame["a"])


WIDE = pa.DataFrameSchema(
    {
        "a": pa.Column(pd.DatetimeTZDtype("ns", "UTC")),
        "b": pa.Column(pd.DatetimeTZDtype("ns", "UTC")),
        "amount": pa.Column(float, pa.Check.ge(0, error="negative")),
        "kind": pa.Column(str),
    },
    checks=[pa.Check(_a_before_b, error="b before a")],
    name="wide",
)


def _wide_frame() -> pd.DataFrame:
    a = pd.date_range("2024-01-01", periods=6, freq="h", tz="UTC")
    return pd.DataFrame(
        {
            "a": a,
            "b": a + pd.Timedelta("1h"),
            "amount": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            "kind": ["x"] * 6,
        }
    )


def test_schema_frame_wide_check_is_reported_once_with_its_rows() -> None:
    clean = _wide_frame()
    assert schema_gate(clean, WIDE).verdict == "pass"
    bad = clean.copy()
    bad.loc[[1, 4], "b"] = bad.loc[[1, 4], "a"] - pd.Timedelta("1h")
    bad.loc[2, "amount"] = -1.0
    r = schema_gate(bad, WIDE)
    assert r.verdict == "fail"
    assert r.measured == 3  # rows 1, 2, 4
    wide = [c for c in r.details["checks"] if c["check"] == "b before a"]
    assert len(wide) == 1  # pandera lists it under each of the 4 columns
    assert wide[0]["column"] == "<frame>"
    assert wide[0]["rows"] == wide[0]["failures"] == 2
    assert wide[0]["columns"] == ["a", "amount", "b", "kind"]
    assert [e["index"] for e in wide[0]["examples"]] == [1, 4]
    assert r.message.count("b before a") == 1
    assert "<frame>: b before a x2 (frame-wide check" in r.message
    assert "amount: negative x1" in r.message


def test_schema_unreadable_values_do_not_hide_row_checks() -> None:
    bad = _wide_frame().astype({"amount": object, "a": object})
    bad.loc[0, "amount"] = "abc"
    bad.loc[[2, 3], "amount"] = [-1.0, -2.0]
    bad.loc[1, "a"] = "not a time"
    bad.loc[5, "a"] = pd.Timestamp("2024-01-01 05:00")  # naive
    bad.loc[4, "b"] = bad.loc[4, "a"] - pd.Timedelta("1h")  # a readable, b before it
    r = schema_gate(bad, WIDE)
    assert r.verdict == "fail"
    checks = {(c["column"], c["check"]): c for c in r.details["checks"]}
    nan = checks[("amount", "not a number (expected float64)")]
    assert (nan["rows"], nan["coercion"], nan["examples"][0]) == (
        1,
        True,
        {"index": 0, "value": "abc"},
    )
    # the negative amounts are still counted although the column failed its dtype
    neg = checks[("amount", "negative")]
    assert neg["rows"] == 2
    assert {e["index"] for e in neg["examples"]} == {2, 3}
    assert checks[("a", "not a timestamp (expected datetime64[ns, UTC])")]["rows"] == 1
    assert checks[("a", "naive timestamp (expected datetime64[ns, UTC])")]["rows"] == 1
    # the frame-wide check ran on the readable timestamps (it errored on the raw ones)
    wide = checks[("<frame>", "b before a")]
    assert [e["index"] for e in wide["examples"]] == [4]
    assert not any(c["check"].startswith("dtype(") for c in r.details["checks"])
    assert r.measured == 6  # rows 0, 1, 2, 3, 4, 5: no frame-level fallback
    assert "amount: negative x2" in r.message


def test_schema_wrong_dtype_with_readable_values_keeps_the_dtype_failure() -> None:
    df = _wide_frame().astype({"amount": object})
    df["amount"] = df["amount"].astype(str)  # "1.0", ...: readable but not float64
    r = schema_gate(df, WIDE)
    assert r.verdict == "fail"
    names = [(c["column"], c["check"]) for c in r.details["checks"]]
    assert ("amount", "dtype('float64')") in names
    assert not any(c["coercion"] for c in r.details["checks"])


AS_OF = pd.Timestamp("2024-06-01", tz="UTC")


def _old_plus_one_future_row() -> pd.Series:
    old = pd.date_range("2024-01-01", periods=999, freq="min", tz="UTC")
    return pd.Series([*old, pd.Timestamp("2099-01-01", tz="UTC")])


def test_freshness_one_future_dated_row_does_not_hide_stale_data() -> None:
    ts = _old_plus_one_future_row()
    r = freshness(ts, AS_OF, "6h")
    assert r.verdict == "fail", r.explain()
    assert not r.passed
    newest_past = ts[ts <= AS_OF].max()
    assert r.measured == (AS_OF - newest_past).total_seconds()
    assert r.details["newest"] == newest_past.isoformat()
    assert r.details["newest_overall"] == "2099-01-01T00:00:00+00:00"
    assert r.details["rows_after_as_of"] == 1
    assert r.details["future_examples"] == [
        {"index": 999, "timestamp": "2099-01-01T00:00:00+00:00"}
    ]
    assert "data is stale" in r.message
    assert "1 of 1000 row(s) (0.1%) are dated after as_of" in r.message
    assert "index 999 at 2099-01-01T00:00:00+00:00" in r.message
    assert "do not count as fresh data" in r.message


def test_freshness_future_rows_next_to_fresh_data_warn_with_the_real_age() -> None:
    ts = _old_plus_one_future_row()
    ts.index = ts.index + 100  # examples name the caller's index labels
    as_of = pd.Timestamp("2024-01-01 20:00", tz="UTC")
    r = freshness(ts, as_of, "6h")
    assert r.verdict == "warn", r.explain()
    assert r.measured == (as_of - ts[ts <= as_of].max()).total_seconds()
    assert r.details["future_examples"][0]["index"] == 1099
    assert "clock skew" in r.message
    numeric = freshness([100.0, 200.0, 10_000.0], 250.0, 60)
    assert (numeric.verdict, numeric.measured, numeric.details["rows_after_as_of"]) == (
        "warn",
        50.0,
        1,
    )


def test_freshness_clean_data_reports_no_future_rows() -> None:
    ts = pd.Series(pd.date_range("2024-05-31 12:00", periods=12, freq="h", tz="UTC"))
    r = freshness(ts, AS_OF, "6h")
    assert r.verdict == "pass", r.explain()
    assert r.measured == (AS_OF - ts.max()).total_seconds()
    assert r.details["rows_after_as_of"] == 0
    assert r.details["future_examples"] == []
    assert r.details["newest"] == r.details["newest_overall"]
    assert "after as_of" not in r.message


def test_freshness_every_row_in_the_future_is_inconclusive() -> None:
    ts = pd.Series(pd.date_range("2024-06-02", periods=5, freq="h", tz="UTC"))
    r = freshness(ts, AS_OF, "6h")
    assert r.verdict == "inconclusive"
    assert not r.passed
    assert r.measured is None
    assert r.details["newest"] is None
    assert r.details["rows_after_as_of"] == 5
    assert "cannot judge freshness: 5 of 5 row(s) (100.0%) are dated after as_of" in r.message
    assert "no row is dated at or before as_of" in r.message


@pytest.mark.parametrize("bare", [3600, 3600.0, np.int64(3600), "3600"])
def test_freshness_bare_number_max_age_on_datetimes_is_refused(bare: object) -> None:
    ts = pd.Series(pd.date_range("2024-05-31 12:00", periods=12, freq="h", tz="UTC"))
    # pandas would read 3600 as 3.6 microseconds: every fresh dataset would fail
    with pytest.raises(GateInputError, match="pass a duration such as '1D' or '24h'"):
        freshness(ts, AS_OF, bare)
    assert freshness(ts, AS_OF, "1h").verdict == "pass"
    assert freshness(ts, AS_OF, timedelta(seconds=3600)).verdict == "pass"
    numeric = pd.Series((ts - AS_OF).dt.total_seconds())
    assert freshness(numeric, 0.0, 3600).verdict == "pass"
