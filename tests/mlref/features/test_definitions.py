"""A stored feature is ONE definition: the offline rows, the online aggregator and the views
are derived from ``StoredFeature`` objects, for every aggregation kind the derivation
supports (definitions.AGGREGATIONS), against a brute-force reference of the definition."""

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
    STORED_FEATURES,
    VIEWS,
    StoredFeature,
    build_views,
    check_supported,
    row_columns,
)
from mlref.features.offline import point_in_time_features, stored_rows
from mlref.features.online import OnlineAggregator, latest_per_user, state_from_rows

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
def events(random_events_factory: Callable[..., pd.DataFrame]) -> pd.DataFrame:
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
    events: pd.DataFrame, kind: str
) -> None:
    feature = new_feature(kind)
    features = (*STORED_FEATURES, feature)
    rows = stored_rows(events, features)
    assert list(rows.columns) == list(row_columns(features))
    keys = zip(
        rows[USER_ID].tolist(),
        (rows[EVENT_TIMESTAMP].astype("datetime64[ns, UTC]").array.asi8 // 10**9).tolist(),
        strict=True,
    )
    expected = brute(events, feature).loc[list(keys)].to_numpy()
    np.testing.assert_allclose(rows[feature.name].to_numpy(dtype=float), expected, rtol=1e-12)
    # the existing features are untouched by the addition
    pd.testing.assert_frame_equal(rows[list(row_columns(STORED_FEATURES))], stored_rows(events))
    online = OnlineAggregator(features).process(events)
    online = online.sort_values([USER_ID, EVENT_TIMESTAMP], kind="mergesort")
    pd.testing.assert_frame_equal(
        online.reset_index(drop=True), rows, check_exact=False, rtol=1e-12, atol=0
    )


def test_the_new_view_gets_its_window_as_ttl_and_reads_resolve_it(events: pd.DataFrame) -> None:
    feature = new_feature("max", days=2)
    features = (*STORED_FEATURES, feature)
    views = build_views(features)
    assert [v.name for v in views] == [*(v.name for v in VIEWS), feature.view]
    assert views[-1].ttl == timedelta(days=2)
    rows = stored_rows(events, features)
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
    events: pd.DataFrame, change: dict[str, object], message: str
) -> None:
    bad = replace(new_feature("max"), **change)  # type: ignore[arg-type]
    features = (*STORED_FEATURES, bad)
    for build in (
        lambda: check_supported(features, "x"),
        lambda: stored_rows(events, features),
        lambda: OnlineAggregator(features),
    ):
        with pytest.raises(ValueError, match=message):
            build()


def test_every_kind_has_an_offline_and_online_derivation() -> None:
    from mlref.features import offline, online

    windowed = set(AGGREGATIONS) - {"count", "last"}
    assert set(offline._WINDOW_REDUCERS) == windowed
    assert set(online._REDUCERS) == set(AGGREGATIONS)
