"""Data and leakage gates, each failing on a real defect of mlref next to its clean twin.

- ``schema_gate`` with ``RAW_SCHEMA`` on raw rows corrupted by ``mlref.data.corrupt``: fails
  with a count per reason equal to the number of injected rows of each kind; the same on a
  corrupted copy of the live window (the gate test's second input);
- ``time_split`` on a random split of the reference training rows: fails saying it looks
  like a random split; the reference run's own time split passes;
- ``point_in_time`` (``point_in_time_audit``, every view) on training rows whose stored state
  is stamped at the start of its aggregation window instead of its end, and on a 24 h view
  fed by an hourly rollup stamped an hour early while the 30-day view is right: fails naming
  the leaking view's column; the old audit (state time from ``seconds_since_last_txn``, the
  30-day view only) passes the second defect, which is why every view is audited now;
- ``feature_parity`` of Feast's training rows vs the pure-pandas point-in-time join, on a
  store whose 24 h view was declared with the 30-day TTL: fails naming txn_velocity_24h;
- ``entity_overlap`` on the time split of a log in which a batch of training-window
  transactions was re-delivered (re-stamped) into the test window;
- ``target_leak`` on the training window with a per-user fraud count that counted the row's
  own label;
- ``freshness`` (``online_state_times``, per view) on an online store whose 24 h view's
  materialization stopped three days before the serving clock: fails for that view only, and
  passes once the view is caught up.

Private Feast stores are built in temporary directories from a small generated log (offline
side: apply only; the freshness store also materializes); the reference system is read-only.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
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


# ---- point_in_time, feature_parity: private Feast stores over one small event log ----

HOUR = pd.Timedelta(hours=1)


def _window_start_stamped(rows: pd.DataFrame) -> pd.DataFrame:
    """The defect: each stored aggregate is stamped at the start of its 24 h window instead
    of its end, so a point-in-time join reads it up to 24 h too early."""
    out = rows.copy()
    out[EVENT_TIMESTAMP] = out[EVENT_TIMESTAMP] - pd.Timedelta(hours=24)
    return out


def _hourly_rollup_stamped_early(rows: pd.DataFrame) -> pd.DataFrame:
    """The defect of a separate 24 h job: its rows are stamped an hour before the state they
    hold (the start of the rollup's hour), so a join reads up to an hour of later events."""
    out = rows.copy()
    out[EVENT_TIMESTAMP] = out[EVENT_TIMESTAMP] - HOUR
    return out


@pytest.fixture(scope="module")
def small_log() -> pd.DataFrame:
    from mlref.data.generate import generate_transactions
    from mlref.settings import DataConfig

    return generate_transactions(DataConfig(n_users=80, days=6, seed=29))


@contextlib.contextmanager
def _quiet_feast() -> Iterator[None]:
    """The two known third-party warnings of offline Feast calls (as mlref.features.store
    silences them): every on-demand view is flagged experimental, and ibis calls a DuckDB
    API that DuckDB 1.4 deprecates."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "On demand feature view", RuntimeWarning)
        warnings.filterwarnings(
            "ignore", r"fetch_arrow_table\(\) is deprecated", DeprecationWarning
        )
        yield


def _private_store(
    workdir: Any,
    events: pd.DataFrame,
    *,
    rows: pd.DataFrame | None = None,
    velocity_rows: pd.DataFrame | None = None,
    velocity_ttl: pd.Timedelta | None = None,
) -> Any:
    """A Feast store (apply only: the offline side) over ``rows`` (default: the correct
    stored rows of ``events``); ``velocity_rows`` feeds the 24 h view from its own parquet
    instead, ``velocity_ttl`` declares that view with another TTL."""
    from feast import FeatureStore, FeatureView, Field, FileSource
    from feast import types as feast_types
    from feast.data_format import ParquetFormat

    from mlref.data.columns import USER_ID
    from mlref.features.definitions import VELOCITY_VIEW
    from mlref.features.feature_repo.fraud_repo import feast_objects
    from mlref.features.offline import stored_rows, write_offline_parquet
    from mlref.features.store import offline_parquet_path, write_feature_repo
    from mlref.settings import make_settings

    settings = make_settings(workdir / "mlref")
    repo = write_feature_repo(settings)
    rows = stored_rows(events) if rows is None else rows
    parquet = write_offline_parquet(rows, offline_parquet_path(settings))
    objects = feast_objects(str(parquet.resolve()))
    views = list(objects.views)
    extra: list[Any] = []
    if velocity_rows is not None or velocity_ttl is not None:
        at = [v.name for v in views].index(VELOCITY_VIEW)
        clean = views[at]
        source: Any = objects.push_source
        if velocity_rows is not None:
            path = write_offline_parquet(velocity_rows, parquet.with_name("velocity.parquet"))
            source = FileSource(
                name="velocity_hourly_rollup",
                path=str(path.resolve()),
                file_format=ParquetFormat(),
                timestamp_field=EVENT_TIMESTAMP,
            )
            extra.append(source)
        views[at] = FeatureView(
            name=VELOCITY_VIEW,
            entities=[objects.entity],
            ttl=clean.ttl if velocity_ttl is None else velocity_ttl.to_pytimedelta(),
            schema=[Field(name=USER_ID, dtype=feast_types.Int64), *clean.features],
            source=source,
            online=False,
        )
    store = FeatureStore(repo_path=str(repo))
    with _quiet_feast():
        store.apply(
            [
                objects.entity,
                objects.batch_source,
                objects.push_source,
                *extra,
                *views,
                objects.request_source,
                objects.model_inputs,
                objects.service,
            ]
        )
    return store


@dataclass(frozen=True)
class Retrieved:
    """What the training path and the audit returned from one private store."""

    store: Any
    frame: pd.DataFrame  # training_frame (the feature service)
    audit: pd.DataFrame  # point_in_time_audit (every view's state time) + BAR


@pytest.fixture(scope="module")
def retrieved(
    small_log: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Retrieved]:
    """Training rows and audit from four private stores over ``small_log``: ``clean``,
    ``window_start`` (both views stamped 24 h early), ``velocity_rollup`` (the 24 h view
    from a table stamped an hour early, the 30-day view right), ``velocity_ttl_30d`` (the
    24 h view declared with the 30-day TTL)."""
    from mlref.features.offline import stored_rows
    from mlref.features.store import point_in_time_audit, training_frame

    rows = stored_rows(small_log)
    defects: dict[str, dict[str, Any]] = {
        "clean": {},
        "window_start": {"rows": _window_start_stamped(rows)},
        "velocity_rollup": {"velocity_rows": _hourly_rollup_stamped_early(rows)},
        "velocity_ttl_30d": {"velocity_ttl": pd.Timedelta(days=30)},
    }
    out = {}
    for name, defect in defects.items():
        store = _private_store(tmp_path_factory.mktemp(f"pit-{name}"), small_log, **defect)
        audit = _with_bar(point_in_time_audit(store, small_log))
        out[name] = Retrieved(store, training_frame(store, small_log), audit)
    return out


BAR = "before_event"


def _with_bar(audit: pd.DataFrame) -> pd.DataFrame:
    """The gate test's bar: state strictly before the event (event time - 1 ms), written
    independently of the lookup_time the code under audit computes."""
    out = audit.copy()
    out[BAR] = out[EVENT_TIMESTAMP] - pd.Timedelta(milliseconds=1)
    return out


def _audit_columns() -> list[str]:
    from mlref.features.definitions import VIEWS
    from mlref.features.store import state_time_column

    return [state_time_column(view.name) for view in VIEWS]


def _old_audit(frame: pd.DataFrame) -> pd.DataFrame:
    """The audit the gate test ran before: state time rebuilt from seconds_since_last_txn,
    which only the 30-day view's last_txn_ts feeds."""
    since = frame["seconds_since_last_txn"].to_numpy(dtype=np.float64)
    known = np.isfinite(since)
    state = frame[EVENT_TIMESTAMP] - pd.to_timedelta(np.where(known, since, 0.0), unit="s")
    return pd.DataFrame(
        {"lookup_time": frame[EVENT_TIMESTAMP] - pd.Timedelta(milliseconds=1),
         STATE_TIME: state.where(known, pd.NaT)}
    )  # fmt: skip


def test_point_in_time_rows_pass(retrieved: dict[str, Retrieved]) -> None:
    from mlgates.gates import point_in_time
    from mlref.features.definitions import VELOCITY_VIEW
    from mlref.features.store import state_time_column

    clean = retrieved["clean"]
    result = point_in_time(clean.audit, BAR, _audit_columns())
    assert result.verdict == "pass", result.explain()
    # the audit saw the rows training used: a velocity state exactly where the count is > 0
    # (a present row counts at least its own event), the 30-day state time exactly the one
    # seconds_since_last_txn was computed from
    velocity = clean.audit[state_time_column(VELOCITY_VIEW)]
    assert (velocity.notna() == (clean.frame["txn_velocity_24h"] > 0)).all()
    assert velocity.notna().mean() > 0.5
    old = _old_audit(clean.frame)
    assert (old[STATE_TIME].isna() == clean.audit[state_time_column("user_spend_30d")].isna()).all()


def test_state_from_after_the_event_fails_point_in_time(retrieved: dict[str, Retrieved]) -> None:
    from mlgates.gates import point_in_time

    clean, leaky = retrieved["clean"], retrieved["window_start"]
    columns = _audit_columns()
    result = point_in_time(leaky.audit, BAR, columns)

    assert result.verdict == "fail"
    assert "timestamped after the event" in result.message
    for column in columns:  # both views read the early-stamped table
        assert column in result.message
    # independent count: rows where any view's state is newer than the lookup time
    late = np.zeros(len(leaky.audit), dtype=bool)
    for column in columns:
        late |= (leaky.audit[column] > leaky.audit[BAR]).to_numpy()
    assert result.measured == int(late.sum()) > 0.2 * len(leaky.audit)
    # the leak shows in the features: the velocity counts events the row has not seen yet
    assert (leaky.frame["txn_velocity_24h"] > clean.frame["txn_velocity_24h"]).mean() > 0.2


def test_a_24h_view_reading_later_state_fails_point_in_time_naming_it(
    retrieved: dict[str, Retrieved],
) -> None:
    from mlgates.gates import point_in_time
    from mlref.features.definitions import SPEND_VIEW, VELOCITY_VIEW
    from mlref.features.store import state_time_column

    clean, leaky = retrieved["clean"], retrieved["velocity_rollup"]
    velocity, spend = state_time_column(VELOCITY_VIEW), state_time_column(SPEND_VIEW)
    # the leak is real: the 24 h count of most rows includes the row itself or later events
    assert (leaky.frame["txn_velocity_24h"] > clean.frame["txn_velocity_24h"]).mean() > 0.5

    # the audit of the 30-day view alone (the old gate test) cannot see it
    old = point_in_time(_old_audit(leaky.frame), "lookup_time", [STATE_TIME])
    assert old.verdict == "pass", old.explain()

    result = point_in_time(leaky.audit, BAR, [velocity, spend])
    assert result.verdict == "fail"
    assert velocity in result.message
    assert result.details["columns"][spend]["future_rows"] == 0
    expected = int((leaky.audit[velocity] > leaky.audit[BAR]).sum())
    assert result.measured == expected > 0.5 * len(leaky.audit)


def test_a_join_as_of_the_event_time_fails_point_in_time(
    small_log: pd.DataFrame, retrieved: dict[str, Retrieved], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The current event counted: the lookup offset set to 0, so every join reads the state
    stored at the row's own second (which includes the row itself). Judged against the
    code's own lookup_time the audit passes (the bar moved with the join); against the
    contract's bar it fails, for every view."""
    from mlgates.gates import point_in_time

    clean = retrieved["clean"]
    monkeypatch.setattr("mlref.features.definitions.LOOKUP_OFFSET", pd.Timedelta(0))
    from mlref.features.store import point_in_time_audit, training_frame

    store = clean.store
    audit = _with_bar(point_in_time_audit(store, small_log))
    frame = training_frame(store, small_log)
    # the leak is real: every count now includes the row itself (a user's first transaction
    # in a day read 0 before)
    assert (frame["txn_velocity_24h"] >= 1).all()
    assert (clean.frame["txn_velocity_24h"] == 0).mean() > 0.1

    moved = point_in_time(audit, "lookup_time", _audit_columns())
    assert moved.verdict == "pass", moved.explain()
    result = point_in_time(audit, BAR, _audit_columns())
    assert result.verdict == "fail"
    for column in _audit_columns():
        assert column in result.message
    assert result.measured == len(small_log)  # every row reads its own event


def test_a_24h_view_with_the_30_day_ttl_fails_feature_parity(
    small_log: pd.DataFrame, retrieved: dict[str, Retrieved]
) -> None:
    """The gate test's comparison (Feast rows vs ``batch_model_features``) on a store whose
    24 h view was declared with the 30-day TTL: expired velocity state comes back."""
    from mlgates.gates import feature_parity
    from mlref.features.definitions import MODEL_FEATURES
    from mlref.features.offline import batch_model_features

    reference = batch_model_features(small_log, small_log)
    reference.insert(0, "transaction_id", small_log["transaction_id"].to_numpy())
    names = list(MODEL_FEATURES)
    clean = feature_parity(
        reference, retrieved["clean"].frame[["transaction_id", *names]], "transaction_id",
        features=names,
    )  # fmt: skip
    assert clean.verdict == "pass", clean.explain()

    wrong = retrieved["velocity_ttl_30d"].frame
    result = feature_parity(reference, wrong[["transaction_id", *names]], "transaction_id",
                            features=names)  # fmt: skip
    assert result.verdict == "fail"
    assert "txn_velocity_24h" in result.message
    # independent count: rows whose velocity state expired (> 24 h) but was still served
    expired = (reference["txn_velocity_24h"] == 0) & (wrong["txn_velocity_24h"] > 0)
    assert expired.sum() > 20
    bad = {f for f in names if (reference[f].fillna(-1) != wrong[f].fillna(-1)).any()}
    assert bad == {"txn_velocity_24h"}


# ---- entity_overlap, target_leak, schema on the live window: the reference system ----


def test_transactions_redelivered_into_the_test_window_fail_entity_overlap(
    reference_system: Any,
) -> None:
    """A replayed ingestion batch: 40 training-window transactions arrive again, re-stamped
    into the test window, and the real time split keeps both copies."""
    from mlgates.gates import entity_overlap
    from mlref.train.split import time_split

    config = reference_system.run.result.config
    clean = reference_system.run.result.split
    assert entity_overlap(clean.train, clean.test, "transaction_id").verdict == "pass"

    frame = reference_system.frame.copy()
    rng = np.random.default_rng(0)
    picked = rng.choice(np.flatnonzero(frame.index.isin(clean.train.index)), 40, replace=False)
    again = frame.iloc[picked].copy()
    # re-stamped at arrival, one day into the test window; labels keep their delay
    arrival = (
        config.test_start
        + pd.Timedelta(days=1)
        + pd.to_timedelta(np.sort(rng.integers(0, 3600, size=len(again))), unit="s")
    )
    delay = again[LABEL_TIMESTAMP] - again[EVENT_TIMESTAMP]
    again[EVENT_TIMESTAMP] = arrival
    again[LABEL_TIMESTAMP] = arrival + delay.to_numpy()
    split = time_split(pd.concat([frame, again], ignore_index=True), config)
    ids = set(again["transaction_id"])
    assert ids <= set(split.train["transaction_id"]) & set(split.test["transaction_id"])

    result = entity_overlap(split.train, split.test, "transaction_id")
    assert result.verdict == "fail"
    assert result.measured == len(ids)
    assert "transaction_id" in result.message


def test_a_label_derived_feature_fails_target_leak(reference_system: Any) -> None:
    """A per-user fraud count that counted the row's own label (cumulative sum including the
    current row instead of the labels known before it) added to the model inputs."""
    from mlgates.gates import target_leak
    from mlref.features.definitions import MODEL_FEATURES

    train = reference_system.run.result.split.train
    clean = target_leak(train, LABEL, list(MODEL_FEATURES))
    assert clean.verdict == "pass", clean.explain()

    leaky = train.sort_values(EVENT_TIMESTAMP, kind="mergesort").copy()
    leaky["user_fraud_count"] = leaky.groupby("user_id")[LABEL].cumsum().astype(np.float64)
    result = target_leak(leaky, LABEL, [*MODEL_FEATURES, "user_fraud_count"])
    assert result.verdict == "fail"
    assert "user_fraud_count" in result.message
    assert result.measured > 0.98


def test_corrupt_live_rows_fail_the_schema(reference_system: Any) -> None:
    """The live window as a broken feed would deliver it (negative amounts, a category
    outside the vocabulary, labels that are not 0/1, duplicated ids): counted per reason."""
    from mlgates.gates import schema_gate
    from mlref.data.corrupt import corrupt
    from mlref.data.validate import RAW_SCHEMA

    live = reference_system.live
    assert schema_gate(live, RAW_SCHEMA).verdict == "pass"
    bad, expected = corrupt(live, 4 * PER_KIND, seed=2, kinds=ROW_LEVEL_KINDS[:4])
    result = schema_gate(bad, RAW_SCHEMA)
    assert result.verdict == "fail"
    assert result.measured == len(expected)
    assert _rows_per_problem(result) == {
        reason.split(": ", 1)[1]: n for reason, n in expected.value_counts().items()
    }


# ---- freshness: an online store whose 24 h view stopped materializing ----


def test_a_view_whose_feed_stopped_fails_freshness_naming_it(
    small_log: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The gate test's check (``online_state_times`` per view vs the serving clock, max age
    48 h) on a private store whose 24 h view was last materialized three days before the
    clock while the 30-day view is current; then the 24 h view catches up."""
    from mlgates.gates import freshness
    from mlref.features.definitions import SPEND_VIEW, VELOCITY_VIEW
    from mlref.features.store import online_state_times

    store = _private_store(tmp_path_factory.mktemp("stale-feed"), small_log)
    start = small_log[EVENT_TIMESTAMP].min().to_pydatetime()
    clock = small_log[EVENT_TIMESTAMP].max()  # serving starts right after the log
    end = (clock + pd.Timedelta(seconds=1)).to_pydatetime()
    stopped = (clock - pd.Timedelta(days=3)).to_pydatetime()
    with _quiet_feast():
        store.materialize(start, stopped, feature_views=[VELOCITY_VIEW])
        store.materialize(start, end, feature_views=[SPEND_VIEW])
    max_age = pd.Timedelta(hours=48)
    users = small_log["user_id"].unique()

    # the old gate test (the data's own timestamps vs the data's end) cannot see the feed
    old = freshness(small_log[EVENT_TIMESTAMP], clock, max_age)
    assert old.verdict == "pass", old.explain()

    times = online_state_times(store, users)
    stale = freshness(times[VELOCITY_VIEW], clock, max_age)
    assert stale.verdict == "fail", stale.explain()
    assert "stale" in stale.message
    assert stale.measured >= pd.Timedelta(days=3).total_seconds()
    current = freshness(times[SPEND_VIEW], clock, max_age)
    assert current.verdict == "pass", current.explain()

    with _quiet_feast():
        store.materialize(stopped, end, feature_views=[VELOCITY_VIEW])
    caught_up = freshness(online_state_times(store, users)[VELOCITY_VIEW], clock, max_age)
    assert caught_up.verdict == "pass", caught_up.explain()
    assert caught_up.measured == 0.0
