"""mlref.features.replay and the stream warm start, on a log small enough to compute by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from mlref.features.online import STREAM_WARM_UP
from mlref.features.replay import served_by_replay, trained_on

DAY = pd.Timedelta(days=1)
T0 = pd.Timestamp("2026-01-01", tz="UTC")


def _log() -> pd.DataFrame:
    """User 0: 1000 at day 0, 1 at day 20, then 7 and 9 in one second at day 46; user 1: 5 at
    day 45 (the history ends there). Day 20 is within the 30 d TTL at day 46, and its 30 d
    window reaches day 0."""
    return pd.DataFrame(
        {
            "transaction_id": ["a", "b", "c", "d", "e"],
            "user_id": [0, 0, 1, 0, 0],
            "event_timestamp": [T0, T0 + 20 * DAY, T0 + 45 * DAY, T0 + 46 * DAY, T0 + 46 * DAY],
            "amount": [1000.0, 1.0, 5.0, 7.0, 9.0],
            "merchant_category": ["grocery"] * 5,
        }
    )


def test_the_warm_up_covers_the_longest_window_plus_the_longest_ttl() -> None:
    assert pd.Timedelta(days=60) == STREAM_WARM_UP


@pytest.mark.parametrize("live_from", [None, T0 + 46 * DAY])
def test_online_replay_matches_hand_computed_values(live_from: pd.Timestamp | None) -> None:
    log = _log()
    served = served_by_replay(log, live_from=live_from).set_index("transaction_id")
    trained = trained_on(log).set_index("transaction_id")
    for txn in ("d", "e"):  # both day-46 events read the state after day 20: (1000 + 1) / 2
        assert served.at[txn, "avg_order_30d"] == 500.5
        assert trained.at[txn, "avg_order_30d"] == 500.5
        assert served.at[txn, "txn_velocity_24h"] == 0.0  # day 20 is > 24 h old: expired
        assert served.at[txn, "seconds_since_last_txn"] == 26 * 86_400
    assert served.at["e", "amount_vs_user_avg"] == 9.0 / 500.5
    if live_from is not None:
        assert list(served.index) == ["d", "e"]  # only the stream is scored


def test_a_30_day_warm_up_serves_a_truncated_prev_state() -> None:
    """The pipeline's old warm-up: the stream forgot day 0, so the prev_* state pushed with
    the first day-46 row (read by the second event of that second) is the day-20 amount."""
    served = served_by_replay(_log(), live_from=T0 + 46 * DAY, warm_up=30 * DAY)
    served = served.set_index("transaction_id")
    assert served.at["d", "avg_order_30d"] == 500.5  # read from the materialized row
    assert served.at["e", "avg_order_30d"] == 1.0  # read from the pushed row's prev_* state
