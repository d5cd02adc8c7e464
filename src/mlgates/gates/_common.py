"""Input checks and formatting shared by the gates.

Same shape, not the same logic (``duplicates`` pairs these across every gate module; this is
the one note for all of them):

- the ``GateResult(name=..., verdict=..., measured=..., threshold=..., direction=...,
  message=..., hint=..., details=..., rubric=...)`` calls, with the verdict-keyed ``lead`` /
  ``hints`` dicts or the small local ``result(verdict, message, hint)`` closures that lead
  up to them: each is one keyword call holding that gate's own figures, words and rubric
  item, and a wrapper would only rename the keywords (the same holds for the other records
  built by keyword, such as regression's two ``Comparison`` constructions);
- the gate signatures (``confidence=0.95, n_resamples=1000, seed=0, ...`` keyword defaults):
  each is that gate's public API, documented in docs/gates.md.

What the gates really share (input checks, number formatting, time columns, the confidence
check, the one-class refusal) lives here; the statistics live in ``mlgates.stats``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from mlgates.result import GateInputError

MAX_EXAMPLES = 5


def as_frame(obj: Any, what: str) -> pd.DataFrame:
    """A non-empty DataFrame (a mapping of columns is accepted too)."""
    if isinstance(obj, pd.DataFrame):
        frame = obj
    elif isinstance(obj, Mapping):
        try:
            frame = pd.DataFrame(dict(obj))
        except ValueError as exc:
            raise GateInputError(f"{what}: cannot build a frame from the mapping: {exc}") from exc
    else:
        raise GateInputError(f"{what} must be a pandas DataFrame, got {type(obj).__name__}")
    if frame.shape[0] == 0:
        raise GateInputError(f"{what} is empty (0 rows): nothing to measure")
    return frame


def as_list(cols: str | Iterable[str] | None) -> list[str]:
    if cols is None:
        return []
    if isinstance(cols, str):
        return [cols]
    return list(cols)


def require_columns(frame: pd.DataFrame, cols: Sequence[str], what: str) -> None:
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        have = ", ".join(map(str, list(frame.columns)[:20]))
        raise GateInputError(f"{what} is missing column(s) {missing}; it has: {have}")


def key_columns(
    keys: str | Iterable[str] | None, param: str, meaning: str, **frames: pd.DataFrame
) -> list[str]:
    """The key columns of a gate that matches rows of two frames: named, and in each frame
    (checked in the order given, so the first frame lacking one is the one reported)."""
    cols = as_list(keys)
    if not cols:
        raise GateInputError(f"{param} is empty: name the {meaning}")
    for what, frame in frames.items():
        require_columns(frame, cols, what)
    return cols


def as_1d(values: ArrayLike, what: str) -> NDArray[np.float64]:
    """A non-empty 1-d float array (NaN allowed; callers decide).

    ``mlgates.metrics.as_scores`` has the same first checks on purpose: metrics sits below
    the gates and must not import this package (whose ``__init__`` loads every gate)."""
    try:
        v = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise GateInputError(f"{what} must be numeric: {exc}") from exc
    if v.ndim != 1:
        raise GateInputError(f"{what} must be one-dimensional, got shape {v.shape}")
    if v.size == 0:
        raise GateInputError(f"{what} is empty: nothing to measure")
    return v


def is_categorical(series: pd.Series) -> bool:
    dtype = series.dtype
    return bool(
        pd.api.types.is_bool_dtype(dtype)
        or isinstance(dtype, pd.CategoricalDtype)
        or pd.api.types.is_object_dtype(dtype)
        or pd.api.types.is_string_dtype(dtype)
    )


def is_numeric(series: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(series.dtype)) and not is_categorical(series)


def fmt(value: float) -> str:
    """Compact number for messages."""
    if value is None or not np.isfinite(value):
        return str(value)
    if value == 0:
        return "0"
    if abs(value) >= 1000 or abs(value) < 0.001:
        return f"{value:.3g}"
    return f"{value:.4f}".rstrip("0").rstrip(".")


def pct(fraction: float) -> str:
    """Percent with one decimal; small non-zero shares keep two significant digits."""
    value = 100.0 * fraction
    if 0 < abs(value) < 1:
        return f"{value:.2g}%"
    return f"{value:.1f}%"


@dataclass(frozen=True)
class Times:
    """A time column as int64 nanoseconds (datetime) or float (numeric), for comparing."""

    values: NDArray[Any]
    kind: str  # "datetime" | "numeric"
    tz: str | None
    missing: NDArray[np.bool_] | None = None  # only with allow_missing=True

    def show(self, v: float | int) -> str:
        if self.kind == "numeric":
            return fmt(float(v))
        ts = pd.Timestamp(int(v), tz="UTC")
        return (ts.tz_convert(self.tz) if self.tz else ts.tz_localize(None)).isoformat()

    def show_span(self, v: float | int) -> str:
        if self.kind == "numeric":
            return fmt(float(v))
        return str(pd.Timedelta(int(v)))

    def span(self, delta: Any, what: str) -> float:
        """An embargo / max age in this column's units."""
        if self.kind == "numeric":
            if isinstance(delta, (pd.Timedelta, np.timedelta64, str)) or hasattr(
                delta, "total_seconds"
            ):
                raise GateInputError(
                    f"{what} is a duration but the time column is numeric; pass a number in "
                    "the column's units"
                )
            try:
                return float(delta)
            except (TypeError, ValueError) as exc:
                raise GateInputError(
                    f"{what} must be a number in the time column's units, got {delta!r}"
                ) from exc
        if _is_bare_number(delta):
            # pandas reads a bare number as nanoseconds: embargo = 86400 would be 86.4 us
            raise GateInputError(
                f"{what}={delta!r} is a bare number but the time column holds datetimes, so "
                "its unit is ambiguous (pandas would read it as nanoseconds); pass a duration "
                "such as '1D' or '24h' (or a timedelta)"
            )
        try:
            return float(pd.Timedelta(delta).value)
        except (TypeError, ValueError) as exc:
            raise GateInputError(
                f"{what} must be a duration (e.g. '1D', timedelta(hours=6)), got {delta!r}"
            ) from exc


def _is_bare_number(value: Any) -> bool:
    """An int / float (numpy too, bool included) or a string holding only a number."""
    if isinstance(value, (bool, int, float, np.integer, np.floating, np.bool_)):
        return True
    if isinstance(value, str):
        try:
            float(value.strip())
        except ValueError:
            return False
        return True
    return False


def as_times(series: pd.Series | ArrayLike, what: str, allow_missing: bool = False) -> Times:
    """Validate a time column: datetime (naive or tz-aware) or numeric.

    Missing values are an error unless ``allow_missing``; then ``Times.missing`` marks
    them (their ``values`` are meaningless).
    """
    s = series if isinstance(series, pd.Series) else pd.Series(series)
    if s.size == 0:
        raise GateInputError(f"{what} is empty")
    if pd.api.types.is_object_dtype(s.dtype) or pd.api.types.is_string_dtype(s.dtype):
        try:
            s = pd.to_datetime(s, format="ISO8601")
        except (TypeError, ValueError) as exc:
            raise GateInputError(
                f"{what} has dtype {s.dtype} and does not parse as ISO-8601 timestamps: {exc}"
            ) from exc
    isna = s.isna().to_numpy()
    n_missing = int(isna.sum())
    if n_missing and not allow_missing:
        first = s.index[isna][:MAX_EXAMPLES].tolist()
        raise GateInputError(f"{what} has {n_missing} missing timestamp(s), e.g. index {first}")
    missing = isna if allow_missing else None
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        naive = s.dt.tz_convert("UTC").dt.tz_localize(None)
        ns = naive.to_numpy("datetime64[ns]").view(np.int64)
        return Times(ns, "datetime", str(s.dtype.tz), missing)
    if pd.api.types.is_datetime64_dtype(s.dtype):
        return Times(s.to_numpy("datetime64[ns]").view(np.int64), "datetime", None, missing)
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        return Times(s.to_numpy(np.float64, na_value=np.nan), "numeric", None, missing)
    raise GateInputError(f"{what} must hold timestamps or numbers, got dtype {s.dtype}")


def same_clock(a: Times, b: Times, what: str) -> None:
    """Refuse to compare naive with tz-aware times, or datetimes with numbers."""
    if a.kind != b.kind:
        raise GateInputError(f"{what}: cannot compare {a.kind} with {b.kind} time columns")
    if (a.tz is None) != (b.tz is None):
        raise GateInputError(
            f"{what}: one time column is timezone-aware ({a.tz or b.tz}) and the other is "
            "naive; localize both (e.g. to UTC) first"
        )


def jsonable_value(v: Any) -> Any:
    """A cell value for details/examples (NaN -> None, numpy scalars -> Python)."""
    if v is None:
        return None
    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    item = getattr(v, "item", None)
    if callable(item):
        try:
            return item()
        except (TypeError, ValueError):
            return str(v)
    return v


def both_classes(y: NDArray[Any], comparing: str, advice: str = "") -> tuple[int, int]:
    """Positives and negatives of 0/1 labels, refusing labels of one class (comparing a
    metric between models needs both; ``advice`` ends the message with what to do)."""
    n_pos = int(y.sum())
    n_neg = int(y.size) - n_pos
    if n_pos == 0 or n_neg == 0:
        only = "negative" if n_pos == 0 else "positive"
        raise GateInputError(
            f"y_true has one class only (all {y.size} labels are {only}): comparing "
            f"{comparing} needs both classes{advice}"
        )
    return n_pos, n_neg


def check_confidence(confidence: float) -> None:
    """The confidence of a two-sided interval a gate decides on: from 50% up to (not) 100%."""
    if not 0.5 <= confidence < 1:
        raise GateInputError(f"confidence must be in [0.5, 1), got {confidence}")
