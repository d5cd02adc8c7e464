"""Offline (vectorised) and online (incremental) paths against brute-force references.

No Feast here: these pin down the feature semantics that the Feast tests then check the
stores against.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from mlref.data.columns import AMOUNT, EVENT_TIMESTAMP, USER_ID
from mlref.features.definitions import (
    AGGREGATIONS,
    LOOKUP_OFFSET,
    MODEL_FEATURES,
    ROW_COLUMNS,
    STORED_COLUMNS,
    STORED_FEATURES,
    VIEWS,
    VIEWS_BY_NAME,
    StoredFeature,
    build_views,
    check_supported,
    lookup_time,
    row_columns,
    to_epoch_ns,
)
from mlref.features.offline import (
    batch_model_features,
    point_in_time_features,
    stored_rows,
)
from mlref.features.online import OnlineAggregator, latest_per_user, rows_frame, state_from_rows
from mlref.features.transforms import request_features

DAY_S = 86400


# ---------------------------------------------------------------- brute-force references
def brute_rows(events: pd.DataFrame) -> pd.DataFrame:
    """Stored rows by the definition, one (user, second) at a time (small data only)."""
    sec = (to_epoch_ns(events[EVENT_TIMESTAMP]) // 1_000_000_000).tolist()
    users = events[USER_ID].tolist()
    amounts = events[AMOUNT].tolist()
    out = []
    for user in sorted(set(users)):
        mine = [(s, a) for u, s, a in zip(users, sec, amounts, strict=True) if u == user]
        prev = None
        for t in sorted({s for s, _ in mine}):
            upto = [(s, a) for s, a in mine if s <= t]
            count = sum(1 for s, _ in upto if s > t - DAY_S)
            in30 = [a for s, a in upto if s > t - 30 * DAY_S]
            row = {
                USER_ID: user,
                EVENT_TIMESTAMP: t,
                "txn_count_24h": count,
                "avg_amount_30d": math.fsum(in30) / len(in30),
                "last_txn_ts": float(t),
                "prev_txn_count_24h": 0 if prev is None else prev["txn_count_24h"],
                "prev_avg_amount_30d": math.nan if prev is None else prev["avg_amount_30d"],
                "prev_last_txn_ts": math.nan if prev is None else prev["last_txn_ts"],
            }
            out.append(row)
            prev = row
    return rows_frame(out)


def brute_pit(rows: pd.DataFrame, user: int, as_of: pd.Timestamp) -> dict[str, float]:
    """Latest row at or before as_of, per view kept if as_of - row_ts <= ttl."""
    mine = rows[(rows[USER_ID] == user) & (rows[EVENT_TIMESTAMP] <= as_of)]
    out = {}
    for feature in STORED_FEATURES:
        ttl = pd.Timedelta(VIEWS_BY_NAME[feature.view].ttl)
        if mine.empty:
            out[feature.name] = feature.default
            continue
        last = mine.iloc[-1]
        fresh = as_of - last[EVENT_TIMESTAMP] <= ttl
        out[feature.name] = float(last[feature.name]) if fresh else feature.default
    return out


def assert_state_equal(actual: pd.DataFrame, expected: pd.DataFrame, context: str = "") -> None:
    """Counts and timestamps exact, means within 1e-9 relative; NaN == NaN."""
    for col in STORED_COLUMNS:
        a = actual[col].to_numpy(dtype=np.float64)
        e = expected[col].to_numpy(dtype=np.float64)
        if col == "avg_amount_30d":
            np.testing.assert_allclose(a, e, rtol=1e-9, atol=0, err_msg=f"{col} {context}")
        else:
            np.testing.assert_array_equal(a, e, err_msg=f"{col} {context}")


@pytest.fixture
def events(
    random_events_factory: Callable[..., pd.DataFrame],
    edge_events: Callable[[pd.Timestamp], pd.DataFrame],
    combine_events: Callable[..., pd.DataFrame],
) -> pd.DataFrame:
    day0 = pd.Timestamp("2026-01-04T00:00:00Z")
    return combine_events(random_events_factory(3, 400, 25, 6), edge_events(day0))


# ---------------------------------------------------------------- offline path
def test_stored_rows_match_the_definition(events: pd.DataFrame) -> None:
    rows = stored_rows(events)
    expected = brute_rows(events)
    assert list(rows.columns) == list(ROW_COLUMNS)
    assert len(rows) == len(expected)
    pd.testing.assert_frame_equal(rows, expected, check_exact=False, rtol=1e-12, atol=0)


def test_two_events_in_one_second_make_one_row_with_both(
    events_factory: Callable[..., pd.DataFrame],
) -> None:
    t = pd.Timestamp("2026-01-02T10:00:00Z")
    ev = events_factory(
        [(1, t - pd.Timedelta(hours=1), 10.0, "gas"), (1, t, 20.0, "gas"), (1, t, 60.0, "gas")]
    )
    rows = stored_rows(ev)
    assert rows[EVENT_TIMESTAMP].tolist() == [t - pd.Timedelta(hours=1), t]
    last = rows.iloc[-1]
    assert (last["txn_count_24h"], last["avg_amount_30d"]) == (3, 30.0)
    assert (last["prev_txn_count_24h"], last["prev_avg_amount_30d"]) == (1, 10.0)
    assert last["prev_last_txn_ts"] == (t - pd.Timedelta(hours=1)).timestamp()


def test_window_and_ttl_edges_hand_computed(
    edge_events: Callable[[pd.Timestamp], pd.DataFrame],
) -> None:
    """User 900004: events at t-30d (1000), t-24h (50), t (70), t+24h-1s (10)."""
    day0 = pd.Timestamp("2026-03-10T00:00:00Z")
    ev = edge_events(day0)
    t = day0 + pd.Timedelta(hours=2)
    rows = stored_rows(ev).set_index([USER_ID, EVENT_TIMESTAMP])
    at_t = rows.loc[(900004, t)]
    # windows are open on the left: the events exactly 24 h / 30 d back are out
    assert at_t["txn_count_24h"] == 1
    assert at_t["avg_amount_30d"] == 60.0
    at_t_minus_24h = rows.loc[(900004, t - pd.Timedelta(hours=24))]
    assert at_t_minus_24h["txn_count_24h"] == 1
    assert at_t_minus_24h["avg_amount_30d"] == (1000 + 50) / 2  # t-30d is inside (t-54d, t-24h]
    t_last = t + pd.Timedelta(hours=24) - pd.Timedelta(seconds=1)
    ms = pd.Timedelta(milliseconds=1)
    entity = pd.DataFrame(
        {
            USER_ID: [900004] * 5,
            EVENT_TIMESTAMP: [
                lookup_time(t),  # latest row is t-24h, 24h-1ms old: valid
                t_last + pd.Timedelta(hours=24),  # exactly the 24h TTL: still valid
                t_last + pd.Timedelta(hours=24) + ms,  # count expired, mean not
                t_last + pd.Timedelta(days=30),  # exactly the 30d TTL: valid
                t_last + pd.Timedelta(days=30) + ms,  # everything expired
            ],
        }
    )
    state = point_in_time_features(ev, entity)
    assert state["txn_count_24h"].tolist() == [1.0, 2.0, 0.0, 0.0, 0.0]
    mean_last = (50 + 70 + 10) / 3
    np.testing.assert_array_equal(
        state["avg_amount_30d"].to_numpy(), [525.0, mean_last, mean_last, mean_last, np.nan]
    )


def test_point_in_time_features_match_brute_force(events: pd.DataFrame) -> None:
    rng = np.random.default_rng(5)
    rows = stored_rows(events)
    users = rng.choice(np.r_[events[USER_ID].unique(), [777, 778]], 300)
    lo, hi = events[EVENT_TIMESTAMP].min(), events[EVENT_TIMESTAMP].max()
    span = (hi - lo).total_seconds() + 40 * DAY_S
    as_of = lo - pd.Timedelta(days=2) + pd.to_timedelta(rng.uniform(0, span, 300), unit="s")
    # plus exact row times, 1 ms before them and exactly one TTL after them
    picks = rows.sample(60, random_state=1)
    extra_users = np.r_[picks[USER_ID], picks[USER_ID], picks[USER_ID], picks[USER_ID]]
    ts = picks[EVENT_TIMESTAMP]
    extra_times = pd.concat(
        [ts, ts - LOOKUP_OFFSET, ts + pd.Timedelta(hours=24), ts + pd.Timedelta(days=30)]
    )
    entity = pd.DataFrame(
        {
            USER_ID: np.r_[users, extra_users],
            EVENT_TIMESTAMP: pd.concat([pd.Series(as_of), extra_times], ignore_index=True),
        }
    )
    got = point_in_time_features(events, entity)
    expected = pd.DataFrame(
        [
            brute_pit(rows, u, t)
            for u, t in zip(entity[USER_ID], entity[EVENT_TIMESTAMP], strict=True)
        ]
    )
    assert_state_equal(got, expected)


def test_appending_later_events_changes_nothing_at_or_before_t(
    events: pd.DataFrame,
    random_events_factory: Callable[..., pd.DataFrame],
    combine_events: Callable[..., pd.DataFrame],
) -> None:
    cut = events[EVENT_TIMESTAMP].quantile(0.6).floor("s")
    before = events[events[EVENT_TIMESTAMP] <= cut]
    later = random_events_factory(9, 200, 30, 3, start=cut + pd.Timedelta(seconds=1), prefix="z")
    grown = combine_events(before, later)
    old_rows = stored_rows(before)
    new_rows = stored_rows(grown)
    kept = new_rows[new_rows[EVENT_TIMESTAMP] <= cut].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, old_rows)
    rng = np.random.default_rng(2)
    entity = pd.DataFrame(
        {
            USER_ID: rng.choice(grown[USER_ID].unique(), 200),
            EVENT_TIMESTAMP: cut - pd.to_timedelta(rng.uniform(0, 5 * DAY_S, 200), unit="s"),
        }
    )
    entity.loc[:9, EVENT_TIMESTAMP] = cut  # the boundary itself
    pd.testing.assert_frame_equal(
        point_in_time_features(before, entity), point_in_time_features(grown, entity)
    )


def test_scoring_never_sees_the_current_event(events: pd.DataFrame) -> None:
    """The state read for a transaction at t comes from a row strictly before t's second;
    read as of t itself (the leak lookup_time prevents) it would be the row at t."""
    t_s = to_epoch_ns(events[EVENT_TIMESTAMP]) / 1e9
    entity = events[[USER_ID, EVENT_TIMESTAMP]]
    at_lookup = point_in_time_features(
        events, entity.assign(**{EVENT_TIMESTAMP: lookup_time(entity[EVENT_TIMESTAMP])})
    )
    seen = at_lookup["last_txn_ts"].notna()
    assert seen.sum() > len(events) // 2
    assert (at_lookup.loc[seen, "last_txn_ts"] < t_s[seen.to_numpy()]).all()
    leaky = point_in_time_features(events, entity)
    np.testing.assert_array_equal(leaky["last_txn_ts"].to_numpy(), t_s)
    feats = batch_model_features(events, events)
    assert (feats["seconds_since_last_txn"].dropna() > 0).all()


# ---------------------------------------------------------------- online path
def test_online_emits_after_each_event_the_offline_row_of_the_prefix(events: pd.DataFrame) -> None:
    agg = OnlineAggregator()
    sample = set(range(0, len(events), 11)) | set(np.flatnonzero(events[USER_ID] >= 900000))
    for i in range(len(events)):
        emitted = agg.process(events.iloc[i : i + 1])
        assert len(emitted) == 1
        if i not in sample:
            continue
        prefix_rows = stored_rows(events.iloc[: i + 1])
        row = emitted.iloc[0]
        expected = prefix_rows[
            (prefix_rows[USER_ID] == row[USER_ID])
            & (prefix_rows[EVENT_TIMESTAMP] == row[EVENT_TIMESTAMP])
        ]
        pd.testing.assert_frame_equal(
            emitted.reset_index(drop=True), expected.reset_index(drop=True), rtol=1e-12
        )


@pytest.mark.parametrize("batch_size", [1, 13, 10_000])
def test_online_micro_batches_end_in_the_offline_rows(
    events: pd.DataFrame, batch_size: int
) -> None:
    agg = OnlineAggregator()
    emitted = [
        agg.process(events.iloc[s : s + batch_size]) for s in range(0, len(events), batch_size)
    ]
    online = (
        pd.concat(emitted)
        .drop_duplicates([USER_ID, EVENT_TIMESTAMP], keep="last")
        .sort_values([USER_ID, EVENT_TIMESTAMP])
        .reset_index(drop=True)
    )
    pd.testing.assert_frame_equal(online, stored_rows(events), rtol=1e-12)
    latest = stored_rows(events).drop_duplicates(USER_ID, keep="last").reset_index(drop=True)
    pd.testing.assert_frame_equal(agg.latest_rows(), latest, rtol=1e-12)


def test_online_scoring_read_equals_offline_point_in_time(events: pd.DataFrame) -> None:
    """Scoring each event from the latest rows of everything before it (as the online store
    holds them), with lookup_time, TTL and the prev_* rule, equals the offline PIT state;
    this covers the second event of a same-second pair (the latest row is then *newer*
    than the lookup)."""
    agg = OnlineAggregator()
    latest: dict[int, dict[str, object]] = {}
    lookup_ns = to_epoch_ns(lookup_time(events[EVENT_TIMESTAMP]))
    expected = point_in_time_features(
        events,
        pd.DataFrame(
            {USER_ID: events[USER_ID], EVENT_TIMESTAMP: lookup_time(events[EVENT_TIMESTAMP])}
        ),
    )
    seconds = lookup_ns // 10**9 + 1
    same_second = np.r_[
        False,
        (events[USER_ID].to_numpy()[1:] == events[USER_ID].to_numpy()[:-1])
        & (seconds[1:] == seconds[:-1]),
    ]
    checked = np.flatnonzero(
        same_second | (np.arange(len(events)) % 4 == 0) | (events[USER_ID] >= 900000)
    )
    got = []
    newer_than_lookup = 0
    for i, (user, second, amount) in enumerate(
        zip(events[USER_ID].tolist(), seconds.tolist(), events[AMOUNT].tolist(), strict=True)
    ):
        if i in checked:
            rows = rows_frame([latest[user]] if user in latest else [])
            got.append(state_from_rows(rows, np.array([user]), lookup_ns[i : i + 1]))
            if user in latest and latest[user][EVENT_TIMESTAMP] == second:
                newer_than_lookup += 1
        latest[user] = agg.process_event(user, second, amount)
    expected = expected.iloc[checked]
    state = pd.concat(got, ignore_index=True)
    assert newer_than_lookup >= 3  # the fixture has same-second pairs
    assert not state["stale_state"].any()
    assert_state_equal(state, expected.reset_index(drop=True))


def test_online_read_flags_unknown_users_and_unanswerable_lookups(
    events_factory: Callable[..., pd.DataFrame],
) -> None:
    t = pd.Timestamp("2026-01-02T10:00:00Z")
    rows = stored_rows(
        events_factory([(1, t - pd.Timedelta(hours=2), 10.0, "gas"), (1, t, 30.0, "gas")])
    )
    looks = to_epoch_ns(pd.Series([t, t - pd.Timedelta(hours=1), t - pd.Timedelta(hours=3), t]))
    state = state_from_rows(rows, np.array([1, 1, 1, 2]), looks)
    assert state["unknown_user"].tolist() == [False, False, False, True]
    assert state["stale_state"].tolist() == [False, False, True, False]
    assert state["txn_count_24h"].tolist() == [2.0, 1.0, 0.0, 0.0]
    assert state["avg_amount_30d"].iloc[:2].tolist() == [20.0, 10.0]
    assert np.isnan(state["avg_amount_30d"].iloc[2:]).all()


# ---------------------------------------------------------------- bad input
def test_bad_events_are_refused_with_a_reason(
    events_factory: Callable[..., pd.DataFrame],
) -> None:
    t = pd.Timestamp("2026-01-02T10:00:00Z")
    good = events_factory([(1, t, 10.0, "gas"), (1, t + pd.Timedelta(minutes=1), 5.0, "gas")])
    sub_second = good.assign(
        **{EVENT_TIMESTAMP: good[EVENT_TIMESTAMP] + pd.Timedelta(milliseconds=5)}
    )
    with pytest.raises(ValueError, match="not whole seconds"):
        stored_rows(sub_second)
    with pytest.raises(ValueError, match="not whole seconds"):
        OnlineAggregator().process(sub_second)
    with pytest.raises(ValueError, match="negative amounts"):
        stored_rows(good.assign(**{AMOUNT: [-1.0, 2.0]}))
    naive = good.assign(**{EVENT_TIMESTAMP: good[EVENT_TIMESTAMP].dt.tz_localize(None)})
    with pytest.raises(ValueError, match="naive timestamps"):
        stored_rows(naive)
    with pytest.raises(ValueError, match=r"missing columns \['amount'\]"):
        stored_rows(good.drop(columns=[AMOUNT]))
    agg = OnlineAggregator()
    agg.process(good.iloc[1:])
    with pytest.raises(ValueError, match="older than the user's latest event"):
        agg.process(good.iloc[:1])


def test_clean_events_pass_and_empty_logs_give_empty_rows(
    events_factory: Callable[..., pd.DataFrame],
) -> None:
    t = pd.Timestamp("2026-01-02T10:00:00Z")
    good = events_factory([(1, t, 10.0, "gas")])
    assert len(stored_rows(good)) == 1
    empty = stored_rows(good.iloc[:0])
    assert list(empty.columns) == list(ROW_COLUMNS)
    assert empty.empty


def test_batch_model_features_is_the_pit_state_through_the_transforms(events: pd.DataFrame) -> None:
    feats = batch_model_features(events, events)
    assert list(feats.columns) == MODEL_FEATURES
    state = point_in_time_features(
        events,
        pd.DataFrame(
            {USER_ID: events[USER_ID], EVENT_TIMESTAMP: lookup_time(events[EVENT_TIMESTAMP])}
        ),
    )
    i = int(np.flatnonzero(events[USER_ID] == 900002)[-1])  # 2500 after a 40 in the same day
    row = request_features(
        {
            **{c: state[c].iloc[i] for c in STORED_COLUMNS},
            "amount": events[AMOUNT].iloc[i],
            "request_ts": events[EVENT_TIMESTAMP].iloc[i].timestamp(),
            "merchant_category": events["merchant_category"].iloc[i],
        }
    )
    assert row == pytest.approx(feats.iloc[i].to_dict(), nan_ok=True)
    assert row["txn_velocity_24h"] == 1.0  # the 3 events 36 h earlier have expired
    assert row["avg_order_30d"] == pytest.approx((10 + 20 + 30 + 40) / 4)
    assert row["seconds_since_last_txn"] == 45.0


# ------------------------------------------- one definition per feature (data-6)
# A stored feature is ONE StoredFeature: the offline rows, the online aggregator and the
# views are derived from it, for every aggregation kind the derivation supports
# (definitions.AGGREGATIONS), checked against a brute-force reference of the definition.
REDUCE: dict[str, Callable[[np.ndarray], float]] = {
    "count": lambda a: float(len(a)),
    "sum": lambda a: math.fsum(a),
    "mean": lambda a: math.fsum(a) / len(a),
    "max": lambda a: float(np.max(a)),
    "min": lambda a: float(np.min(a)),
}


def new_feature(kind: str, days: int = 3) -> StoredFeature:
    return StoredFeature(
        name=f"{kind}_amount_{days}d",
        view=f"user_{kind}_{days}d",
        aggregation=kind,
        column=AMOUNT,
        window=timedelta(days=days),
        default=0.0 if kind == "count" else math.nan,
        dtype="Int64" if kind == "count" else "Float64",
        description=f"{kind} of amounts in (t - {days}d, t]",
    )


@pytest.fixture
def drill_log(random_events_factory: Callable[..., pd.DataFrame]) -> pd.DataFrame:
    return random_events_factory(5, 300, 12, 9)


def brute(events: pd.DataFrame, feature: StoredFeature) -> pd.Series:
    """The feature at every stored row (user, second), one row at a time, from the definition."""
    seconds = events[EVENT_TIMESTAMP].astype("datetime64[ns, UTC]").array.asi8 // 10**9
    window = int(feature.window.total_seconds())  # type: ignore[union-attr]
    out = {}
    for (user, second), _ in events.groupby([USER_ID, seconds]):
        mine = (events[USER_ID].to_numpy() == user) & (seconds <= second)
        mine &= seconds > second - window
        out[(user, second)] = REDUCE[feature.aggregation](events.loc[mine, AMOUNT].to_numpy())
    return pd.Series(out)


@pytest.mark.parametrize("kind", ["count", "sum", "mean", "max", "min"])
def test_a_new_windowed_feature_is_derived_offline_and_online(
    drill_log: pd.DataFrame, kind: str
) -> None:
    feature = new_feature(kind)
    features = (*STORED_FEATURES, feature)
    rows = stored_rows(drill_log, features)
    assert list(rows.columns) == list(row_columns(features))
    keys = zip(
        rows[USER_ID].tolist(),
        (rows[EVENT_TIMESTAMP].astype("datetime64[ns, UTC]").array.asi8 // 10**9).tolist(),
        strict=True,
    )
    expected = brute(drill_log, feature).loc[list(keys)].to_numpy()
    np.testing.assert_allclose(rows[feature.name].to_numpy(dtype=float), expected, rtol=1e-12)
    # the existing features are untouched by the addition
    pd.testing.assert_frame_equal(rows[list(row_columns(STORED_FEATURES))], stored_rows(drill_log))
    online = OnlineAggregator(features).process(drill_log)
    online = online.sort_values([USER_ID, EVENT_TIMESTAMP], kind="mergesort")
    pd.testing.assert_frame_equal(
        online.reset_index(drop=True), rows, check_exact=False, rtol=1e-12, atol=0
    )


def test_the_new_view_gets_its_window_as_ttl_and_reads_resolve_it(drill_log: pd.DataFrame) -> None:
    feature = new_feature("max", days=2)
    features = (*STORED_FEATURES, feature)
    views = build_views(features)
    assert [v.name for v in views] == [*(v.name for v in VIEWS), feature.view]
    assert views[-1].ttl == timedelta(days=2)
    rows = stored_rows(drill_log, features)
    latest = latest_per_user(rows)
    users = latest[USER_ID].to_numpy()
    last_ns = latest[EVENT_TIMESTAMP].astype("datetime64[ns, UTC]").array.asi8
    for days_after, expired in ((1, False), (3, True)):
        lookup = last_ns + days_after * 86400 * 10**9
        entity = pd.DataFrame({USER_ID: users, EVENT_TIMESTAMP: pd.to_datetime(lookup, utc=True)})
        offline = point_in_time_features(None, entity, rows=rows, features=features)
        online = state_from_rows(rows, users, lookup, features)
        np.testing.assert_array_equal(online[feature.name].to_numpy(), offline[feature.name])
        # 3 days after a user's latest row the 2-day view has expired: the default
        assert np.isnan(online[feature.name].to_numpy()).all() == expired
        # the 30-day view has not expired either time
        assert not np.isnan(online["last_txn_ts"].to_numpy()).any()


def test_the_existing_views_are_what_they_were() -> None:
    assert [(v.name, v.ttl, v.served_fields) for v in VIEWS] == [
        ("user_velocity_24h", timedelta(hours=24), ("txn_count_24h",)),
        ("user_spend_30d", timedelta(days=30), ("avg_amount_30d", "last_txn_ts")),
    ]
    assert row_columns(STORED_FEATURES)[2:] == (
        "txn_count_24h",
        "avg_amount_30d",
        "last_txn_ts",
        "prev_txn_count_24h",
        "prev_avg_amount_30d",
        "prev_last_txn_ts",
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"aggregation": "median"}, "does not support"),
        ({"window": None}, "needs a window"),
        ({"column": "merchant_category"}, "carry only"),
        ({"aggregation": "last"}, "'last' is the newest event's time"),
        ({"name": "txn_count_24h"}, "defined twice"),
    ],
)
def test_a_definition_the_derivation_cannot_build_is_refused(
    drill_log: pd.DataFrame, change: dict[str, object], message: str
) -> None:
    bad = replace(new_feature("max"), **change)  # type: ignore[arg-type]
    features = (*STORED_FEATURES, bad)
    for build in (
        lambda: check_supported(features, "x"),
        lambda: stored_rows(drill_log, features),
        lambda: OnlineAggregator(features),
    ):
        with pytest.raises(ValueError, match=message):
            build()


def test_every_kind_has_an_offline_and_online_derivation() -> None:
    from mlref.features import offline, online

    windowed = set(AGGREGATIONS) - {"count", "last"}
    assert set(offline._WINDOW_REDUCERS) == windowed
    assert set(online._REDUCERS) == set(AGGREGATIONS)
