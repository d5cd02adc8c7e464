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
from pathlib import Path

import numpy as np
import pandas as pd

from mlref.data.columns import AMOUNT, EVENT_TIMESTAMP, MERCHANT_CATEGORY, TRANSACTION_ID, USER_ID
from mlref.features.definitions import (
    AVG_AMOUNT_30D,
    FEATURES_BY_NAME,
    LAST_TXN_TS,
    MODEL_FEATURES,
    PREV_AVG_AMOUNT_30D,
    PREV_LAST_TXN_TS,
    PREV_TXN_COUNT_24H,
    REQUEST_TS,
    ROW_COLUMNS,
    STORED_COLUMNS,
    STORED_FEATURES,
    TXN_COUNT_24H,
    VIEWS_BY_NAME,
    apply_ttl,
    lookup_time,
    to_epoch_ns,
    to_utc,
)
from mlref.features.transforms import request_features

logger = logging.getLogger(__name__)

_NS = 1_000_000_000


def _window_seconds(name: str) -> int:
    window = FEATURES_BY_NAME[name].window
    assert window is not None
    return int(window.total_seconds())


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


def stored_rows(events: pd.DataFrame) -> pd.DataFrame:
    """One row per (user_id, event second): the user's state after all events <= that second.

    Columns: :data:`mlref.features.definitions.ROW_COLUMNS` (user_id, event_timestamp,
    the stored features, their prev_* companions), sorted by user then time.
    """
    _check_events(events)
    if events.empty:
        return _empty_rows()
    ev = sort_events(events)
    user = ev[USER_ID].to_numpy(dtype=np.int64)
    sec = event_seconds(ev)
    amount = ev[AMOUNT].to_numpy(dtype=np.float64)
    n = len(ev)

    # Composite key, monotone over the (user, time)-sorted log: user block * span + offset.
    new_user = np.r_[True, user[1:] != user[:-1]]
    block = np.cumsum(new_user) - 1
    max_window = max(_window_seconds(TXN_COUNT_24H), _window_seconds(AVG_AMOUNT_30D))
    t0 = int(sec.min())
    span = int(sec.max()) - t0 + max_window + 1
    if int(block[-1]) + 1 > np.iinfo(np.int64).max // span:
        raise ValueError("event log too large for the int64 (user, time) key; split it by user")
    key = block * span + (sec - t0)

    # the state row of a (user, second) is emitted at its last event
    last_in_second = np.r_[(user[1:] != user[:-1]) | (sec[1:] != sec[:-1]), True]
    rows_at = np.flatnonzero(last_in_second)
    hi = rows_at + 1  # events [lo, hi) are in the window
    lo_24h = np.searchsorted(key, key[rows_at] - _window_seconds(TXN_COUNT_24H), side="right")
    lo_30d = np.searchsorted(key, key[rows_at] - _window_seconds(AVG_AMOUNT_30D), side="right")
    count_24h = (hi - lo_24h).astype(np.int64)
    n_30d = hi - lo_30d
    mean_30d = _window_sums(amount, hi, n_30d) / n_30d

    row_user = user[rows_at]
    row_sec = sec[rows_at]
    first_row_of_user = np.r_[True, row_user[1:] != row_user[:-1]]
    prev_count = np.r_[0, count_24h[:-1]]
    prev_mean = np.r_[np.nan, mean_30d[:-1]]
    prev_last = np.r_[np.nan, row_sec[:-1].astype(np.float64)]
    prev_count[first_row_of_user] = 0
    prev_mean[first_row_of_user] = np.nan
    prev_last[first_row_of_user] = np.nan

    out = pd.DataFrame(
        {
            USER_ID: row_user,
            EVENT_TIMESTAMP: pd.to_datetime(row_sec, unit="s", utc=True).astype(
                "datetime64[ns, UTC]"
            ),
            TXN_COUNT_24H: count_24h,
            AVG_AMOUNT_30D: mean_30d,
            LAST_TXN_TS: row_sec.astype(np.float64),
            PREV_TXN_COUNT_24H: prev_count,
            PREV_AVG_AMOUNT_30D: prev_mean,
            PREV_LAST_TXN_TS: prev_last,
        }
    )
    logger.debug("stored rows: %d events -> %d rows", n, len(out))
    return out[list(ROW_COLUMNS)]


def _window_sums(amount: np.ndarray, hi: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Sum of ``amount[hi-length:hi]`` per row, accumulated directly, newest first.

    Differences of a running cumulative sum would lose precision to cancellation (a small
    window after a huge amount); amounts are >= 0, so direct accumulation keeps the relative
    error below length * eps and matches the online path's exact ``math.fsum`` to ~1e-13.
    The loop runs over window depth (the longest window), each step vectorised over rows.
    """
    total = np.zeros(len(hi), dtype=np.float64)
    active = np.arange(len(hi))
    pos = hi - 1
    left = length.copy()
    while active.size:
        total[active] += amount[pos]
        left = left - 1
        keep = left > 0
        active, pos, left = active[keep], pos[keep] - 1, left[keep]
    return total


def _empty_rows() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype=np.float64) for c in ROW_COLUMNS})
    frame[USER_ID] = frame[USER_ID].astype(np.int64)
    frame[TXN_COUNT_24H] = frame[TXN_COUNT_24H].astype(np.int64)
    frame[PREV_TXN_COUNT_24H] = frame[PREV_TXN_COUNT_24H].astype(np.int64)
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
) -> pd.DataFrame:
    """Pure-pandas point-in-time join: stored features as of each entity row's timestamp.

    ``entity_df`` has ``user_id`` and ``event_timestamp`` (the as-of time: pass
    ``lookup_time(t)`` to score a transaction at ``t``). For each entity row: the latest stored
    row with ``row_ts <= as_of``; per view, kept only if ``as_of - row_ts <= ttl``, otherwise
    the feature's default. Returns STORED_COLUMNS, same index and order as ``entity_df``.
    """
    if rows is None:
        if events is None:
            raise ValueError("give the events or precomputed stored rows (rows=...)")
        rows = stored_rows(events)
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
    right = rows[[USER_ID, EVENT_TIMESTAMP, *STORED_COLUMNS]].rename(
        columns={EVENT_TIMESTAMP: "_row_ts"}
    )
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
    for feature in STORED_FEATURES:
        ttl = VIEWS_BY_NAME[feature.view].ttl
        out[feature.name] = apply_ttl(
            merged[feature.name].to_numpy(dtype=np.float64, na_value=np.nan),
            row_ns,
            as_of_ns,
            ttl,
            feature.default,
        )
    return pd.DataFrame(out, index=entity_df.index)[list(STORED_COLUMNS)]


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
