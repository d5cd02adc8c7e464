"""Online path: the stored per-user rows maintained incrementally, one event at a time.

:class:`OnlineAggregator` is what a stream processor runs: per-user deques of recent events,
updated per event, emitting the user's stored row (same columns and semantics as
:func:`mlref.features.offline.stored_rows`) after each event. ``mlref.features.store``
pushes those rows to the Feast online store through the push source, in micro-batches.

:func:`resolve_online_arrays` turns what the online store returns (latest row per user and
its timestamp) into the state as of a lookup time with the same TTL rule as the offline
point-in-time join (the Feast online store does not enforce TTLs, feast issue 6821).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta

import numpy as np
import pandas as pd

from mlref.data.columns import AMOUNT, EVENT_TIMESTAMP, TRANSACTION_ID, USER_ID
from mlref.features.definitions import (
    NAT_NS,
    PREV_LAST_TXN_TS,
    ROW_COLUMNS,
    STORED_COLUMNS,
    STORED_FEATURES,
    VIEWS,
    StoredFeature,
    ViewSpec,
    apply_ttl,
    build_views,
    check_supported,
    row_columns,
    seconds_to_ns,
)
from mlref.features.offline import event_seconds

_Window = deque[tuple[int, float]]


def _count(second: int, window: _Window) -> int:
    return len(window)


def _sum(second: int, window: _Window) -> float:
    return math.fsum(a for _, a in window)


def _mean(second: int, window: _Window) -> float:
    return math.fsum(a for _, a in window) / len(window)


def _max(second: int, window: _Window) -> float:
    return max(a for _, a in window)


def _min(second: int, window: _Window) -> float:
    return min(a for _, a in window)


def _last(second: int, window: _Window) -> float:
    return float(second)


# the incremental form of each aggregation kind (definitions.AGGREGATIONS), over the user's
# (second, amount) deque of the feature's window after the event
_REDUCERS: dict[str, Callable[[int, _Window], float | int]] = {
    "count": _count,
    "sum": _sum,
    "mean": _mean,
    "max": _max,
    "min": _min,
    "last": _last,
}


class OnlineAggregator:
    """Incremental per-user state; feed it events in event-time order (per user).

    Keeps, per user, one deque of (second, amount) per distinct window of ``features``
    (default: the stored features), plus the latest and previous stored rows (value tuples
    in ``features`` order). Every feature is derived from its definition through the
    incremental reducer of its aggregation kind. An event older than the user's latest one
    is refused (late data needs a replay).
    """

    def __init__(self, features: Sequence[StoredFeature] = STORED_FEATURES) -> None:
        check_supported(features, "online OnlineAggregator")
        self.features = tuple(features)
        self.columns = row_columns(self.features)
        self._windows = sorted({f.window_seconds for f in features if f.window is not None})
        self._plan = [
            (
                self._windows.index(f.window_seconds) if f.window is not None else 0,
                _REDUCERS[f.aggregation],
            )
            for f in self.features
        ]
        self._defaults = tuple(int(f.default) if f.is_int else f.default for f in features)
        self._deques: dict[int, list[_Window]] = {}
        self._current: dict[int, tuple[int, tuple[float | int, ...]]] = {}
        self._previous: dict[int, tuple[int, tuple[float | int, ...]] | None] = {}
        self.events_seen = 0

    def process_event(self, user_id: int, second: int, amount: float) -> dict[str, object]:
        """Apply one event; returns the user's stored row after it."""
        if not (math.isfinite(amount) and amount >= 0):
            raise ValueError(f"event of user {user_id} has amount {amount!r}; need >= 0, finite")
        current = self._current.get(user_id)
        if current is not None and second < current[0]:
            raise ValueError(
                f"event of user {user_id} at {second} is older than the user's latest "
                f"event at {current[0]}; the online path needs events in time order"
            )
        deques = self._deques.get(user_id)
        if deques is None:
            deques = self._deques[user_id] = [deque() for _ in self._windows]
        # windows are (t - W, t]: drop everything at or before t - W
        for window, events in zip(self._windows, deques, strict=True):
            events.append((second, amount))
            while events[0][0] <= second - window:
                events.popleft()
        state = (second, tuple(reduce(second, deques[i]) for i, reduce in self._plan))
        if current is None:
            self._previous[user_id] = None
        elif second > current[0]:
            self._previous[user_id] = current
        # same second: the row is re-emitted with the state after both; prev stays put
        self._current[user_id] = state
        self.events_seen += 1
        return self._row(user_id)

    def _row(self, user_id: int) -> dict[str, object]:
        second, values = self._current[user_id]
        prev = self._previous.get(user_id)
        prev_values = self._defaults if prev is None else prev[1]
        return dict(zip(self.columns, (user_id, second, *values, *prev_values), strict=True))

    def process(self, events: pd.DataFrame) -> pd.DataFrame:
        """One micro-batch -> the rows it produced: one per (user, second), the last state.

        Events are applied in event-time order (ties by transaction id), as a stream with
        ordered partitions delivers them.
        """
        missing = [c for c in (USER_ID, EVENT_TIMESTAMP, AMOUNT) if c not in events.columns]
        if missing:
            raise ValueError(f"events are missing columns {missing}")
        if events.empty:
            return rows_frame([], self.features)
        seconds = event_seconds(events)
        tie = (
            events[TRANSACTION_ID].to_numpy() if TRANSACTION_ID in events else np.zeros(len(events))
        )
        order = np.lexsort((tie, seconds)) if len(events) > 1 else np.zeros(1, dtype=np.intp)
        users = events[USER_ID].to_numpy(dtype=np.int64)[order]
        amounts = events[AMOUNT].to_numpy(dtype=np.float64)[order]
        emitted: dict[tuple[int, int], dict[str, object]] = {}
        for user, second, amount in zip(
            users.tolist(), seconds[order].tolist(), amounts.tolist(), strict=True
        ):
            emitted[(user, second)] = self.process_event(user, second, amount)
        return rows_frame(list(emitted.values()), self.features)

    def latest_rows(self) -> pd.DataFrame:
        """The latest stored row of every user seen (what the online store should hold)."""
        return rows_frame([self._row(u) for u in sorted(self._current)], self.features)


def _longest(spans: list[timedelta]) -> pd.Timedelta:
    return pd.Timedelta(max(spans))


# A stream processor started at the end of the history must hold, per user, the state at the
# user's latest history event: the first row it pushes for that user carries that state as its
# prev_* companions, served (within the view's TTL) when a second event of the same second is
# scored. That event may be a TTL old and its window reaches a window further back, so the
# warm-up needs the longest window + the longest TTL of history (a warm-up of only the longest
# window gives those companions a truncated window).
STREAM_WARM_UP: pd.Timedelta = _longest(
    [f.window for f in STORED_FEATURES if f.window is not None]
) + _longest([v.ttl for v in VIEWS])


def warm_started(
    history: pd.DataFrame,
    aggregator: OnlineAggregator | None = None,
    *,
    warm_up: pd.Timedelta = STREAM_WARM_UP,
) -> OnlineAggregator:
    """The stream processor as it starts after ``history`` (the online store then holds the
    materialized rows): fed the history's last ``warm_up`` (:data:`STREAM_WARM_UP`)."""
    aggregator = OnlineAggregator() if aggregator is None else aggregator
    if history.empty:
        return aggregator
    end = pd.Timestamp(history[EVENT_TIMESTAMP].max())
    aggregator.process(history.loc[history[EVENT_TIMESTAMP] > end - warm_up])
    return aggregator


def rows_frame(
    rows: list[dict[str, object]], features: Sequence[StoredFeature] = STORED_FEATURES
) -> pd.DataFrame:
    """Stored rows (dicts with integer seconds) -> a frame typed like offline.stored_rows."""
    ints = {USER_ID, *(n for f in features if f.is_int for n in (f.name, f.prev_name))}
    columns: dict[str, object] = {}
    for col in ROW_COLUMNS if features is STORED_FEATURES else row_columns(features):
        values = [row[col] for row in rows]
        if col == EVENT_TIMESTAMP:
            ns = np.array(values, dtype=np.int64) * 1_000_000_000
            columns[col] = pd.DatetimeIndex(ns.view("datetime64[ns]"), tz="UTC")
        else:
            columns[col] = np.array(values, dtype=np.int64 if col in ints else np.float64)
    return pd.DataFrame(columns)


def latest_per_user(rows: pd.DataFrame) -> pd.DataFrame:
    """Keep each user's newest row (the online store keeps only the latest per entity)."""
    return rows.sort_values([USER_ID, EVENT_TIMESTAMP], kind="mergesort").drop_duplicates(
        USER_ID, keep="last"
    )


def resolve_online_arrays(
    values: Mapping[str, np.ndarray],
    view_row_ts_ns: Mapping[str, np.ndarray],
    lookup_ns: np.ndarray,
    views: Sequence[ViewSpec] = VIEWS,
) -> dict[str, np.ndarray]:
    """The stored state as of ``lookup_ns`` from the latest online rows.

    ``values`` maps every stored field (incl. prev_*) to an array (NaN = missing);
    ``view_row_ts_ns`` maps each view to its row timestamps (int64 ns, NAT_NS = no row).
    Per view: a row at or before the lookup is used as is; a row *after* the lookup (e.g.
    an earlier event of the same user in the same second was already pushed) is replaced by
    its prev_* companions, stamped ``prev_last_txn_ts``. Then the TTL rule of
    :func:`mlref.features.definitions.apply_ttl`.

    ``views`` (default: the stored views) name the fields to resolve.
    Returns their stored columns (default STORED_COLUMNS) plus ``unknown_user`` (no row in any view) and ``stale_state``
    (the lookup precedes even the previous row: the online store cannot answer, defaults
    are used), each an array aligned with ``lookup_ns``.
    """
    lookup = np.asarray(lookup_ns, dtype=np.int64)
    prev_ts = seconds_to_ns(values[PREV_LAST_TXN_TS])
    out: dict[str, np.ndarray] = {}
    stale = np.zeros(len(lookup), dtype=bool)
    unknown = np.ones(len(lookup), dtype=bool)
    for view in views:
        row_ts = np.asarray(view_row_ts_ns[view.name], dtype=np.int64)
        present = row_ts != NAT_NS
        unknown &= ~present
        use_prev = present & (row_ts > lookup)
        stale |= use_prev & (prev_ts != NAT_NS) & (prev_ts > lookup)
        ts_for_ttl = np.where(use_prev, prev_ts, row_ts)
        for feature in view.features:
            cur = np.asarray(values[feature.name], dtype=np.float64)
            prev = np.asarray(values[feature.prev_name], dtype=np.float64)
            out[feature.name] = apply_ttl(
                np.where(use_prev, prev, cur), ts_for_ttl, lookup, view.ttl, feature.default
            )
    names = STORED_COLUMNS if views is VIEWS else [f.name for v in views for f in v.features]
    state = {name: out[name] for name in names}
    state["unknown_user"] = unknown
    state["stale_state"] = stale
    return state


def resolve_online_state(
    values: Mapping[str, np.ndarray],
    view_row_ts_ns: Mapping[str, np.ndarray],
    lookup_ns: np.ndarray,
    views: Sequence[ViewSpec] = VIEWS,
) -> pd.DataFrame:
    """:func:`resolve_online_arrays` as a DataFrame (STORED_COLUMNS, unknown_user,
    stale_state)."""
    return pd.DataFrame(resolve_online_arrays(values, view_row_ts_ns, lookup_ns, views))


def state_from_rows(
    rows: pd.DataFrame,
    user_ids: np.ndarray,
    lookup_ns: np.ndarray,
    features: Sequence[StoredFeature] = STORED_FEATURES,
) -> pd.DataFrame:
    """resolve_online_state over a frame of latest rows (one per user), without Feast.

    Used by tests and as the specification of what the Feast online read must give.
    """
    latest = latest_per_user(rows).set_index(USER_ID)
    idx = latest.index.get_indexer(np.asarray(user_ids, dtype=np.int64))
    found = idx >= 0
    take = np.where(found, idx, 0)
    values: dict[str, np.ndarray] = {}
    for col in (*(f.name for f in features), *(f.prev_name for f in features)):
        col_values = np.r_[latest[col].to_numpy(dtype=np.float64), np.nan]
        values[col] = np.where(found, col_values[take], np.nan)
    row_ns = np.r_[latest[EVENT_TIMESTAMP].astype("datetime64[ns, UTC]").array.asi8, NAT_NS]
    ts = np.where(found, row_ns[take], NAT_NS)
    views = VIEWS if features is STORED_FEATURES else build_views(features)
    return resolve_online_state(values, {v.name: ts for v in views}, lookup_ns, views)
