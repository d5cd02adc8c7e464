"""Sub-second event timestamps are quarantined at validation, not discovered by the feature
build (``mlref.features.offline.event_seconds`` refuses the whole batch for one such row)."""

from __future__ import annotations

import pandas as pd
import pytest

from mlref.data.columns import EVENT_TIMESTAMP, LABEL_TIMESTAMP, TRANSACTION_ID
from mlref.data.generate import generate_transactions
from mlref.data.validate import NOT_WHOLE_SECONDS, RAW_SCHEMA, REASON_COLUMN, reason, validate
from mlref.settings import DataConfig


@pytest.fixture(scope="module")
def clean() -> pd.DataFrame:
    return generate_transactions(DataConfig(n_users=60, days=10, seed=4))


def _with_offset(clean: pd.DataFrame, rows: list[int], offset: pd.Timedelta) -> pd.DataFrame:
    dirty = clean.copy()
    at = dirty.index[rows]
    dirty.loc[at, EVENT_TIMESTAMP] = dirty.loc[at, EVENT_TIMESTAMP] + offset
    # keep the label after the event, so the whole-second check is the only failure
    dirty.loc[at, LABEL_TIMESTAMP] = dirty.loc[at, LABEL_TIMESTAMP] + pd.Timedelta(seconds=1)
    return dirty


def test_a_sub_second_event_time_is_quarantined_with_its_reason(clean: pd.DataFrame) -> None:
    from mlref.features.offline import event_seconds

    dirty = _with_offset(clean, [3], pd.Timedelta(milliseconds=250))
    with pytest.raises(ValueError, match="1 event timestamps are not whole seconds"):
        event_seconds(dirty)  # what the feature build would have hit

    result = validate(dirty, max_quarantine_rate=0.01)

    assert result.n_valid + result.n_quarantined == len(dirty) == result.n_input
    assert list(result.quarantined[TRANSACTION_ID]) == [dirty[TRANSACTION_ID].iloc[3]]
    expected = reason(EVENT_TIMESTAMP, NOT_WHOLE_SECONDS)
    assert list(result.quarantined[REASON_COLUMN]) == [expected]
    assert result.counts_by_reason == {expected: 1}
    assert "whole second" in expected
    # the valid rows are the rest, unchanged, and the feature build accepts them
    pd.testing.assert_frame_equal(result.valid, clean.drop(index=clean.index[3]))
    assert len(event_seconds(result.valid)) == len(clean) - 1


def test_sub_second_offsets_of_any_size_are_caught(clean: pd.DataFrame) -> None:
    rows = [0, 7, 20]
    for offset in (pd.Timedelta(nanoseconds=1), pd.Timedelta(microseconds=999_999)):
        result = validate(_with_offset(clean, rows, offset), max_quarantine_rate=0.5)
        assert sorted(result.quarantined["row"]) == rows
        assert result.n_valid + result.n_quarantined == len(clean)


def test_whole_second_timestamps_pass(clean: pd.DataFrame) -> None:
    RAW_SCHEMA.validate(clean)
    shifted = _with_offset(clean, [1, 2], pd.Timedelta(seconds=5))  # moved, still whole
    result = validate(shifted, max_quarantine_rate=0.0)
    assert result.n_quarantined == 0
    assert result.n_valid == len(clean)
