"""Data and leakage gates: corrupt raw rows, a random split, look-ahead features.

- ``schema_gate`` with ``RAW_SCHEMA`` on raw rows corrupted by ``mlref.data.corrupt``: fails
  with a count per reason equal to the number of injected rows of each kind;
- ``time_split`` on a random split of the reference training rows: fails saying it looks
  like a random split; the reference run's own time split passes;
- ``point_in_time`` on training rows whose stored state is stamped at the start of its
  aggregation window instead of its end (state from after the event leaks into the row):
  fails naming the audited column; the correctly stamped rows pass.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlref.data.columns import EVENT_TIMESTAMP, LABEL, LABEL_TIMESTAMP

pytestmark = [
    pytest.mark.filterwarnings("ignore:fetch_arrow_table\\(\\) is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:On demand feature view is an experimental:RuntimeWarning"),
]

# the kinds that keep every column's dtype: pandera checks each row of such a column
ROW_LEVEL_KINDS = (
    "negative_amount",
    "amount_too_large",
    "duplicate_id",
    "unknown_category",
    "label_not_binary",
    "label_before_event",
)
PER_KIND = 5
# pandera's name for a check -> the reason validate() gives for it
PANDERA_NAMES = {"field_uniqueness": "duplicate"}
PANDERA_NAMES_INV = {v: k for k, v in PANDERA_NAMES.items()}
STATE_TIME = "state_time"  # when the stored state a training row read was last updated


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    from mlref.data.generate import generate_transactions
    from mlref.settings import DataConfig

    return generate_transactions(DataConfig(n_users=60, days=10, seed=3))


def test_clean_raw_rows_pass_the_schema(raw: pd.DataFrame) -> None:
    from mlgates.gates import schema_gate
    from mlref.data.validate import RAW_SCHEMA

    result = schema_gate(raw, RAW_SCHEMA)
    assert result.verdict == "pass", result.explain()


def _corrupted(raw: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    from mlref.data.corrupt import corrupt

    return corrupt(raw, PER_KIND * len(ROW_LEVEL_KINDS), seed=1, kinds=ROW_LEVEL_KINDS)


def _rows_per_problem(result: Any) -> dict[str, int]:
    """Distinct failing rows per check name (a frame-wide check is listed per column)."""
    rows: dict[str, set[Any]] = {}
    for check in result.details["checks"]:
        name = PANDERA_NAMES.get(check["check"], check["check"])
        rows.setdefault(name, set())
        rows[name].add(check["rows"])
    return {name: max(counts) for name, counts in rows.items()}


def test_corrupt_rows_fail_the_schema_with_counts_per_reason(raw: pd.DataFrame) -> None:
    from mlgates.gates import schema_gate
    from mlref.data.validate import RAW_SCHEMA

    bad, expected = _corrupted(raw)
    result = schema_gate(bad, RAW_SCHEMA)

    assert result.verdict == "fail"
    assert result.measured == len(expected)  # every corrupted row, and no clean row
    want = {reason.split(": ", 1)[1]: n for reason, n in expected.value_counts().items()}
    assert want == dict.fromkeys(want, PER_KIND)
    assert _rows_per_problem(result) == want, result.explain()
    flagged = {e["index"] for c in result.details["checks"] for e in c["examples"]}
    assert flagged <= set(expected.index)  # every example row is one we corrupted


def test_the_schema_message_names_every_cause(raw: pd.DataFrame) -> None:
    from mlgates.gates import schema_gate
    from mlref.data.validate import RAW_SCHEMA

    bad, expected = _corrupted(raw)
    result = schema_gate(bad, RAW_SCHEMA)
    for reason in expected.unique():
        problem = reason.split(": ", 1)[1]
        assert f"{PANDERA_NAMES_INV.get(problem, problem)} x{PER_KIND}" in result.message


def test_every_corrupted_row_is_counted_under_its_reason(raw: pd.DataFrame) -> None:
    from mlgates.gates import schema_gate
    from mlref.data.corrupt import corrupt
    from mlref.data.validate import BEFORE_EVENT, RAW_SCHEMA

    bad, expected = corrupt(raw, 40, seed=1)
    result = schema_gate(bad, RAW_SCHEMA)
    assert result.verdict == "fail"
    # a frame-wide check is reported once (column "<frame>"); validate() blames this column
    frame_check_column = {BEFORE_EVENT: LABEL_TIMESTAMP}
    rows_per_column: dict[str, int] = {}
    for check in result.details["checks"]:
        if check["check"] == "not_nullable":  # a null id also fails the int64 dtype: once
            continue
        column = frame_check_column[check["check"]] if check["frame_wide"] else check["column"]
        rows_per_column[column] = rows_per_column.get(column, 0) + check["rows"]
    want = expected.str.split(": ").str[0].value_counts().to_dict()
    assert {c: rows_per_column.get(c, 0) for c in want} == want


def test_random_split_of_the_event_log_fails_the_time_split(reference_system: Any) -> None:
    from mlgates.gates import time_split

    frame = reference_system.frame.copy()
    rng = np.random.default_rng(0)
    is_test = rng.random(len(frame)) < 0.2
    result = time_split(frame.loc[~is_test], frame.loc[is_test], EVENT_TIMESTAMP)

    assert result.verdict == "fail"
    assert "looks like a random split" in result.message
    assert result.details["boundaries"][0]["diagnosis"] == "random split"
    # nearly all rows of both sides lie on the wrong side of the boundary
    assert result.measured > 0.9 * len(frame)


def test_the_reference_time_split_passes(reference_system: Any) -> None:
    from mlgates.gates import time_split

    split = reference_system.run.result.split
    config = reference_system.run.result.config
    result = time_split(
        split.train, split.test, EVENT_TIMESTAMP, val=split.val, embargo=config.embargo
    )
    assert result.verdict == "pass", result.explain()


def _with_state_time(frame: pd.DataFrame) -> pd.DataFrame:
    """The audit column: when the state a row read was last updated, recovered from the row
    itself (``seconds_since_last_txn = request time - last_txn_ts``)."""
    out = frame.copy()
    out[STATE_TIME] = out[EVENT_TIMESTAMP] - pd.to_timedelta(
        out["seconds_since_last_txn"], unit="s"
    )
    return out


def _window_start_stamped(rows: pd.DataFrame) -> pd.DataFrame:
    """The defect: each stored aggregate is stamped at the start of its 24 h window instead
    of its end, so a point-in-time join reads it up to 24 h too early."""
    out = rows.copy()
    out[EVENT_TIMESTAMP] = out[EVENT_TIMESTAMP] - pd.Timedelta(hours=24)
    return out


@pytest.fixture(scope="module")
def look_ahead(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training rows from Feast ``get_historical_features`` over correctly stamped and over
    window-start stamped stored rows (two private stores, apply only: the offline side)."""
    from feast import FeatureStore

    from mlref.data.generate import generate_transactions
    from mlref.features.feature_repo.fraud_repo import feast_objects
    from mlref.features.offline import stored_rows, write_offline_parquet
    from mlref.features.store import offline_parquet_path, training_frame, write_feature_repo
    from mlref.settings import DataConfig, make_settings

    events = generate_transactions(DataConfig(n_users=80, days=6, seed=29))
    frames = []
    for name, rows in (
        ("stamped-at-end", stored_rows(events)),
        ("stamped-at-start", _window_start_stamped(stored_rows(events))),
    ):
        settings = make_settings(tmp_path_factory.mktemp(f"pit-{name}") / "mlref")
        repo = write_feature_repo(settings)
        parquet = write_offline_parquet(rows, offline_parquet_path(settings))
        store = FeatureStore(repo_path=str(repo))
        store.apply(feast_objects(str(parquet.resolve())).all())
        frames.append(_with_state_time(training_frame(store, events)))
    return frames[0], frames[1]


def test_point_in_time_rows_pass(look_ahead: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    from mlgates.gates import point_in_time

    clean, _ = look_ahead
    result = point_in_time(clean, EVENT_TIMESTAMP, [STATE_TIME])
    assert result.verdict == "pass", result.explain()


def test_state_from_after_the_event_fails_point_in_time(
    look_ahead: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    from mlgates.gates import point_in_time

    clean, leaky = look_ahead
    result = point_in_time(leaky, EVENT_TIMESTAMP, [STATE_TIME])

    assert result.verdict == "fail"
    assert STATE_TIME in result.message
    assert "timestamped after the event" in result.message
    # independent count: rows whose state now comes from a later event of the same user
    expected = int((leaky[STATE_TIME] > leaky[EVENT_TIMESTAMP]).sum())
    assert result.measured == expected > 0.2 * len(leaky)
    # the leak shows in the features: the velocity counts events the row has not seen yet
    assert (leaky["txn_velocity_24h"] > clean["txn_velocity_24h"]).mean() > 0.2
    assert LABEL in leaky.columns
