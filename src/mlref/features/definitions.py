"""ONE definition of every feature; the offline path, the online path, the Feast repo and the
request-time transforms are all derived from the objects in this module.

Semantics (the contract every path implements):

* A **stored row** at ``(user_id, t)`` is the user's state AFTER all of their events with
  ``event_timestamp <= t`` (inclusive). Two events of one user in the same second therefore
  produce ONE row: the state after both. Row timestamps are whole seconds (the raw-event
  contract); the processors refuse sub-second event timestamps because Feast's online
  response only carries whole-second timestamps.
* Stored per-user aggregates (window ``(t - window, t]``):

  - ``txn_count_24h``: number of events in the last 24 h (view ``user_velocity_24h``,
    TTL 24 h, missing -> 0);
  - ``avg_amount_30d``: mean amount over the last 30 days (view ``user_spend_30d``,
    TTL 30 d, missing -> NaN);
  - ``last_txn_ts``: unix seconds (float) of the user's latest event (same view/TTL/default).

* **Scoring or training** a transaction at time ``t`` reads the state as of
  ``lookup_time(t) = t - 1 ms``: the current event never counts, and neither do other events
  of the same user in the same second (they are not "before" it at one-second resolution).
* **TTL rule** (the Feast offline point-in-time rule, applied identically online because the
  Feast online store does not enforce TTLs, feast issue 6821): the latest row with
  ``row_ts <= lookup`` is used if ``lookup - row_ts <= ttl`` (inclusive), else the default.
  Note what this means for the windowed aggregates: the value is the window aggregate *as of
  the user's latest event before the lookup*, e.g. ``txn_count_24h`` read 20 h after an event
  still counts events up to 24 h before that event. Both paths share this definition, so
  training and serving agree; it is an approximation of a true sliding window at lookup time.
* **Previous-state companions** (``prev_*``): every stored row also carries the state as of
  the user's previous stored row (its values and its timestamp ``prev_last_txn_ts``). The
  Feast online store keeps only the latest row per entity; when a second event of a user in
  the same second is scored after the first one was pushed, the latest row is *newer* than
  the lookup time and the prev_* fields give the exact state the offline path sees. Offline
  point-in-time joins do not need them; they are not part of the feature service.

* **State time** (audit): every view's schema carries ``last_txn_ts``, the time of the newest
  event its stored state includes (for a stored row at ``(user, t)`` that is ``t``: every
  window ends at the row's own event). A point-in-time join that returns it for each view
  shows which state that view's join picked, from the row itself; a correct join never
  returns a state time after the lookup time. It is read by the audit
  (:func:`mlref.features.store.point_in_time_audit`), not by the model: the feature service
  (the model's input contract) is unchanged.

Unknown users (no row at all) get the defaults above (velocity 0, means/last NaN) and the
serving path raises an ``unknown_user`` flag.

**Adding a stored feature** is one :class:`StoredFeature` appended to ``STORED_FEATURES``
(name, view, aggregation, column, window, default, dtype, description): the offline rows,
the online aggregator, the view (TTL = its longest window) and the Feast schema follow from
it. Supported kinds (``AGGREGATIONS``): ``count`` of events, ``sum``/``mean``/``max``/``min``
of ``amount`` (the value the stream carries per event, ``VALUE_COLUMNS``) over a window, and
``last`` (newest event time); anything else is refused by :func:`check_supported`.
``tests/gates/test_feature_drill.py`` proves it (``new_feature_drill``). Making it a MODEL
input is a model change on top: a line in :mod:`mlref.features.transforms` and
``MODEL_FEATURES`` (a retrain).

This module must stay cheap to import: no Feast here (``import feast`` takes ~14 s).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from mlref.data.columns import AMOUNT, EVENT_TIMESTAMP, MERCHANT_CATEGORY, USER_ID

FEATURE_SERVICE = "fraud_model_v1"
PROJECT = "mlref"
ENTITY = "user"
ENTITY_KEY = USER_ID
PUSH_SOURCE = "user_state_push"
BATCH_SOURCE = "user_state_parquet"
REQUEST_SOURCE = "txn_request"
ODFV = "fraud_model_inputs_v1"

LOOKUP_OFFSET = pd.Timedelta(milliseconds=1)

# Request fields (RequestSource of the on-demand view); request_ts is unix seconds (float) of
# the transaction's event time, so the transforms are plain arithmetic for dict and frame.
REQUEST_AMOUNT = AMOUNT
REQUEST_TS = "request_ts"
REQUEST_CATEGORY = MERCHANT_CATEGORY
REQUEST_FIELDS: tuple[str, ...] = (REQUEST_AMOUNT, REQUEST_TS, REQUEST_CATEGORY)

TXN_COUNT_24H = "txn_count_24h"
AVG_AMOUNT_30D = "avg_amount_30d"
LAST_TXN_TS = "last_txn_ts"
PREV_TXN_COUNT_24H = "prev_txn_count_24h"
PREV_AVG_AMOUNT_30D = "prev_avg_amount_30d"
PREV_LAST_TXN_TS = "prev_last_txn_ts"


# What a StoredFeature's ``aggregation`` may be: the kinds every derived path (offline
# :func:`mlref.features.offline.stored_rows`, online :class:`mlref.features.online.
# OnlineAggregator`, the Feast views) implements. ``count`` counts events (any column);
# ``sum``/``mean``/``max``/``min`` reduce a numeric column the online path receives per event
# (today only ``amount``: see VALUE_COLUMNS); ``last`` is the time of the newest event.
AGGREGATIONS: tuple[str, ...] = ("count", "sum", "mean", "max", "min", "last")
WINDOWED_AGGREGATIONS: tuple[str, ...] = ("count", "sum", "mean", "max", "min")
VALUE_COLUMNS: tuple[str, ...] = (AMOUNT,)


@dataclass(frozen=True)
class StoredFeature:
    """A per-user aggregate kept in the feature store: the ONE definition a new windowed
    feature needs. Offline rows, the online aggregator, the view (TTL = the longest window of
    its features) and the Feast schema are derived from it; see :func:`check_supported`."""

    name: str
    view: str
    aggregation: str  # one of AGGREGATIONS
    column: str  # raw column aggregated
    window: timedelta | None  # None: unbounded (``last``)
    default: float  # value when there is no row or the row is older than the view's TTL
    dtype: str  # Feast dtype name (feast.types.<dtype>)
    description: str
    includes_current_event: bool = True  # in the stored row; scoring excludes it (lookup_time)
    prev_name: str = ""  # companion holding the value as of the previous row; "" = prev_<name>

    def __post_init__(self) -> None:
        if not self.prev_name:
            object.__setattr__(self, "prev_name", f"prev_{self.name}")

    @property
    def window_seconds(self) -> int:
        if self.window is None:
            raise ValueError(f"feature {self.name!r} ({self.aggregation}) has no window")
        return int(self.window.total_seconds())

    @property
    def is_int(self) -> bool:
        return self.dtype.startswith("Int")


@dataclass(frozen=True)
class ViewSpec:
    name: str
    ttl: timedelta
    features: tuple[StoredFeature, ...]

    @property
    def served_fields(self) -> tuple[str, ...]:
        """Fields in the feature service (what training reads)."""
        return tuple(f.name for f in self.features)

    @property
    def field_names(self) -> tuple[str, ...]:
        """All stored fields of the view (served + prev_* companions)."""
        return (*self.served_fields, *(f.prev_name for f in self.features))

    @property
    def state_time_field(self) -> str:
        """The audit field of the view: unix seconds of the newest event its stored state
        includes (see *State time* in the module docstring)."""
        return LAST_TXN_TS


def check_supported(features: Sequence[StoredFeature], path: str) -> None:
    """Refuse a feature set the derived ``path`` (offline/online/feast) cannot build, naming
    the feature and what it would need, instead of computing something else."""
    names = [f.name for f in features]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"{path}: feature names {dup} are defined twice")
    if LAST_TXN_TS not in names:
        raise ValueError(f"{path}: the feature set needs {LAST_TXN_TS!r} (every row's state time)")
    for f in features:
        if f.aggregation not in AGGREGATIONS:
            raise ValueError(
                f"{path}: feature {f.name!r} has aggregation {f.aggregation!r}, which the "
                f"derivation does not support (supported: {AGGREGATIONS}); it needs hand code"
            )
        if f.aggregation in WINDOWED_AGGREGATIONS and f.window is None:
            raise ValueError(f"{path}: feature {f.name!r} ({f.aggregation}) needs a window")
        if f.aggregation == "last" and f.column != EVENT_TIMESTAMP:
            raise ValueError(
                f"{path}: feature {f.name!r}: 'last' is the newest event's time; "
                f"column must be {EVENT_TIMESTAMP!r}"
            )
        if f.aggregation not in ("count", "last") and f.column not in VALUE_COLUMNS:
            raise ValueError(
                f"{path}: feature {f.name!r} aggregates column {f.column!r}; the derived "
                f"paths carry only {VALUE_COLUMNS} per event"
            )


def build_views(features: Sequence[StoredFeature]) -> tuple[ViewSpec, ...]:
    """The views of a feature set, in order of first appearance; a view's TTL is the longest
    window of its features (a window aggregate older than its window says nothing)."""
    order = list(dict.fromkeys(f.view for f in features))
    views = []
    for name in order:
        members = tuple(f for f in features if f.view == name)
        windows = [f.window for f in members if f.window is not None]
        if not windows:
            raise ValueError(f"view {name!r} has no windowed feature to take its TTL from")
        views.append(ViewSpec(name=name, ttl=max(windows), features=members))
    return tuple(views)


def row_columns(features: Sequence[StoredFeature]) -> tuple[str, ...]:
    """The columns of one stored row of a feature set, in order."""
    return (
        USER_ID,
        EVENT_TIMESTAMP,
        *(f.name for f in features),
        *(f.prev_name for f in features),
    )


VELOCITY_VIEW = "user_velocity_24h"
SPEND_VIEW = "user_spend_30d"

STORED_FEATURES: tuple[StoredFeature, ...] = (
    StoredFeature(
        name=TXN_COUNT_24H,
        view=VELOCITY_VIEW,
        aggregation="count",
        column=EVENT_TIMESTAMP,
        window=timedelta(hours=24),
        default=0.0,
        dtype="Int64",
        prev_name=PREV_TXN_COUNT_24H,
        description="number of the user's events in (t - 24h, t]",
    ),
    StoredFeature(
        name=AVG_AMOUNT_30D,
        view=SPEND_VIEW,
        aggregation="mean",
        column=AMOUNT,
        window=timedelta(days=30),
        default=math.nan,
        dtype="Float64",
        prev_name=PREV_AVG_AMOUNT_30D,
        description="mean amount of the user's events in (t - 30d, t]",
    ),
    StoredFeature(
        name=LAST_TXN_TS,
        view=SPEND_VIEW,
        aggregation="last",
        column=EVENT_TIMESTAMP,
        window=None,
        default=math.nan,
        dtype="Float64",
        prev_name=PREV_LAST_TXN_TS,
        description="unix seconds of the user's latest event at or before t",
    ),
)
check_supported(STORED_FEATURES, "definitions")
FEATURES_BY_NAME: dict[str, StoredFeature] = {f.name: f for f in STORED_FEATURES}

VIEWS: tuple[ViewSpec, ...] = build_views(STORED_FEATURES)
VIEWS_BY_NAME: dict[str, ViewSpec] = {v.name: v for v in VIEWS}

STORED_COLUMNS: tuple[str, ...] = tuple(f.name for f in STORED_FEATURES)
PREV_COLUMNS: tuple[str, ...] = tuple(f.prev_name for f in STORED_FEATURES)
# the columns of one stored row (offline parquet, push payload), in this order
ROW_COLUMNS: tuple[str, ...] = row_columns(STORED_FEATURES)

MODEL_FEATURES: list[str] = [
    "txn_velocity_24h",
    "avg_order_30d",
    "amount_vs_user_avg",
    "seconds_since_last_txn",
    "merchant_category_code",
    "log_amount",
    "hour_of_day",
    "day_of_week",
]
MODEL_FEATURE_DESCRIPTIONS: dict[str, str] = {
    "txn_velocity_24h": "txn_count_24h as of lookup_time (0 when missing/expired)",
    "avg_order_30d": "avg_amount_30d as of lookup_time (NaN when missing/expired)",
    "amount_vs_user_avg": "amount / avg_order_30d (NaN when the average is missing or 0)",
    "seconds_since_last_txn": "request_ts - last_txn_ts (NaN when missing/expired)",
    "merchant_category_code": "index in CATEGORIES; -1 for anything else (incl. 'crypto')",
    "log_amount": "log1p(amount)",
    "hour_of_day": "UTC hour 0..23 of the transaction",
    "day_of_week": "UTC weekday, Monday=0 .. Sunday=6",
}

# Who answers for each model input and where its value comes from (feature_policy, data-4):
# ``<source or view>.<field>`` of what the input is computed from. The Feast repo puts both
# in the feature service's tags (``<input>.owner``, ``<input>.source``), so the applied
# registry carries them. (Not as Field tags of the on-demand view: Feast compares its
# declared fields, tags included, with the inferred ones, and refuses the view.)
FEATURE_OWNER = "fraud-ml"
MODEL_FEATURE_SOURCES: dict[str, str] = {
    "txn_velocity_24h": f"{VELOCITY_VIEW}.{TXN_COUNT_24H}",
    "avg_order_30d": f"{SPEND_VIEW}.{AVG_AMOUNT_30D}",
    "amount_vs_user_avg": f"{REQUEST_SOURCE}.{REQUEST_AMOUNT}, {SPEND_VIEW}.{AVG_AMOUNT_30D}",
    "seconds_since_last_txn": f"{REQUEST_SOURCE}.{REQUEST_TS}, {SPEND_VIEW}.{LAST_TXN_TS}",
    "merchant_category_code": f"{REQUEST_SOURCE}.{REQUEST_CATEGORY}",
    "log_amount": f"{REQUEST_SOURCE}.{REQUEST_AMOUNT}",
    "hour_of_day": f"{REQUEST_SOURCE}.{REQUEST_TS}",
    "day_of_week": f"{REQUEST_SOURCE}.{REQUEST_TS}",
}


def model_feature_tags() -> dict[str, str]:
    """Policy tags of the model inputs: ``<input>.owner`` and ``<input>.source`` for each
    input of ``MODEL_FEATURES`` that has a source declared above (none for one without)."""
    tags: dict[str, str] = {}
    for name in MODEL_FEATURES:
        source = MODEL_FEATURE_SOURCES.get(name)
        if source:
            tags[f"{name}.owner"] = FEATURE_OWNER
            tags[f"{name}.source"] = source
    return tags


# what online_model_features returns for a user the store has never seen
UNKNOWN_USER_STATE: dict[str, float] = {f.name: f.default for f in STORED_FEATURES}


def lookup_time(event_time: Any) -> Any:
    """The as-of time used to score/train a transaction at ``event_time``: ``t - 1 ms``.

    Works on a ``pd.Timestamp``, a datetime Series or a DatetimeIndex.
    """
    return event_time - LOOKUP_OFFSET


def to_utc(values: Any, what: str = EVENT_TIMESTAMP) -> pd.Series:
    """Timestamps as a tz-aware UTC Series; naive timestamps are refused (ambiguous)."""
    series = pd.Series(values) if not isinstance(values, pd.Series) else values
    if not isinstance(series.dtype, pd.DatetimeTZDtype):
        if pd.api.types.is_datetime64_any_dtype(series.dtype):
            raise ValueError(
                f"{what} has naive timestamps; give timezone-aware UTC timestamps "
                "(e.g. df[col].dt.tz_localize('UTC'))"
            )
        try:
            series = pd.to_datetime(series, utc=True)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{what} could not be read as timestamps: {exc}") from exc
    return series.dt.tz_convert("UTC")


def to_epoch_ns(values: Any) -> np.ndarray:
    """UTC timestamps -> int64 nanoseconds since the epoch (NaT -> int64 min)."""
    series = to_utc(values)
    return series.astype("datetime64[ns, UTC]").array.asi8.copy()


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def datetime_ns(stamp: datetime) -> int:
    """One datetime as int64 ns since the epoch, exact to the microsecond; naive = UTC (what
    a store hands back), the request schema only lets timezone-aware ones in."""
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return ((stamp - _EPOCH) // timedelta(microseconds=1)) * 1000


def seconds_to_ns(seconds: Any) -> np.ndarray:
    """Float unix seconds -> int64 ns (NaN -> int64 min), rounded to microseconds."""
    arr = np.asarray(seconds, dtype=np.float64)
    out = np.full(arr.shape, np.iinfo(np.int64).min, dtype=np.int64)
    ok = np.isfinite(arr)
    out[ok] = np.round(arr[ok] * 1e6).astype(np.int64) * 1000
    return out


NAT_NS = np.iinfo(np.int64).min


def apply_ttl(
    values: Sequence[float] | np.ndarray,
    row_ts_ns: np.ndarray,
    lookup_ns: np.ndarray,
    ttl: timedelta,
    default: float,
) -> np.ndarray:
    """Feast's point-in-time rule, for the online path and the pandas reference.

    A row stamped ``row_ts`` is valid at ``lookup`` iff ``row_ts <= lookup`` and
    ``lookup - row_ts <= ttl``; invalid or missing rows (``row_ts`` = NAT_NS) give ``default``.
    All times are int64 nanoseconds, so the boundary is exact.
    """
    vals = np.asarray(values, dtype=np.float64)
    row = np.asarray(row_ts_ns, dtype=np.int64)
    look = np.asarray(lookup_ns, dtype=np.int64)
    ttl_ns = int(ttl / timedelta(microseconds=1)) * 1000
    present = row != NAT_NS
    age = look - np.where(present, row, look)  # no overflow on missing rows
    valid = present & (row <= look) & (age <= ttl_ns) & ~np.isnan(vals)
    return np.where(valid, vals, default)
