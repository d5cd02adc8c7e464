"""Replay parity: the online path pushed through Feast event by event equals the offline path.

The store is built (offline parquet, apply, materialize) from the history before a replay
day; then the day's events go through the OnlineAggregator and ``store.push`` one
micro-batch per event. Before each push the scoring read (lookup_time, TTL, prev_* rule)
must equal the offline point-in-time state; after it, the read as of the event time must
equal the offline row of the log replayed so far.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from mlref.data.columns import EVENT_TIMESTAMP, USER_ID
from mlref.data.generate import generate_transactions
from mlref.features.definitions import STORED_COLUMNS, lookup_time, to_epoch_ns
from mlref.features.offline import point_in_time_features, stored_rows
from mlref.features.online import OnlineAggregator
from mlref.features.store import build_feature_store, push_events, read_online_state
from mlref.settings import DataConfig, make_settings

pytestmark = [
    # ibis (under Feast's DuckDB offline store) calls a DuckDB API that DuckDB 1.4 deprecates
    pytest.mark.filterwarnings("ignore:fetch_arrow_table\\(\\) is deprecated:DeprecationWarning"),
    # Feast warns on every use of on-demand views; the python-mode ODFV is deliberate
    pytest.mark.filterwarnings("ignore:On demand feature view is an experimental:RuntimeWarning"),
]

MAX_REPLAY_EVENTS = 150


@dataclass
class ReplayWorld:
    store: object
    history: pd.DataFrame
    replay: pd.DataFrame
    full_rows: pd.DataFrame
    aggregator: OnlineAggregator
    timings: dict[str, float]


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory,
    combine_events: Callable[..., pd.DataFrame],
    edge_events: Callable[[pd.Timestamp], pd.DataFrame],
) -> ReplayWorld:
    generated = generate_transactions(DataConfig(n_users=60, days=3, seed=21))
    day0 = pd.Timestamp("2026-01-03T00:00:00Z")
    events = combine_events(generated, edge_events(day0))
    ts = events[EVENT_TIMESTAMP]
    history = events[ts < day0].reset_index(drop=True)
    day = events[(ts >= day0) & (ts < day0 + pd.Timedelta(days=1))]
    edge = day[day[USER_ID] >= 900000]
    rest = day[day[USER_ID] < 900000].iloc[: MAX_REPLAY_EVENTS - len(edge)]
    replay = combine_events(edge, rest)
    settings = make_settings(tmp_path_factory.mktemp("feast_replay"))
    timings: dict[str, float] = {}
    store = build_feature_store(settings, history, timings=timings)
    aggregator = OnlineAggregator()
    aggregator.process(history)  # warm start: the stream processor has seen the history
    return ReplayWorld(
        store=store,
        history=history,
        replay=replay,
        full_rows=stored_rows(combine_events(history, replay)),
        aggregator=aggregator,
        timings=timings,
    )


def _mismatches(actual: pd.DataFrame, expected: pd.DataFrame) -> list[str]:
    """Columns that differ: counts/timestamps exactly, means beyond 1e-9 relative."""
    bad = []
    for col in STORED_COLUMNS:
        a = float(actual[col].iloc[0])
        e = float(expected[col].iloc[0])
        if np.isnan(a) and np.isnan(e):
            continue
        ok = abs(a - e) <= 1e-9 * abs(e) if col == "avg_amount_30d" else a == e
        if not ok:
            bad.append(f"{col}: online {a!r} != offline {e!r}")
    return bad


def test_materialized_online_state_equals_the_offline_latest_rows(world: ReplayWorld) -> None:
    latest = stored_rows(world.history).drop_duplicates(USER_ID, keep="last").reset_index(drop=True)
    pd.testing.assert_frame_equal(world.aggregator.latest_rows(), latest, rtol=1e-12)
    # read each user as of its own latest row time: nothing expires, values come back as stored
    state = read_online_state(
        world.store,
        latest[USER_ID].to_numpy(),
        to_epoch_ns(latest[EVENT_TIMESTAMP]),
    )
    for col in STORED_COLUMNS:
        np.testing.assert_allclose(
            state[col].to_numpy(), latest[col].to_numpy(dtype=np.float64), rtol=1e-12, err_msg=col
        )
    assert not state["unknown_user"].any()


def test_replay_parity_event_by_event(world: ReplayWorld) -> None:
    replay = world.replay
    assert 50 <= len(replay) <= MAX_REPLAY_EVENTS
    users = replay[USER_ID].to_numpy()
    seconds = to_epoch_ns(replay[EVENT_TIMESTAMP]) // 10**9
    pair_first = np.r_[(users[1:] == users[:-1]) & (seconds[1:] == seconds[:-1]), False]
    assert pair_first.any(), "the replay must include two events of one user in one second"
    scoring_entity = pd.DataFrame(
        {USER_ID: users, EVENT_TIMESTAMP: lookup_time(replay[EVENT_TIMESTAMP])}
    )
    offline_scoring = point_in_time_features(None, scoring_entity, rows=world.full_rows)
    offline_after = point_in_time_features(
        None, replay[[USER_ID, EVENT_TIMESTAMP]], rows=world.full_rows
    )
    # the TTL matters in this replay: some scoring reads find expired state
    assert (offline_scoring["txn_count_24h"] == 0).any()
    assert offline_scoring["avg_amount_30d"].isna().any()

    problems: list[str] = []
    push_seconds: list[float] = []
    read_seconds: list[float] = []
    for i in range(len(replay)):
        event = replay.iloc[i : i + 1]
        user = users[i : i + 1]
        what = f"event {i} user {users[i]} at {event[EVENT_TIMESTAMP].iloc[0]}"

        started = time.perf_counter()
        scoring = read_online_state(
            world.store, user, to_epoch_ns(lookup_time(event[EVENT_TIMESTAMP]))
        )
        read_seconds.append(time.perf_counter() - started)
        problems += [
            f"{what} scoring read: {m}"
            for m in _mismatches(scoring, offline_scoring.iloc[i : i + 1])
        ]

        started = time.perf_counter()
        push_events(world.store, event, aggregator=world.aggregator, batch_size=1)
        push_seconds.append(time.perf_counter() - started)

        after = read_online_state(world.store, user, to_epoch_ns(event[EVENT_TIMESTAMP]))
        if pair_first[i]:
            # mid-second: the online row holds the first event only; the offline row of the
            # log replayed so far is the same, the final one (after both) comes next event
            prefix = stored_rows(pd.concat([world.history, replay.iloc[: i + 1]]))
            expected = point_in_time_features(None, event[[USER_ID, EVENT_TIMESTAMP]], rows=prefix)
        else:
            expected = offline_after.iloc[i : i + 1]
        problems += [f"{what} after push: {m}" for m in _mismatches(after, expected)]
        if scoring["stale_state"].iloc[0] or after["unknown_user"].iloc[0]:
            problems.append(f"{what}: flags {scoring.to_dict('records')}")

    assert not problems, "online != offline:\n" + "\n".join(problems[:20])
    world.timings["push_one_event_median"] = float(np.median(push_seconds))
    world.timings["online_read_one_user_median"] = float(np.median(read_seconds))


def test_replayed_store_holds_the_offline_latest_rows(world: ReplayWorld) -> None:
    """After the replay the online store and the aggregator both hold the final rows."""
    latest = world.full_rows.drop_duplicates(USER_ID, keep="last").reset_index(drop=True)
    pd.testing.assert_frame_equal(world.aggregator.latest_rows(), latest, rtol=1e-12)
    state = read_online_state(
        world.store, latest[USER_ID].to_numpy(), to_epoch_ns(latest[EVENT_TIMESTAMP])
    )
    for col in STORED_COLUMNS:
        np.testing.assert_allclose(
            state[col].to_numpy(), latest[col].to_numpy(dtype=np.float64), rtol=1e-9, err_msg=col
        )
