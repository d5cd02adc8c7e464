"""Offline path: the stored per-user rows computed over the whole event log at once.

:func:`stored_rows` is vectorised (sort + ``np.searchsorted`` on a composite (user, time) key;
no per-row Python loop) and point-in-time correct by construction: the row at ``(user, t)``
aggregates only that user's events with timestamps in ``(t - window, t]``. Its output is the
parquet file behind the Feast offline store (and, materialised, the online store).

:func:`point_in_time_features` is an independent pure-pandas reference of the Feast
point-in-time join (``merge_asof`` + the TTL rule); tests compare Feast against it and batch
scoring can use it without Feast.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mlref.data.columns import AMOUNT, EVENT_TIMESTAMP, MERCHANT_CATEGORY, TRANSACTION_ID, USER_ID
from mlref.features.definitions import (
    MODEL_FEATURES,
    REQUEST_TS,
    STORED_COLUMNS,
    STORED_FEATURES,
    StoredFeature,
    apply_ttl,
    build_views,
    check_supported,
    lookup_time,
    row_columns,
    to_epoch_ns,
    to_utc,
)
from mlref.features.transforms import request_features

logger = logging.getLogger(__name__)

_NS = 1_000_000_000


def event_seconds(events: pd.DataFrame) -> np.ndarray:
    """Whole unix seconds of the events' timestamps; refuses sub-second timestamps.

    Stored rows are keyed by whole seconds (the raw-event contract); Feast's online response
    only carries whole-second timestamps, so a sub-second row time could not round-trip.
    """
    ns = to_epoch_ns(events[EVENT_TIMESTAMP])
    if (ns == np.iinfo(np.int64).min).any():
        raise ValueError(f"{EVENT_TIMESTAMP} has missing values; validate the events first")
    frac = ns % _NS
    if frac.any():
        bad = int(np.count_nonzero(frac))
        raise ValueError(
            f"{bad} event timestamps are not whole seconds; the feature store keys rows by "
            "whole seconds: floor them (ts.dt.floor('s')) or fix the source"
        )
    return ns // _NS


def _check_events(events: pd.DataFrame) -> None:
    missing = [c for c in (USER_ID, EVENT_TIMESTAMP, AMOUNT) if c not in events.columns]
    if missing:
        raise ValueError(f"events are missing columns {missing}")
    amount = events[AMOUNT].to_numpy(dtype=np.float64)
    if not np.isfinite(amount).all() or (amount < 0).any():
        raise ValueError(
            "events have missing, infinite or negative amounts; validate them first "
            "(mlref.data.validate quarantines such rows)"
        )


def sort_events(events: pd.DataFrame) -> pd.DataFrame:
    """Events in processing order: user, event time, then transaction id (ties)."""
    keys = [USER_ID, EVENT_TIMESTAMP] + ([TRANSACTION_ID] if TRANSACTION_ID in events else [])
    return events.sort_values(keys, kind="mergesort").reset_index(drop=True)


def stored_rows(
    events: pd.DataFrame, features: Sequence[StoredFeature] = STORED_FEATURES
) -> pd.DataFrame:
    """One row per (user_id, event second): the user's state after all events <= that second.

    Columns: :func:`mlref.features.definitions.row_columns` of ``features`` (user_id,
    event_timestamp, the stored features, their prev_* companions), sorted by user then time.
    Every feature is derived from its definition (aggregation over its window); a kind the
    derivation does not know is refused (:func:`~mlref.features.definitions.check_supported`).
    """
    check_supported(features, "offline stored_rows")
    _check_events(events)
    if events.empty:
        return _empty_rows(features)
    ev = sort_events(events)
    user = ev[USER_ID].to_numpy(dtype=np.int64)
    sec = event_seconds(ev)
    n = len(ev)

    # Composite key, monotone over the (user, time)-sorted log: user block * span + offset.
    new_user = np.r_[True, user[1:] != user[:-1]]
    block = np.cumsum(new_user) - 1
    max_window = max(f.window_seconds for f in features if f.window is not None)
    t0 = int(sec.min())
    span = int(sec.max()) - t0 + max_window + 1
    if int(block[-1]) + 1 > np.iinfo(np.int64).max // span:
        raise ValueError("event log too large for the int64 (user, time) key; split it by user")
    key = block * span + (sec - t0)

    # the state row of a (user, second) is emitted at its last event
    last_in_second = np.r_[(user[1:] != user[:-1]) | (sec[1:] != sec[:-1]), True]
    rows_at = np.flatnonzero(last_in_second)
    hi = rows_at + 1  # events [lo, hi) are in the window
    row_user = user[rows_at]
    row_sec = sec[rows_at]
    first_row_of_user = np.r_[True, row_user[1:] != row_user[:-1]]

    lengths: dict[int, np.ndarray] = {}  # window seconds -> events in (t - window, t]
    values: dict[str, np.ndarray] = {}
    for feature in features:
        if feature.aggregation == "last":
            value = row_sec.astype(np.float64)
        else:
            window = feature.window_seconds
            if window not in lengths:
                lo = np.searchsorted(key, key[rows_at] - window, side="right")
                lengths[window] = hi - lo
            length = lengths[window]
            if feature.aggregation == "count":
                value = length.astype(np.int64)
            else:
                column = ev[feature.column].to_numpy(dtype=np.float64)
                value = _WINDOW_REDUCERS[feature.aggregation](column, hi, length)
        values[feature.name] = value
        default = int(feature.default) if feature.is_int else feature.default
        prev = np.r_[np.asarray([default], dtype=value.dtype), value[:-1]]
        prev[first_row_of_user] = default
        values[feature.prev_name] = prev

    out = pd.DataFrame(
        {
            USER_ID: row_user,
            EVENT_TIMESTAMP: pd.to_datetime(row_sec, unit="s", utc=True).astype(
                "datetime64[ns, UTC]"
            ),
            **values,
        }
    )
    logger.debug("stored rows: %d events -> %d rows", n, len(out))
    return out[list(row_columns(features))]


def _window_sums(amount: np.ndarray, hi: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Sum of ``amount[hi-length:hi]`` per row, accumulated directly, newest first.

    Differences of a running cumulative sum would lose precision to cancellation (a small
    window after a huge amount); amounts are >= 0, so direct accumulation keeps the relative
    error below length * eps and matches the online path's exact ``math.fsum`` to ~1e-13.
    The loop runs over window depth (the longest window), each step vectorised over rows.
    """
    return _window_reduce(amount, hi, length, np.add, 0.0)


def _window_reduce(
    values: np.ndarray, hi: np.ndarray, length: np.ndarray, op: np.ufunc, start: float
) -> np.ndarray:
    """``op``-reduction of ``values[hi-length:hi]`` per row, newest first (see _window_sums)."""
    total = np.full(len(hi), start, dtype=np.float64)
    active = np.arange(len(hi))
    pos = hi - 1
    left = length.copy()
    while active.size:
        total[active] = op(total[active], values[pos])
        left = left - 1
        keep = left > 0
        active, pos, left = active[keep], pos[keep] - 1, left[keep]
    return total


# windowed value aggregations over (values, hi, length); count and last need no values
_WINDOW_REDUCERS: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]] = {
    "sum": _window_sums,
    "mean": lambda v, hi, n: _window_sums(v, hi, n) / n,
    "max": lambda v, hi, n: _window_reduce(v, hi, n, np.maximum, -np.inf),
    "min": lambda v, hi, n: _window_reduce(v, hi, n, np.minimum, np.inf),
}


def _empty_rows(features: Sequence[StoredFeature] = STORED_FEATURES) -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype=np.float64) for c in row_columns(features)})
    frame[USER_ID] = frame[USER_ID].astype(np.int64)
    for feature in features:
        if feature.is_int:
            frame[feature.name] = frame[feature.name].astype(np.int64)
            frame[feature.prev_name] = frame[feature.prev_name].astype(np.int64)
    frame[EVENT_TIMESTAMP] = pd.Series(dtype="datetime64[ns, UTC]")
    return frame


def write_offline_parquet(rows: pd.DataFrame, path: str | Path) -> Path:
    """Write stored rows to the parquet file behind the Feast FileSource."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows.to_parquet(path, index=False)
    return path


def point_in_time_features(
    events: pd.DataFrame | None,
    entity_df: pd.DataFrame,
    *,
    rows: pd.DataFrame | None = None,
    features: Sequence[StoredFeature] = STORED_FEATURES,
) -> pd.DataFrame:
    """Pure-pandas point-in-time join: stored features as of each entity row's timestamp.

    ``entity_df`` has ``user_id`` and ``event_timestamp`` (the as-of time: pass
    ``lookup_time(t)`` to score a transaction at ``t``). For each entity row: the latest stored
    row with ``row_ts <= as_of``; per view, kept only if ``as_of - row_ts <= ttl``, otherwise
    the feature's default. Returns the stored columns of ``features`` (default
    STORED_COLUMNS), same index and order as ``entity_df``.
    """
    if rows is None:
        if events is None:
            raise ValueError("give the events or precomputed stored rows (rows=...)")
        rows = stored_rows(events, features)
    names = [f.name for f in features]
    ttls = {view.name: view.ttl for view in build_views(features)}
    for col in (USER_ID, EVENT_TIMESTAMP):
        if col not in entity_df.columns:
            raise ValueError(f"entity_df is missing column {col!r}")
    as_of = to_utc(entity_df[EVENT_TIMESTAMP]).astype("datetime64[ns, UTC]")
    left = pd.DataFrame(
        {
            USER_ID: entity_df[USER_ID].to_numpy(dtype=np.int64),
            "_as_of": as_of.reset_index(drop=True),
            "_pos": np.arange(len(entity_df)),
        }
    )
    right = rows[[USER_ID, EVENT_TIMESTAMP, *names]].rename(columns={EVENT_TIMESTAMP: "_row_ts"})
    right = right.assign(_row_ts=to_utc(right["_row_ts"]).astype("datetime64[ns, UTC]"))
    merged = pd.merge_asof(
        left.sort_values("_as_of", kind="mergesort"),
        right.sort_values("_row_ts", kind="mergesort"),
        left_on="_as_of",
        right_on="_row_ts",
        by=USER_ID,
        direction="backward",
        allow_exact_matches=True,
    ).sort_values("_pos", kind="mergesort")
    as_of_ns = merged["_as_of"].array.asi8
    row_ns = merged["_row_ts"].array.asi8  # NaT -> int64 min, the "no row" marker
    out = {}
    for feature in features:
        out[feature.name] = apply_ttl(
            merged[feature.name].to_numpy(dtype=np.float64, na_value=np.nan),
            row_ns,
            as_of_ns,
            ttls[feature.view],
            feature.default,
        )
    return pd.DataFrame(out, index=entity_df.index)[names]


def transform_inputs(transactions: pd.DataFrame, state: pd.DataFrame) -> pd.DataFrame:
    """The request_features input frame: stored state + the transactions' request fields."""
    ts = to_utc(transactions[EVENT_TIMESTAMP])
    return pd.DataFrame(
        {
            **{c: state[c].to_numpy() for c in STORED_COLUMNS},
            AMOUNT: transactions[AMOUNT].to_numpy(dtype=np.float64),
            REQUEST_TS: ts.astype("datetime64[ns, UTC]").array.asi8 / _NS,
            MERCHANT_CATEGORY: transactions[MERCHANT_CATEGORY].to_numpy(dtype=object),
        },
        index=transactions.index,
    )


def batch_model_features(
    events: pd.DataFrame | None,
    transactions: pd.DataFrame,
    *,
    rows: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """MODEL_FEATURES for ``transactions`` without Feast (reference / batch scoring).

    Each transaction at ``t`` reads the state as of ``lookup_time(t)`` from ``events``.
    """
    entity = pd.DataFrame(
        {
            USER_ID: transactions[USER_ID].to_numpy(dtype=np.int64),
            EVENT_TIMESTAMP: lookup_time(to_utc(transactions[EVENT_TIMESTAMP])).reset_index(
                drop=True
            ),
        }
    ).set_axis(transactions.index)
    state = point_in_time_features(events, entity, rows=rows)
    return request_features(transform_inputs(transactions, state))[MODEL_FEATURES]
