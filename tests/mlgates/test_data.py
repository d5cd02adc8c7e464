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
