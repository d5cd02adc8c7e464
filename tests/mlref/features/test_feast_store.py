"""The Feast store built from the whole log: point-in-time retrieval, training rows, serving.

* historical retrieval (DuckDB offline store) returns every entity row, in the order we put
  them back by a carried row id, and never a value from after the entity timestamp
  (compared with the pure-pandas reference ``point_in_time_features``);
* ``training_frame`` equals the Feast-free reference ``batch_model_features``;
* ``online_model_features`` equals ``training_frame`` for the same transactions
  (serving/training skew at feature level), for known, expired and unknown users.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlref.data.columns import (
    AMOUNT,
    EVENT_TIMESTAMP,
    LABEL,
    LABEL_TIMESTAMP,
    MERCHANT_CATEGORY,
    TRANSACTION_ID,
    USER_ID,
)
from mlref.data.generate import generate_transactions
from mlref.features.definitions import (
    FEATURE_SERVICE,
    MODEL_FEATURES,
    NAT_NS,
    SPEND_VIEW,
    STORED_COLUMNS,
    VELOCITY_VIEW,
    lookup_time,
)
from mlref.features.offline import batch_model_features, point_in_time_features, stored_rows
from mlref.features.store import build_feature_store, online_model_features, training_frame
from mlref.settings import DataConfig, make_settings

pytestmark = [
    # ibis (under Feast's DuckDB offline store) calls a DuckDB API that DuckDB 1.4 deprecates
    pytest.mark.filterwarnings("ignore:fetch_arrow_table\\(\\) is deprecated:DeprecationWarning"),
    # Feast warns on every use of on-demand views; the python-mode ODFV is deliberate
    pytest.mark.filterwarnings("ignore:On demand feature view is an experimental:RuntimeWarning"),
]


@dataclass
class Built:
    store: Any
    events: pd.DataFrame
    timings: dict[str, float]


@pytest.fixture(scope="module")
def built(
    tmp_path_factory: pytest.TempPathFactory,
    combine_events: Callable[..., pd.DataFrame],
    edge_events: Callable[[pd.Timestamp], pd.DataFrame],
    events_factory: Callable[..., pd.DataFrame],
) -> Built:
    generated = generate_transactions(DataConfig(n_users=120, days=4, seed=5))
    t = pd.Timestamp("2026-01-04T20:00:00Z")
    # user 900006 ends with two events in one second
    pair_at_end = events_factory(
        [
            (900006, t, 5.0, "gas"),
            (900006, t + pd.Timedelta(hours=1), 7.0, "gas"),
            (900006, t + pd.Timedelta(hours=1), 9.0, "online"),
        ],
        prefix="p",
    )
    events = combine_events(
        generated, edge_events(pd.Timestamp("2026-01-03T00:00:00Z")), pair_at_end
    )
    timings: dict[str, float] = {}
    store = build_feature_store(
        make_settings(tmp_path_factory.mktemp("feast_store")), events, timings=timings
    )
    return Built(store=store, events=events, timings=timings)


def assert_features_equal(actual: pd.DataFrame, expected: pd.DataFrame, what: str) -> None:
    """MODEL_FEATURES equal: NaN where NaN, otherwise within 1e-9 relative."""
    __tracebackhide__ = True
    for name in MODEL_FEATURES:
        a = actual[name].to_numpy(dtype=np.float64)
        e = expected[name].to_numpy(dtype=np.float64)
        np.testing.assert_allclose(a, e, rtol=1e-9, atol=0, err_msg=f"{what}: {name}")


# ---------------------------------------------------------------- offline retrieval
def test_historical_retrieval_is_point_in_time_and_returns_every_row(built: Built) -> None:
    events = built.events
    rows = stored_rows(events)
    rng = np.random.default_rng(8)
    known = events[USER_ID].unique()
    n = 400
    lo = events[EVENT_TIMESTAMP].min() - pd.Timedelta(days=1)
    span_s = (events[EVENT_TIMESTAMP].max() - lo).total_seconds() + 35 * 86400
    picks = rows.sample(40, random_state=3)
    entity = pd.DataFrame(
        {
            USER_ID: np.r_[
                rng.choice(np.r_[known, [123456789]], n), np.tile(picks[USER_ID].to_numpy(), 4)
            ],
            EVENT_TIMESTAMP: pd.concat(
                [
                    # Feast handles microseconds at most: draw whole milliseconds
                    pd.Series(
                        lo + pd.to_timedelta(rng.integers(0, int(span_s * 1000), n), unit="ms")
                    ),
                    picks[EVENT_TIMESTAMP],  # exactly at a row: the row counts
                    picks[EVENT_TIMESTAMP] - pd.Timedelta(milliseconds=1),  # just before: not
                    picks[EVENT_TIMESTAMP] + pd.Timedelta(hours=24),  # exactly the 24 h TTL
                    picks[EVENT_TIMESTAMP] + pd.Timedelta(days=30),  # exactly the 30 d TTL
                ],
                ignore_index=True,
            ),
        }
    )
    entity = pd.concat([entity, entity.iloc[:25]], ignore_index=True)  # duplicate entity rows
    entity["row_id"] = np.arange(len(entity))
    refs = [
        f"{VELOCITY_VIEW}:txn_count_24h",
        f"{SPEND_VIEW}:avg_amount_30d",
        f"{SPEND_VIEW}:last_txn_ts",
    ]
    started = time.perf_counter()
    got = built.store.get_historical_features(entity_df=entity, features=refs).to_df()
    built.timings[f"historical_raw_{len(entity)}_rows"] = time.perf_counter() - started

    assert len(got) == len(entity), "Feast dropped or duplicated entity rows"
    got = got.sort_values("row_id").reset_index(drop=True)
    assert got["row_id"].tolist() == entity["row_id"].tolist()
    assert got[USER_ID].tolist() == entity[USER_ID].tolist()
    as_of_s = entity[EVENT_TIMESTAMP].astype("datetime64[ns, UTC]").array.asi8 / 1e9
    last = got["last_txn_ts"].to_numpy(dtype=np.float64, na_value=np.nan)
    seen = ~np.isnan(last)
    assert seen.sum() > 100
    assert (last[seen] <= as_of_s[seen]).all(), "a value from after the entity timestamp"

    expected = point_in_time_features(None, entity, rows=rows)
    feast_state = pd.DataFrame(
        {c: got[c].to_numpy(dtype=np.float64, na_value=np.nan) for c in STORED_COLUMNS}
    )
    feast_state["txn_count_24h"] = feast_state["txn_count_24h"].fillna(0.0)  # the default
    for col in STORED_COLUMNS:
        np.testing.assert_allclose(
            feast_state[col].to_numpy(), expected[col].to_numpy(), rtol=1e-12, err_msg=col
        )
    # the boundary rows behave as the TTL rule says (inclusive), on both sides
    k = len(picks)
    exact, before = slice(n, n + k), slice(n + k, n + 2 * k)
    np.testing.assert_array_equal(last[exact], as_of_s[exact])
    assert (np.nan_to_num(last[before], nan=-1.0) < as_of_s[before]).all()
    assert (feast_state["txn_count_24h"].to_numpy()[n + 2 * k : n + 3 * k] > 0).all()


def test_training_frame_matches_the_reference(built: Built) -> None:
    events = built.events
    started = time.perf_counter()
    frame = training_frame(built.store, events)
    built.timings[f"training_frame_{len(events)}_rows"] = time.perf_counter() - started
    assert list(frame.columns) == [
        TRANSACTION_ID,
        USER_ID,
        EVENT_TIMESTAMP,
        LABEL,
        LABEL_TIMESTAMP,
        *MODEL_FEATURES,
    ]
    assert frame[TRANSACTION_ID].tolist() == events[TRANSACTION_ID].tolist()
    for col in (LABEL, LABEL_TIMESTAMP):
        pd.testing.assert_series_equal(frame[col], events[col].reset_index(drop=True))
    pd.testing.assert_series_equal(
        frame[EVENT_TIMESTAMP], events[EVENT_TIMESTAMP].reset_index(drop=True)
    )
    reference = batch_model_features(events, events)
    assert_features_equal(frame, reference, "training_frame vs reference")
    # the shuffled input comes back in its own order
    shuffled = events.sample(frac=1.0, random_state=4)
    again = training_frame(built.store, shuffled)
    assert again[TRANSACTION_ID].tolist() == shuffled[TRANSACTION_ID].tolist()
    assert_features_equal(again, reference.loc[shuffled.index], "shuffled input")


def test_training_frame_refuses_lost_rows(built: Built, monkeypatch: pytest.MonkeyPatch) -> None:
    """The row check catches an offline store that drops entity rows (feast issue 6787)."""
    store = built.store
    real = store.get_historical_features

    class Dropping:
        def __init__(self, job: Any) -> None:
            self.job = job

        def to_df(self) -> pd.DataFrame:
            return self.job.to_df().iloc[1:]

    monkeypatch.setattr(store, "get_historical_features", lambda **kw: Dropping(real(**kw)))
    with pytest.raises(RuntimeError, match=r"returned 9 rows for 10 entity rows"):
        training_frame(store, built.events.iloc[:10])
    monkeypatch.undo()
    assert len(training_frame(store, built.events.iloc[:10])) == 10


# ---------------------------------------------------------------- serving vs training
def _next_transactions(events: pd.DataFrame, unknown: list[int]) -> pd.DataFrame:
    """New transactions after the log: 1 h, 25 h and 31 days after each user's last event."""
    last = events.groupby(USER_ID)[EVENT_TIMESTAMP].max()
    parts = []
    for k, delay in enumerate(
        [pd.Timedelta(hours=1), pd.Timedelta(hours=25), pd.Timedelta(days=31)]
    ):
        parts.append(
            pd.DataFrame(
                {
                    TRANSACTION_ID: [f"n{k}_{u}" for u in last.index],
                    USER_ID: last.index.to_numpy(),
                    EVENT_TIMESTAMP: (last + delay).to_numpy(),
                    AMOUNT: 42.5 * (k + 1),
                    MERCHANT_CATEGORY: ["online", "crypto", "gas"][k],
                }
            )
        )
    t_end = events[EVENT_TIMESTAMP].max()
    parts.append(
        pd.DataFrame(
            {
                TRANSACTION_ID: [f"u_{u}" for u in unknown],
                USER_ID: unknown,
                EVENT_TIMESTAMP: [t_end] * len(unknown),
                AMOUNT: 10.0,
                MERCHANT_CATEGORY: "travel",
            }
        )
    )
    out = pd.concat(parts, ignore_index=True)
    out[EVENT_TIMESTAMP] = pd.to_datetime(out[EVENT_TIMESTAMP], utc=True)
    return out


def test_online_features_equal_training_features_for_new_transactions(built: Built) -> None:
    requests = _next_transactions(built.events, unknown=[555555501, 555555502])
    started = time.perf_counter()
    online = online_model_features(built.store, requests)
    built.timings[f"online_model_features_{len(requests)}_requests"] = time.perf_counter() - started
    offline = training_frame(built.store, requests)
    assert list(online.columns[: len(MODEL_FEATURES)]) == MODEL_FEATURES
    assert_features_equal(online, offline, "online vs training (new transactions)")
    n_users = built.events[USER_ID].nunique()
    assert online["unknown_user"].tolist() == [False] * (3 * n_users) + [True, True]
    assert not online["stale_state"].any()
    # the three delays exercise: fresh state, expired velocity, everything expired
    velocity = online["txn_velocity_24h"].to_numpy()
    avg = online["avg_order_30d"].to_numpy()
    assert (velocity[:n_users] > 0).all()
    assert (velocity[n_users:] == 0).all()
    assert not np.isnan(avg[: 2 * n_users]).any()
    assert np.isnan(avg[2 * n_users :]).all()


def test_online_features_equal_training_features_for_latest_transactions(built: Built) -> None:
    """Score each user's last transaction(s) after materialization: the online row is then
    *at* the transaction time, newer than its lookup time, so the prev_* companions give the
    state; same-second pairs included."""
    events = built.events
    last_second = events.groupby(USER_ID)[EVENT_TIMESTAMP].transform("max")
    latest = events[events[EVENT_TIMESTAMP] == last_second]
    assert latest[USER_ID].duplicated().any(), "include a same-second pair"
    online = online_model_features(built.store, latest)
    offline = training_frame(built.store, latest)
    assert_features_equal(online, offline, "online vs training (latest transactions)")
    assert not online["unknown_user"].any()
    assert not online["stale_state"].any()


def test_feast_online_store_does_not_enforce_the_ttl(built: Built) -> None:
    """Why online reads carry timestamps: Feast returns the stale row (feast issue 6821)."""
    events = built.events
    user = 900001  # last event on day0 + 3 h
    request = pd.DataFrame(
        {
            TRANSACTION_ID: ["late"],
            USER_ID: [user],
            EVENT_TIMESTAMP: [
                events.loc[events[USER_ID] == user, EVENT_TIMESTAMP].max() + pd.Timedelta(days=45)
            ],
            AMOUNT: [1.0],
            MERCHANT_CATEGORY: ["gas"],
        }
    )
    raw = built.store.get_online_features(
        features=[f"{VELOCITY_VIEW}:txn_count_24h", f"{SPEND_VIEW}:avg_amount_30d"],
        entity_rows=[{USER_ID: user}],
    ).to_dict()
    assert raw["txn_count_24h"][0] >= 1
    assert raw["avg_amount_30d"][0] is not None
    ours = online_model_features(built.store, request)
    assert ours["txn_velocity_24h"].iloc[0] == 0.0
    assert np.isnan(ours["avg_order_30d"].iloc[0])


def test_direct_online_read_equals_get_online_features(built: Built) -> None:
    """The serving path reads the online store through ``Provider.online_read``: every stored
    field and row timestamp equals what ``get_online_features`` answers, unknown users too."""
    from mlref.features.definitions import VIEWS
    from mlref.features.store import _OnlineReader

    users = [*sorted(int(u) for u in built.events[USER_ID].unique()), 123456789, -1]
    values, row_ts = _OnlineReader(built.store).read(users)
    refs = [f"{view.name}:{name}" for view in VIEWS for name in view.field_names]
    reference = built.store.get_online_features(
        features=refs, entity_rows={USER_ID: users}
    ).to_dict(include_event_timestamps=True)
    for view in VIEWS:
        for name in view.field_names:
            expected = np.array(
                [np.nan if v is None else v for v in reference[name]], dtype=np.float64
            )
            np.testing.assert_array_equal(values[name], expected, err_msg=name)
        first = view.served_fields[0]
        present = np.array([v is not None for v in reference[first]])
        seconds = np.asarray(reference[f"{first}__ts"], dtype=np.int64)
        assert present.sum() > 100
        assert not present[-2:].any()
        np.testing.assert_array_equal(row_ts[view.name] != NAT_NS, present, err_msg=view.name)
        # Feast's response carries whole seconds; the direct read keeps the stored precision
        np.testing.assert_array_equal(
            row_ts[view.name][present] // 1_000_000_000, seconds[present], err_msg=view.name
        )


def test_feature_service_is_versioned_and_names_the_model_features(built: Built) -> None:
    service = built.store.get_feature_service(FEATURE_SERVICE)
    names = {p.name for p in service.feature_view_projections}
    assert names == {VELOCITY_VIEW, SPEND_VIEW, "fraud_model_inputs_v1"}
    assert service.tags["model_features"].split(",") == MODEL_FEATURES


def test_requests_with_missing_columns_are_refused(built: Built) -> None:
    with pytest.raises(ValueError, match=r"missing columns \['amount'\]"):
        online_model_features(
            built.store,
            pd.DataFrame(
                {
                    USER_ID: [1],
                    MERCHANT_CATEGORY: ["gas"],
                    EVENT_TIMESTAMP: [lookup_time(pd.Timestamp.now(tz="UTC"))],
                }
            ),
        )
    with pytest.raises(ValueError, match="naive timestamps"):
        online_model_features(
            built.store,
            pd.DataFrame(
                {
                    USER_ID: [1],
                    AMOUNT: [1.0],
                    MERCHANT_CATEGORY: ["gas"],
                    EVENT_TIMESTAMP: [pd.Timestamp("2026-01-01")],
                }
            ),
        )


def test_build_writes_the_repo_and_the_offline_rows(built: Built) -> None:
    repo = Path(built.store.repo_path)
    config = (repo / "feature_store.yaml").read_text()
    assert "type: duckdb" in config
    assert "type: sqlite" in config
    parquet = pd.read_parquet(repo / "data" / "user_state.parquet")
    pd.testing.assert_frame_equal(parquet, stored_rows(built.events))
    assert {"rows", "apply", "materialize"} <= set(built.timings)
    assert all(v > 0 for v in built.timings.values())
