"""Validation: quarantine with reasons, nothing dropped, the failure-rate limit, freshness."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest

from mlref.data.columns import RAW_COLUMNS
from mlref.data.corrupt import DEFECTS, corrupt
from mlref.data.generate import RAW_DTYPES, generate_transactions, read_parquet
from mlref.data.validate import (
    INVALID_TIMESTAMP,
    MISSING,
    NAIVE_TIMESTAMP,
    NEGATIVE,
    NOT_A_NUMBER,
    NOT_A_STRING,
    NOT_AN_INTEGER,
    RAW_SCHEMA,
    DataQualityError,
    RawFrameError,
    check_freshness,
    reason,
    validate,
)
from mlref.settings import DataConfig

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture(scope="module")
def clean() -> pd.DataFrame:
    return generate_transactions(DataConfig(n_users=120, days=20, seed=11))


def _accounted(result, source: pd.DataFrame) -> None:  # type: ignore[no-untyped-def]
    """Every input row is in exactly one of the two outputs."""
    assert result.n_valid + result.n_quarantined == len(source) == result.n_input
    both = result.valid.index.append(result.quarantined.index)
    assert both.is_unique
    assert set(both) == set(source.index)


def test_clean_data_passes_untouched(clean: pd.DataFrame) -> None:
    RAW_SCHEMA.validate(clean)
    result = validate(clean, max_quarantine_rate=0.0)
    assert result.n_quarantined == 0
    assert result.counts_by_reason == {}
    pd.testing.assert_frame_equal(result.valid, clean)
    assert "0 quarantined" in result.summary()


def test_every_defect_is_quarantined_with_its_reason(clean: pd.DataFrame, tmp_path: Path) -> None:
    n = 4 * len(DEFECTS)
    dirty, expected = corrupt(clean, n, seed=5)
    result = validate(dirty, max_quarantine_rate=0.5, quarantine_path=tmp_path / "q.parquet")
    _accounted(result, dirty)

    assert set(result.quarantined.index) == set(expected.index)
    got = result.quarantined["reason"]
    pd.testing.assert_series_equal(got.loc[expected.index], expected, check_names=False)
    assert result.counts_by_reason == expected.value_counts().to_dict()
    assert set(result.counts_by_reason) == set(DEFECTS.values())  # each kind was injected

    # the good rows come back unchanged, with the raw dtypes
    pd.testing.assert_frame_equal(result.valid, clean.drop(index=expected.index))
    RAW_SCHEMA.validate(result.valid)

    # the quarantine file holds the same rows, original values and reasons
    stored = read_parquet(tmp_path / "q.parquet")
    assert result.quarantine_path == tmp_path / "q.parquet"
    assert stored["reason"].tolist() == got.tolist()
    assert stored["row"].tolist() == [clean.index.get_loc(i) for i in result.quarantined.index]
    assert "abc" in set(stored["amount"])


@pytest.mark.parametrize("kind", sorted(DEFECTS))
def test_each_defect_alone(clean: pd.DataFrame, kind: str) -> None:
    dirty, expected = corrupt(clean, 3, seed=1, kinds=[kind])
    result = validate(dirty, max_quarantine_rate=1.0)
    _accounted(result, dirty)
    assert result.counts_by_reason == {DEFECTS[kind]: 3}
    assert result.quarantined["reason"].loc[expected.index].tolist() == [DEFECTS[kind]] * 3


def test_a_row_with_several_defects_gets_every_reason(clean: pd.DataFrame) -> None:
    dirty = clean.astype({"user_id": object, "event_timestamp": object})
    dirty.loc[5, "user_id"] = None
    dirty.loc[5, "amount"] = -3.0
    dirty.loc[5, "event_timestamp"] = "2026-01-03 10:00:00"  # a string without a zone
    dirty.loc[6, "user_id"] = 7.5  # not an integer
    result = validate(dirty, max_quarantine_rate=1.0)
    assert result.quarantined.loc[5, "reason"] == "; ".join(
        [
            reason("user_id", MISSING),
            reason("amount", NEGATIVE),
            reason("event_timestamp", NAIVE_TIMESTAMP),
        ]
    )
    assert result.quarantined.loc[6, "reason"] == reason("user_id", NOT_AN_INTEGER)
    assert result.counts_by_reason == {
        reason("amount", NEGATIVE): 1,
        reason("event_timestamp", NAIVE_TIMESTAMP): 1,
        reason("user_id", MISSING): 1,
        reason("user_id", NOT_AN_INTEGER): 1,
    }
    _accounted(result, dirty)


def test_timestamps_as_strings_and_naive_datetimes_do_not_crash(clean: pd.DataFrame) -> None:
    dirty = clean.copy()
    as_text = dirty["event_timestamp"].map(lambda t: t.isoformat()).astype(object)
    as_text.iloc[0] = "2026-01-01T01:00:00+01:00"  # another zone: converted to UTC
    as_text.iloc[1] = "2026-01-01T00:00:30"  # no zone
    as_text.iloc[2] = "the day after"  # not a time
    as_text.iloc[3] = 1767225600  # epoch seconds: ambiguous, refused
    dirty["event_timestamp"] = as_text
    dirty["label_timestamp"] = dirty["label_timestamp"].dt.tz_localize(None)  # naive column

    result = validate(dirty, max_quarantine_rate=1.0)
    _accounted(result, dirty)
    assert result.n_valid == 0  # every label_timestamp is naive
    counts = result.counts_by_reason
    assert counts[reason("label_timestamp", NAIVE_TIMESTAMP)] == len(dirty)
    assert counts[reason("event_timestamp", NAIVE_TIMESTAMP)] == 1
    assert counts[reason("event_timestamp", INVALID_TIMESTAMP)] == 2

    dirty["label_timestamp"] = clean["label_timestamp"]
    result = validate(dirty, max_quarantine_rate=1.0)
    assert sorted(result.quarantined.index) == [1, 2, 3]
    assert result.valid.loc[0, "event_timestamp"] == pd.Timestamp("2026-01-01T00:00:00Z")
    pd.testing.assert_series_equal(
        result.valid["event_timestamp"].iloc[1:], clean["event_timestamp"].iloc[4:]
    )
    assert {c: str(t) for c, t in result.valid.dtypes.items()} == RAW_DTYPES


def test_loose_types_that_can_be_read_are_coerced(clean: pd.DataFrame) -> None:
    loose = clean.head(20).copy()
    loose["amount"] = loose["amount"].map(str).astype(object)  # "12.5" -> 12.5
    loose["user_id"] = loose["user_id"].astype(float)  # 3.0 -> 3
    loose["merchant_id"] = loose["merchant_id"].astype("int32")
    loose["is_fraud"] = loose["is_fraud"].astype(bool).astype(object)  # True -> 1
    loose["merchant_category"] = loose["merchant_category"].astype("category")
    loose = loose[list(reversed(RAW_COLUMNS))]  # column order does not matter
    loose.index = [f"r{i}" for i in range(len(loose))]  # nor does the index type
    result = validate(loose, max_quarantine_rate=0.0)
    expected = clean.head(20).set_axis(loose.index)
    pd.testing.assert_frame_equal(result.valid, expected)


def test_wrong_python_types_are_named(clean: pd.DataFrame) -> None:
    dirty = clean.head(10).astype({"transaction_id": object, "amount": object})
    dirty.loc[0, "transaction_id"] = 123
    dirty.loc[1, "amount"] = True
    result = validate(dirty, max_quarantine_rate=1.0)
    assert result.counts_by_reason == {
        reason("transaction_id", NOT_A_STRING): 1,
        reason("amount", NOT_A_NUMBER): 1,
    }


def test_failure_rate_above_limit_stops_with_counts(clean: pd.DataFrame, tmp_path: Path) -> None:
    n = int(0.08 * len(clean))
    dirty, expected = corrupt(clean, n, seed=2, kinds=["negative_amount", "null_user_id"])
    path = tmp_path / "quarantine.parquet"
    with pytest.raises(DataQualityError) as caught:
        validate(dirty, max_quarantine_rate=0.05, quarantine_path=path)
    message = str(caught.value)
    assert f"{n} of {len(clean)} raw rows" in message
    assert "max_quarantine_rate=5.00%" in message
    assert str(path) in message
    for text, count in expected.value_counts().items():
        assert f"{count}  {text}" in message
    assert caught.value.result is not None
    assert caught.value.result.counts_by_reason == expected.value_counts().to_dict()
    assert len(read_parquet(path)) == n  # written before stopping, for inspection

    # at the limit it passes
    result = validate(dirty, max_quarantine_rate=n / len(clean))
    assert result.n_quarantined == n


def test_without_a_quarantine_file_the_error_says_how_to_get_one(clean: pd.DataFrame) -> None:
    dirty, _ = corrupt(clean, 30, seed=4)
    with pytest.raises(DataQualityError, match="Pass quarantine_path="):
        validate(dirty, max_quarantine_rate=0.001)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.drop(columns=["amount"]), r"missing columns \['amount'\]"),
        (lambda d: d.assign(extra=1), r"unexpected columns \['extra'\]"),
        (lambda d: d.to_dict(), "expected a pandas DataFrame"),
    ],
)
def test_frame_level_problems_raise_a_clear_error(clean: pd.DataFrame, mutate, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RawFrameError, match=message):
        validate(mutate(clean.head(5)))


def test_bad_limit_is_refused(clean: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="max_quarantine_rate must be in"):
        validate(clean, max_quarantine_rate=1.5)


def test_empty_frame(clean: pd.DataFrame) -> None:
    result = validate(clean.iloc[:0])
    assert result.n_input == result.n_valid == result.n_quarantined == 0
    assert result.quarantine_rate == 0.0
    assert {c: str(t) for c, t in result.valid.dtypes.items()} == RAW_DTYPES


def test_corrupt_refuses_unknown_kinds(clean: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="unknown defect kinds"):
        corrupt(clean, 1, kinds=["gremlins"])


# --------------------------------------------------------------------------- freshness


def test_freshness_passes_when_recent(clean: pd.DataFrame) -> None:
    newest = clean["event_timestamp"].max()
    result = check_freshness(clean, newest + pd.Timedelta(hours=3), pd.Timedelta(hours=48))
    assert result.passed
    assert result.age == pd.Timedelta(hours=3)
    assert result.newest == newest
    assert "freshness ok" in result.message


def test_freshness_fails_when_stale(clean: pd.DataFrame) -> None:
    newest = clean["event_timestamp"].max()
    as_of = (newest + pd.Timedelta(days=3)).isoformat()
    result = check_freshness(clean, as_of, "48h")
    assert not result.passed
    assert result.age == pd.Timedelta(days=3)
    assert "3 days" in result.message
    assert "over the limit 2 days" in result.message
    # exactly at the limit still passes
    assert check_freshness(clean, newest + pd.Timedelta("48h"), "48h").passed


def test_freshness_fails_for_events_after_as_of_and_for_no_events(clean: pd.DataFrame) -> None:
    newest = clean["event_timestamp"].max()
    future = check_freshness(clean, newest - pd.Timedelta(hours=1), "48h")
    assert not future.passed
    assert "after as_of" in future.message
    empty = check_freshness(clean.iloc[:0], newest, "48h")
    assert not empty.passed
    assert "no event_timestamp values" in empty.message


def test_freshness_is_the_mlgates_gate_and_a_future_row_does_not_hide_stale_data(
    clean: pd.DataFrame,
) -> None:
    """One implementation: the verdict is ``mlgates.freshness``'s, so one row dated after
    ``as_of`` neither makes stale data fresh nor hides how stale the rest is."""
    newest = clean["event_timestamp"].max()
    as_of = newest + pd.Timedelta(days=3)
    skewed = clean.copy()
    skewed.loc[skewed.index[0], "event_timestamp"] = as_of + pd.Timedelta(hours=1)
    result = check_freshness(skewed, as_of, "48h")
    assert result.gate is not None
    assert result.gate.name == "freshness"
    assert result.gate.verdict == "fail"
    assert result.newest == newest  # the newest row at or before as_of, not the future one
    assert result.age == pd.Timedelta(days=3)
    assert "data is stale" in result.message
    assert "dated after as_of" in result.message


def test_freshness_refuses_a_naive_as_of(clean: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="has no time zone"):
        check_freshness(clean, "2026-01-10 00:00:00", "48h")
    naive = clean.assign(event_timestamp=clean["event_timestamp"].dt.tz_localize(None))
    with pytest.raises(RawFrameError, match="must be time-zone aware"):
        check_freshness(naive, "2026-01-10T00:00:00Z", "48h")


def test_validate_scales_linearly_enough() -> None:
    """A default-size day of data validates quickly (guards against per-row Python work)."""
    frame = generate_transactions(DataConfig(n_users=2_000, days=3, seed=1))
    dirty, expected = corrupt(frame, 50, seed=0)
    result = validate(dirty)
    assert result.counts_by_reason == expected.value_counts().to_dict()
    assert np.isclose(result.quarantine_rate, 50 / len(frame))


def test_quarantine_file_stores_mixed_values_as_text(clean: pd.DataFrame, tmp_path: Path) -> None:
    dirty = clean.head(6).astype({"amount": object, "merchant_category": object})
    dirty.loc[0, "amount"] = pd.NA
    dirty.at[1, "amount"] = [1, 2]  # not a scalar at all
    dirty.loc[2, "merchant_category"] = 7
    result = validate(dirty, max_quarantine_rate=1.0, quarantine_path=tmp_path / "q.parquet")
    stored = read_parquet(tmp_path / "q.parquet")
    assert stored["amount"].tolist()[:2] == [None, "[1, 2]"]
    assert stored["merchant_category"].tolist()[2] == "7"
    assert result.quarantined["reason"].tolist() == [
        reason("amount", MISSING),
        reason("amount", NOT_A_NUMBER),
        reason("merchant_category", NOT_A_STRING),
    ]
