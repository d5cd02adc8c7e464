"""Skew: ``feature_parity`` catches a serving path that computes a feature differently.

A private world (generated events, own Feast stores in a temporary directory): the offline
truth is Feast ``get_historical_features`` over the whole log (what training reads); the
online side replays the last day through the real online path (``OnlineAggregator`` ->
``store.push`` -> ``get_online_features`` + the shared request transforms), scoring each
chunk before pushing it, as the server and the stream processor do.

Defects:
- the stream processor counts ``txn_velocity_24h`` over 25 hours;
- serving counts the current event (the stream pushes before scoring and the online read is
  as of the event time instead of ``lookup_time``).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlref.data.columns import EVENT_TIMESTAMP, TRANSACTION_ID, USER_ID
from mlref.features.definitions import MODEL_FEATURES
from mlref.features.online import OnlineAggregator

pytestmark = [
    pytest.mark.filterwarnings("ignore:fetch_arrow_table\\(\\) is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:On demand feature view is an experimental:RuntimeWarning"),
]

SKEWED_WINDOW_S = 25 * 3600
HISTORY_DAYS = 31
CHUNK = 50


class Velocity25hAggregator(OnlineAggregator):
    """The defect: the stream processor counts txn_count_24h over (t - 25h, t]."""

    def __init__(self) -> None:
        super().__init__()
        self._w25: dict[int, deque[int]] = {}

    def process_event(self, user_id: int, second: int, amount: float) -> dict[str, object]:
        super().process_event(user_id, second, amount)
        window = self._w25.setdefault(user_id, deque())
        window.append(second)
        while window and window[0] <= second - SKEWED_WINDOW_S:
            window.popleft()
        # the stored (and, for the next row, previous) state carries the 25 h count
        self._current[user_id] = replace(self._current[user_id], count_24h=len(window))
        return self._row(user_id)


@dataclass
class SkewWorld:
    history: pd.DataFrame
    live: pd.DataFrame
    offline: pd.DataFrame  # Feast historical features of the live transactions
    clean: pd.DataFrame  # online features, scored before each push (correct)
    counting_current: pd.DataFrame  # online features read as of the event, after its push
    velocity_25h: pd.DataFrame  # online features with the 25 h stream processor


def _read_as_of_event_time(store: Any, requests: pd.DataFrame) -> pd.DataFrame:
    """The defect: the online read as of the event time (not lookup_time = t - 1 ms)."""
    from mlref.features.definitions import to_epoch_ns
    from mlref.features.offline import transform_inputs
    from mlref.features.store import read_online_state
    from mlref.features.transforms import request_features

    event_ns = to_epoch_ns(requests[EVENT_TIMESTAMP])
    state = read_online_state(store, requests[USER_ID].to_numpy(dtype=np.int64), event_ns)
    state.index = requests.index
    return request_features(transform_inputs(requests, state))


def _replay(
    kit: Any,
    settings: Any,
    history: pd.DataFrame,
    live: pd.DataFrame,
    aggregator: OnlineAggregator,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Build an online store from the history, start the stream processor from its state,
    then score-and-push the live day chunk by chunk. Returns (scored before the push, read
    as of the event time after the push)."""
    from feast.data_source import PushMode

    from mlref.features.definitions import PUSH_SOURCE
    from mlref.features.store import build_feature_store, online_model_features, push_events

    store = build_feature_store(settings, history)
    # the stream processor starts from the history; its rows are what the store serves
    aggregator.process(history)
    store.push(PUSH_SOURCE, aggregator.latest_rows(), to=PushMode.ONLINE)
    before, after = [], []
    for chunk in kit.replay_chunks(live, CHUNK):
        before.append(online_model_features(store, chunk)[MODEL_FEATURES])
        push_events(store, chunk, aggregator=aggregator)
        after.append(_read_as_of_event_time(store, chunk)[MODEL_FEATURES])
    keyed = live[[TRANSACTION_ID]]
    return (
        pd.concat([keyed, pd.concat(before)], axis=1),
        pd.concat([keyed, pd.concat(after)], axis=1),
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, mutation_kit: Any) -> SkewWorld:
    from mlref.data.generate import generate_transactions
    from mlref.features.store import build_feature_store, training_frame
    from mlref.settings import DataConfig, make_settings

    cfg = DataConfig(n_users=120, days=HISTORY_DAYS + 1, seed=23)
    events = generate_transactions(cfg)
    cut = pd.Timestamp(cfg.start) + pd.Timedelta(days=HISTORY_DAYS)
    history = events.loc[events[EVENT_TIMESTAMP] < cut].reset_index(drop=True)
    live = events.loc[events[EVENT_TIMESTAMP] >= cut].reset_index(drop=True)

    def settings(name: str) -> Any:
        s = make_settings(tmp_path_factory.mktemp(f"skew-{name}") / "mlref")
        s.ensure_dirs()
        return s

    truth_store = build_feature_store(settings("offline"), events)
    offline = training_frame(truth_store, live)[[TRANSACTION_ID, *MODEL_FEATURES]]
    clean, counting_current = _replay(
        mutation_kit, settings("clean"), history, live, OnlineAggregator()
    )
    velocity_25h, _ = _replay(mutation_kit, settings("v25"), history, live, Velocity25hAggregator())
    return SkewWorld(history, live, offline, clean, counting_current, velocity_25h)


def expected_25h_mismatches(history: pd.DataFrame, live: pd.DataFrame) -> int:
    """Independent count (plain loops) of live transactions whose served velocity must
    change under a 25 h window: the state read (the user's latest event second strictly
    before t, if within the 24 h TTL) has an event in (s - 25h, s - 24h]."""
    events = pd.concat([history, live], ignore_index=True)
    seconds: dict[int, list[int]] = {}
    for user, ts in zip(events[USER_ID], events[EVENT_TIMESTAMP], strict=True):
        seconds.setdefault(int(user), []).append(int(pd.Timestamp(ts).timestamp()))
    count = 0
    for user, ts in zip(live[USER_ID], live[EVENT_TIMESTAMP], strict=True):
        t = int(pd.Timestamp(ts).timestamp())
        before = [s for s in seconds[int(user)] if s < t]
        if not before:
            continue
        s = max(before)
        if t - s > 24 * 3600:  # expired: both paths serve the default 0
            continue
        if any(s - 25 * 3600 < e <= s - 24 * 3600 for e in seconds[int(user)]):
            count += 1
    return count


def test_clean_online_path_matches_offline(world: SkewWorld) -> None:
    from mlgates.gates import feature_parity

    result = feature_parity(world.offline, world.clean, keys=TRANSACTION_ID)
    assert result.verdict == "pass", result.explain()
    assert result.details["matched"] == len(world.live)


def test_velocity_over_25_hours_fails_naming_the_feature(world: SkewWorld) -> None:
    from mlgates.gates import feature_parity

    expected = expected_25h_mismatches(world.history, world.live)
    assert expected >= 5, f"the world must exercise the 24-25 h band (only {expected} rows)"

    result = feature_parity(world.offline, world.velocity_25h, keys=TRANSACTION_ID)

    assert result.verdict == "fail"
    rows = result.details["features"]
    assert rows["txn_velocity_24h"]["mismatches"] == expected
    # only the velocity is wrong: the defect is pinned to the one feature it touches
    assert [f for f, r in rows.items() if r["mismatches"]] == ["txn_velocity_24h"]
    assert "txn_velocity_24h" in result.message
    assert "1 of 8 feature(s) differ" in result.message
    assert result.measured == pytest.approx(expected / len(world.live))
    example = rows["txn_velocity_24h"]["examples"][0]
    assert example["online"] > example["offline"]  # a wider window counts more events


def test_counting_the_current_event_fails_naming_the_features(world: SkewWorld) -> None:
    from mlgates.gates import feature_parity

    result = feature_parity(world.offline, world.counting_current, keys=TRANSACTION_ID)

    assert result.verdict == "fail"
    rows = result.details["features"]
    merged = world.offline.merge(world.counting_current, on=TRANSACTION_ID, suffixes=("_o", "_s"))
    # the time since the last transaction collapses to 0 for every row: the last one is itself
    assert rows["seconds_since_last_txn"]["mismatch_rate"] == 1.0
    assert (merged["seconds_since_last_txn_s"] == 0).all()
    # the served velocity is the 24 h window at t that includes t (independent count)
    assert merged["txn_velocity_24h_s"].tolist() == inclusive_counts_at_event(world)
    assert rows["txn_velocity_24h"]["mismatch_rate"] > 0.5
    for feature in ("txn_velocity_24h", "seconds_since_last_txn", "avg_order_30d"):
        assert feature in result.message
    # request-only transforms do not depend on the state and still agree
    for feature in ("log_amount", "hour_of_day", "day_of_week", "merchant_category_code"):
        assert rows[feature]["mismatches"] == 0


def inclusive_counts_at_event(world: SkewWorld) -> list[float]:
    """Per live transaction (in world.offline order): the user's events in (t - 24h, t]."""
    events = pd.concat([world.history, world.live], ignore_index=True)
    seconds: dict[int, list[int]] = {}
    for user, ts in zip(events[USER_ID], events[EVENT_TIMESTAMP], strict=True):
        seconds.setdefault(int(user), []).append(int(pd.Timestamp(ts).timestamp()))
    by_id = world.live.set_index(TRANSACTION_ID)
    out = []
    for txn in world.offline[TRANSACTION_ID]:
        user = int(by_id.at[txn, USER_ID])
        t = int(pd.Timestamp(by_id.at[txn, EVENT_TIMESTAMP]).timestamp())
        out.append(float(sum(t - 24 * 3600 < e <= t for e in seconds[user])))
    return out
