"""The audit reads of the Feast store: per view, which state a join picked and when the
online rows were written.

* ``point_in_time_audit`` returns, for every feature view, the state time of the stored row
  that view's point-in-time join picked: equal to a pure-pandas ``merge_asof`` over the
  stored rows with the view's own TTL (so the 24 h view's state is missing where it expired
  while the 30-day view's is not), and never after the lookup time;
* ``online_state_times`` returns, per view, when each user's online row was written: the
  newest materialized row, then the newest pushed one; NaT for a user the store never saw.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlref.data.columns import EVENT_TIMESTAMP, USER_ID
from mlref.data.generate import generate_transactions
from mlref.features.definitions import (
    LAST_TXN_TS,
    SPEND_VIEW,
    VELOCITY_VIEW,
    VIEWS,
    apply_ttl,
    lookup_time,
    to_epoch_ns,
)
from mlref.features.offline import stored_rows
from mlref.features.online import OnlineAggregator
from mlref.features.store import (
    build_feature_store,
    online_state_times,
    point_in_time_audit,
    push_events,
    state_time_column,
    training_frame,
)
from mlref.settings import DataConfig, make_settings


@dataclass
class World:
    store: Any
    history: pd.DataFrame
    later: pd.DataFrame  # the last day, pushed after the build


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    events = generate_transactions(DataConfig(n_users=60, days=8, seed=11))
    cut = events[EVENT_TIMESTAMP].max() - pd.Timedelta(days=1)
    history = events.loc[events[EVENT_TIMESTAMP] <= cut].reset_index(drop=True)
    later = events.loc[events[EVENT_TIMESTAMP] > cut].reset_index(drop=True)
    settings = make_settings(tmp_path_factory.mktemp("state-times") / "mlref")
    settings.ensure_dirs()
    return World(build_feature_store(settings, history), history, later)


def _reference_state_times(rows: pd.DataFrame, events: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per view: last_txn_ts of the latest stored row at or before lookup_time, if within the
    view's TTL (int64 ns, NAT_NS when none), computed without Feast."""
    left = pd.DataFrame(
        {
            USER_ID: events[USER_ID].to_numpy(dtype=np.int64),
            "as_of": lookup_time(events[EVENT_TIMESTAMP]).astype("datetime64[ns, UTC]"),
            "pos": np.arange(len(events)),
        }
    ).sort_values("as_of", kind="mergesort")
    right = rows[[USER_ID, EVENT_TIMESTAMP, LAST_TXN_TS]].rename(columns={EVENT_TIMESTAMP: "ts"})
    merged = pd.merge_asof(
        left, right.sort_values("ts"), left_on="as_of", right_on="ts", by=USER_ID
    ).sort_values("pos", kind="mergesort")
    as_of, row = merged["as_of"].array.asi8, merged["ts"].array.asi8
    seconds = merged[LAST_TXN_TS].to_numpy(dtype=np.float64, na_value=np.nan)
    out = {}
    for view in VIEWS:
        kept = apply_ttl(seconds, row, as_of, view.ttl, np.nan)
        ns = np.full(kept.size, np.iinfo(np.int64).min)
        ok = np.isfinite(kept)
        ns[ok] = (kept[ok] * 1e9).astype(np.int64)
        out[view.name] = ns
    return out


def test_audit_gives_each_views_own_join(world: World) -> None:
    audit = point_in_time_audit(world.store, world.history)
    expected = _reference_state_times(stored_rows(world.history), world.history)
    for view in VIEWS:
        got = audit[state_time_column(view.name)].array.asi8
        np.testing.assert_array_equal(got, expected[view.name], err_msg=view.name)
        assert not (audit[state_time_column(view.name)] > audit["lookup_time"]).any()
    velocity = audit[state_time_column(VELOCITY_VIEW)]
    spend = audit[state_time_column(SPEND_VIEW)]
    # the TTLs differ: some rows read a 30-day state whose 24 h state had expired
    assert (velocity.isna() & spend.notna()).sum() > 10
    frame = training_frame(world.store, world.history)
    assert (velocity.notna() == (frame["txn_velocity_24h"] > 0)).all()
    assert list(audit["transaction_id"]) == list(world.history["transaction_id"])


def test_training_frame_does_not_carry_the_audit_field(world: World) -> None:
    frame = training_frame(world.store, world.history.head(50))
    assert LAST_TXN_TS not in frame.columns
    assert not any(c.endswith(LAST_TXN_TS) for c in frame.columns)


def test_online_state_times_follow_materialize_then_push(world: World) -> None:
    users = sorted({*world.history[USER_ID], *world.later[USER_ID], 999_999})
    newest = world.history.groupby(USER_ID)[EVENT_TIMESTAMP].max()
    times = online_state_times(world.store, users)
    for view in VIEWS:
        got = times[view.name]
        assert np.isnat(got.loc[999_999].to_datetime64())  # never seen
        pd.testing.assert_series_equal(
            got.loc[newest.index], newest.rename(view.name), check_index_type=False,
            check_names=False,
        )  # fmt: skip

    aggregator = OnlineAggregator()  # the stream processor, started from the history
    aggregator.process(world.history)
    push_events(world.store, world.later, aggregator=aggregator)
    after = online_state_times(world.store, users)
    newest_all = pd.concat([world.history, world.later]).groupby(USER_ID)[EVENT_TIMESTAMP].max()
    for view in VIEWS:
        got = after[view.name].loc[newest_all.index]
        assert (to_epoch_ns(got) == to_epoch_ns(newest_all)).all(), view.name
        assert after[view.name].max() == world.later[EVENT_TIMESTAMP].max()
