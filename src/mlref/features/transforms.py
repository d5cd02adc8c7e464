"""Request-time transforms: stored per-user state + the request -> the model's inputs.

ONE computation, :func:`request_feature_arrays`, serves every caller: the Feast on-demand view
(training, ``get_historical_features``), the serving path (``online_feature_arrays``) and batch
scoring. :func:`request_features` wraps it for one row as a mapping or a batch as a DataFrame;
all go through the same numpy code, so a row and the same row inside a batch give
bit-identical results.

Inputs (missing state is ``None``/NaN; the TTL rule has already been applied):
``txn_count_24h``, ``avg_amount_30d``, ``last_txn_ts`` (unix s), ``amount``,
``request_ts`` (unix s of the transaction's event time), ``merchant_category``.
Outputs: :data:`mlref.features.definitions.MODEL_FEATURES`, all float64.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, overload

import numpy as np
import pandas as pd

from mlref.data.columns import CATEGORIES
from mlref.features.definitions import (
    AVG_AMOUNT_30D,
    LAST_TXN_TS,
    MODEL_FEATURES,
    REQUEST_AMOUNT,
    REQUEST_CATEGORY,
    REQUEST_TS,
    TXN_COUNT_24H,
)

TRANSFORM_INPUTS: tuple[str, ...] = (
    TXN_COUNT_24H,
    AVG_AMOUNT_30D,
    LAST_TXN_TS,
    REQUEST_AMOUNT,
    REQUEST_TS,
    REQUEST_CATEGORY,
)
_CATEGORY_CODE: dict[str, int] = {name: i for i, name in enumerate(CATEGORIES)}
_SECONDS_PER_HOUR = 3600.0
_SECONDS_PER_DAY = 86400.0
_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (Monday = 0)


def _numeric(values: Any, name: str) -> np.ndarray:
    """1-d float64 array; None/NA/NaN -> NaN. Text or other junk is an error, not a NaN."""
    arr = np.asarray(values)
    if arr.dtype.kind in "fiub":
        return arr.astype(np.float64)
    out = np.empty(arr.shape, dtype=np.float64)
    for i, value in enumerate(arr.tolist()):
        if value is None or value is pd.NA or value is pd.NaT:
            out[i] = np.nan
        elif isinstance(value, (bool, int, float, np.number)):
            out[i] = value
        else:
            raise ValueError(f"request transform input {name!r} must be numeric, got {value!r}")
    return out


def _category_codes(values: Any) -> np.ndarray:
    return np.array(
        [
            _CATEGORY_CODE.get(c, -1) if isinstance(c, str) else -1
            for c in np.asarray(values).tolist()
        ],
        dtype=np.float64,
    )


def _compute(columns: Mapping[str, Any]) -> dict[str, np.ndarray]:
    count = _numeric(columns[TXN_COUNT_24H], TXN_COUNT_24H)
    avg = _numeric(columns[AVG_AMOUNT_30D], AVG_AMOUNT_30D)
    last = _numeric(columns[LAST_TXN_TS], LAST_TXN_TS)
    amount = _numeric(columns[REQUEST_AMOUNT], REQUEST_AMOUNT)
    ts = _numeric(columns[REQUEST_TS], REQUEST_TS)
    if np.isnan(ts).any():
        raise ValueError(f"{REQUEST_TS!r} is missing; give the transaction's unix seconds")

    usable_avg = ~np.isnan(avg) & (avg != 0.0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ratio = np.where(usable_avg, amount / np.where(usable_avg, avg, 1.0), np.nan)
        log_amount = np.log1p(amount)
    day_number = np.floor_divide(ts, _SECONDS_PER_DAY)
    return {
        "txn_velocity_24h": np.where(np.isnan(count), 0.0, count),
        "avg_order_30d": avg,
        "amount_vs_user_avg": ratio,
        "seconds_since_last_txn": ts - last,
        "merchant_category_code": _category_codes(columns[REQUEST_CATEGORY]),
        "log_amount": log_amount,
        "hour_of_day": np.mod(np.floor_divide(ts, _SECONDS_PER_HOUR), 24.0),
        "day_of_week": np.mod(day_number + _EPOCH_WEEKDAY, 7.0),
    }


def _missing(available: Any) -> list[str]:
    return [name for name in TRANSFORM_INPUTS if name not in available]


def request_feature_arrays(columns: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """MODEL_FEATURES as float64 arrays from TRANSFORM_INPUTS given as equal-length arrays.

    The numpy core every path shares (the serving hot path calls it directly: no DataFrame).
    """
    missing = _missing(columns)
    if missing:
        raise ValueError(
            f"request_feature_arrays: missing inputs {missing}; need {TRANSFORM_INPUTS}"
        )
    return _compute(columns)


@overload
def request_features(inputs: Mapping[str, Any]) -> dict[str, float]: ...
@overload
def request_features(inputs: pd.DataFrame) -> pd.DataFrame: ...
def request_features(inputs: pd.DataFrame | Mapping[str, Any]) -> pd.DataFrame | dict[str, float]:
    """Model inputs from stored state + request; a dict gives a dict, a DataFrame a DataFrame.

    The DataFrame result keeps the input's index and has the MODEL_FEATURES columns in order.
    """
    if isinstance(inputs, pd.DataFrame):
        missing = _missing(inputs.columns)
        if missing:
            raise ValueError(
                f"request_features: missing columns {missing}; need {TRANSFORM_INPUTS}"
            )
        out = _compute({name: inputs[name].to_numpy() for name in TRANSFORM_INPUTS})
        return pd.DataFrame({name: out[name] for name in MODEL_FEATURES}, index=inputs.index)
    if isinstance(inputs, Mapping):
        missing = _missing(inputs)
        if missing:
            raise ValueError(f"request_features: missing keys {missing}; need {TRANSFORM_INPUTS}")
        out = _compute({name: [inputs[name]] for name in TRANSFORM_INPUTS})
        return {name: float(out[name][0]) for name in MODEL_FEATURES}
    raise TypeError(
        f"request_features takes a dict (one row) or a DataFrame (batch), not {type(inputs)!r}"
    )
