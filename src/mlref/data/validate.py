"""Validate raw transactions: a pandera schema, per-row quarantine, a failure-rate limit.

``validate(df)`` never drops a row silently: every input row ends up either in
``result.valid`` (coerced to ``RAW_DTYPES``) or in ``result.quarantined`` with a ``reason``
naming every check the row failed (``"<column>: <problem>"``, several joined by ``"; "``).

How it works: a tolerant parse turns each column into its canonical type and records rows
whose values cannot be read (``"abc"`` as an amount, a naive or unparseable timestamp);
then ``RAW_SCHEMA`` runs lazily (all failures at once) and its ``failure_cases`` are mapped
to rows. The valid part is checked once more against ``RAW_SCHEMA`` before it is returned.
Frame-level problems (missing or unexpected columns, not a DataFrame) raise
``RawFrameError``: there is no row to blame.

``check_freshness`` is the pipeline's wrapper around ``mlgates.freshness`` (the same gate CI
runs), not a second implementation of it.
"""

from __future__ import annotations

import datetime as dt
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from mlgates.gates import freshness
from mlref.data.columns import (
    AMOUNT,
    EVENT_TIMESTAMP,
    KNOWN_CATEGORIES,
    LABEL,
    LABEL_TIMESTAMP,
    MERCHANT_CATEGORY,
    MERCHANT_ID,
    PII_COLUMNS,
    RAW_COLUMNS,
    TRANSACTION_ID,
    USER_ID,
)
from mlref.data.generate import MAX_AMOUNT as _GENERATOR_MAX_AMOUNT
from mlref.data.generate import RAW_DTYPES, write_parquet

if TYPE_CHECKING:
    import os
    from collections.abc import Callable

    from mlgates.result import GateResult

__all__ = [
    "MAX_AMOUNT",
    "NOT_WHOLE_SECONDS",
    "RAW_SCHEMA",
    "REASON_COLUMN",
    "DataQualityError",
    "FreshnessResult",
    "RawFrameError",
    "ValidationResult",
    "check_freshness",
    "reason",
    "validate",
    "write_quarantine",
]

logger = logging.getLogger(__name__)

MAX_AMOUNT = int(_GENERATOR_MAX_AMOUNT)  # amounts must lie in [0, MAX_AMOUNT]
REASON_COLUMN = "reason"
ROW_COLUMN = "row"  # position of the quarantined row in the input frame
REASON_SEPARATOR = "; "

# Problems (the part after "<column>: " in a reason)
MISSING = "missing"
DUPLICATE = "duplicate"
EMPTY = "empty"
NOT_A_STRING = "not a string"
NOT_AN_INTEGER = "not an integer"
NOT_A_NUMBER = "not a number"
NEGATIVE = "negative"
ABOVE_MAX = f"above {MAX_AMOUNT}"
UNKNOWN_CATEGORY = "unknown category"
NOT_BINARY = "not 0/1"
NAIVE_TIMESTAMP = "naive timestamp (no time zone)"
INVALID_TIMESTAMP = "invalid timestamp"
BEFORE_EVENT = f"before {EVENT_TIMESTAMP}"
# the feature store keys its rows by whole seconds (mlref.features.offline.event_seconds)
NOT_WHOLE_SECONDS = "not a whole second (the feature store keys rows by whole seconds)"
WRONG_TYPE = "wrong type"


def reason(column: str, problem: str) -> str:
    """The reason string for one failed check, e.g. ``reason("amount", NEGATIVE)``."""
    return f"{column}: {problem}"


class DataQualityError(ValueError):
    """Raw data failed validation badly enough that the pipeline must stop."""

    def __init__(self, message: str, result: ValidationResult | None = None) -> None:
        super().__init__(message)
        self.result = result


class RawFrameError(DataQualityError):
    """The frame as a whole is unusable (wrong columns, not a DataFrame)."""


def _whole_seconds(stamps: pd.Series) -> pd.Series:
    """True where the timestamp has no sub-second part (missing values are checked apart)."""
    return stamps.isna() | (stamps == stamps.dt.floor("s"))


def _label_after_event(frame: pd.DataFrame) -> pd.Series:
    event, label = frame[EVENT_TIMESTAMP], frame[LABEL_TIMESTAMP]
    return event.isna() | label.isna() | (label >= event)


_UTC_NS = pd.DatetimeTZDtype("ns", "UTC")

RAW_SCHEMA = pa.DataFrameSchema(
    {
        TRANSACTION_ID: pa.Column(
            str,
            pa.Check.str_length(min_value=1, error=EMPTY),
            unique=True,
            report_duplicates="exclude_first",  # the first occurrence stays valid
            description="unique, sortable id: 't' + zero-padded number",
        ),
        USER_ID: pa.Column("int64", description="Feast entity key"),
        MERCHANT_ID: pa.Column("int64"),
        MERCHANT_CATEGORY: pa.Column(
            str, pa.Check.isin(list(KNOWN_CATEGORIES), error=UNKNOWN_CATEGORY)
        ),
        AMOUNT: pa.Column(
            "float64",
            [pa.Check.ge(0, error=NEGATIVE), pa.Check.le(MAX_AMOUNT, error=ABOVE_MAX)],
        ),
        EVENT_TIMESTAMP: pa.Column(
            _UTC_NS,
            pa.Check(_whole_seconds, error=NOT_WHOLE_SECONDS),
            description="time-zone aware, UTC, whole seconds",
        ),
        LABEL: pa.Column("int8", pa.Check.isin([0, 1], error=NOT_BINARY)),
        LABEL_TIMESTAMP: pa.Column(_UTC_NS, description="when the label became known"),
        # personal data of a raw event (generate_transactions(pii=True)); optional, and
        # dropped by mlref.data.privacy before validate() ever sees a frame
        **{c: pa.Column(str, required=False, description="personal data") for c in PII_COLUMNS},
    },
    checks=[pa.Check(_label_after_event, error=BEFORE_EVENT)],
    strict=True,
    ordered=True,
    name="raw_transactions",
    description="Raw card transactions as produced by mlref.data.generate",
)

# wide checks report every column of a failing row; the reason belongs to this one
_FRAME_CHECK_COLUMN = {BEFORE_EVENT: LABEL_TIMESTAMP}


# --------------------------------------------------------------------------- parsing
# Each parser returns (typed values, mask of rows whose value could not be read, problem).


def _parse_string(values: pd.Series) -> tuple[pd.Series, np.ndarray, str]:
    if isinstance(values.dtype, (pd.StringDtype, pd.CategoricalDtype)):
        values = values.astype(object)
    present = values.notna().to_numpy()
    is_str = np.fromiter((isinstance(v, str) for v in values), bool, len(values))
    bad = present & ~is_str
    out = values.astype(object).where(~bad, None)
    return out, bad, NOT_A_STRING


def _to_float(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Float values and a mask of present values that are not numbers."""
    if pd.api.types.is_bool_dtype(values.dtype):
        return np.full(len(values), np.nan), values.notna().to_numpy()
    if pd.api.types.is_numeric_dtype(values.dtype):
        return values.astype("float64").to_numpy(), np.zeros(len(values), bool)
    present = values.notna().to_numpy()
    # bools are numbers to pandas but never a valid amount or id here
    is_bool = np.fromiter((isinstance(v, (bool, np.bool_)) for v in values), bool, len(values))
    parsed = pd.to_numeric(values.where(~is_bool, None), errors="coerce")
    floats = np.asarray(parsed, dtype="float64")
    return floats, present & (np.isnan(floats) | is_bool)


def _parse_float(values: pd.Series) -> tuple[pd.Series, np.ndarray, str]:
    floats, bad = _to_float(values)
    floats = np.where(bad, np.nan, floats)
    return pd.Series(floats, index=values.index, dtype="float64"), bad, NOT_A_NUMBER


def _parse_integer(values: pd.Series) -> tuple[pd.Series, np.ndarray, str]:
    if pd.api.types.is_integer_dtype(values.dtype) and not isinstance(
        values.dtype, pd.api.extensions.ExtensionDtype
    ):
        return values.astype("int64"), np.zeros(len(values), bool), NOT_AN_INTEGER
    floats, bad = _to_float(values)
    with np.errstate(invalid="ignore"):
        bad |= ~np.isnan(floats) & (~np.isfinite(floats) | (floats != np.floor(floats)))
        bad |= np.abs(np.nan_to_num(floats)) > 2**53  # beyond exact float integers
    floats = np.where(bad, np.nan, floats)
    if np.isnan(floats).any():
        out = pd.Series(floats, index=values.index, dtype="float64")
    else:
        out = pd.Series(floats.astype(np.int64), index=values.index)
    return out, bad, NOT_AN_INTEGER


def _parse_label(values: pd.Series) -> tuple[pd.Series, np.ndarray, str]:
    """Like an integer, but True/False are accepted as 1/0 (a label is a yes/no)."""
    if pd.api.types.is_bool_dtype(values.dtype) and not values.isna().any():
        return _parse_integer(values.astype("int64"))
    if values.dtype == object:
        is_bool = np.fromiter((isinstance(v, (bool, np.bool_)) for v in values), bool, len(values))
        if is_bool.any():
            values = values.where(~is_bool, values[is_bool].astype("int64"))
    return _parse_integer(values)


_ZONE_SUFFIX = r"\d(?:Z|[+-]\d{2}:?\d{2})$"  # "...00Z", "...00+01:00", "...00-0500"


def _parse_timestamp(values: pd.Series) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """UTC timestamps plus masks (naive, invalid); vectorised per kind of value.

    Accepted: aware datetimes/Timestamps and ISO-8601 strings with a zone (``Z``/``+01:00``).
    Naive ones (no zone) are not guessed: they are reported, as are unparseable values.
    """
    n = len(values)
    no_rows = np.zeros(n, bool)
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC").astype(_UTC_NS), no_rows, no_rows
    if pd.api.types.is_datetime64_dtype(values.dtype):  # naive column: every row is naive
        empty = pd.Series(pd.NaT, index=values.index, dtype=_UTC_NS)
        return empty, values.notna().to_numpy(), no_rows
    obj = values.astype(object).to_numpy()
    present = pd.notna(obj)
    is_datetime = np.fromiter((isinstance(v, dt.datetime) for v in obj), bool, n)
    is_str = np.fromiter((isinstance(v, str) for v in obj), bool, n)
    out = np.full(n, np.datetime64("NaT", "ns"), dtype="datetime64[ns]")
    naive = np.zeros(n, bool)
    invalid = present & ~is_datetime & ~is_str  # numbers, dates, np.datetime64 (naive) ...
    naive |= invalid & np.fromiter((isinstance(v, np.datetime64) for v in obj), bool, n)
    invalid &= ~naive

    dt_rows = np.flatnonzero(is_datetime & present)
    if dt_rows.size:
        no_zone = np.fromiter((obj[i].tzinfo is None for i in dt_rows), bool, dt_rows.size)
        naive[dt_rows[no_zone]] = True
        aware = dt_rows[~no_zone]
        if aware.size:
            converted = pd.to_datetime(pd.Series(obj[aware]), utc=True, errors="coerce")
            out[aware] = converted.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")
            invalid[aware[converted.isna().to_numpy()]] = True
    str_rows = np.flatnonzero(is_str)
    if str_rows.size:
        text = pd.Series(obj[str_rows], dtype=object).str.strip()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pandas warns about mixed formats; we decide below
            converted = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
        unreadable = converted.isna().to_numpy()
        no_zone = ~text.str.contains(_ZONE_SUFFIX, regex=True).to_numpy()
        invalid[str_rows[unreadable]] = True
        naive[str_rows[~unreadable & no_zone]] = True
        ok = ~unreadable & ~no_zone
        out[str_rows[ok]] = converted[ok].dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")
    stamps = pd.Series(pd.DatetimeIndex(out).tz_localize("UTC"), index=values.index)
    return stamps, naive, invalid


Unreadable = tuple[np.ndarray, str, str]  # (row mask, column, problem)


def _parse(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[Unreadable]]:
    """Typed columns for the schema, plus the rows whose values cannot be read, per column."""
    typed: dict[str, pd.Series] = {}
    unreadable: list[Unreadable] = []
    parsers: dict[str, Callable[[pd.Series], tuple[pd.Series, np.ndarray, str]]] = {
        TRANSACTION_ID: _parse_string,
        USER_ID: _parse_integer,
        MERCHANT_ID: _parse_integer,
        MERCHANT_CATEGORY: _parse_string,
        AMOUNT: _parse_float,
        LABEL: _parse_label,
    }
    for column in RAW_COLUMNS:
        if column in (EVENT_TIMESTAMP, LABEL_TIMESTAMP):
            typed[column], naive, invalid = _parse_timestamp(frame[column])
            unreadable.append((naive, column, NAIVE_TIMESTAMP))
            unreadable.append((invalid, column, INVALID_TIMESTAMP))
        else:
            typed[column], bad, problem = parsers[column](frame[column])
            unreadable.append((bad, column, problem))
    label = typed[LABEL]
    if label.dtype == "int64" and label.isin([0, 1]).all():
        typed[LABEL] = label.astype("int8")
    return pd.DataFrame(typed, index=frame.index), [u for u in unreadable if u[0].any()]


# --------------------------------------------------------------------------- checking


def _check_frame(df: object) -> pd.DataFrame:
    if not isinstance(df, pd.DataFrame):
        raise RawFrameError(f"expected a pandas DataFrame of raw transactions, got {type(df)}")
    columns = [str(c) for c in df.columns]
    missing = [c for c in RAW_COLUMNS if c not in columns]
    extra = [c for c in columns if c not in RAW_COLUMNS]
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    if missing or extra or duplicated:
        parts = []
        if missing:
            parts.append(f"missing columns {missing}")
        if extra:
            parts.append(f"unexpected columns {extra}")
        if duplicated:
            parts.append(f"duplicated columns {duplicated}")
        raise RawFrameError(
            "raw transactions have the wrong column set: "
            + "; ".join(parts)
            + f". Expected exactly {list(RAW_COLUMNS)} (see mlref.data.columns)."
        )
    return df.loc[:, list(RAW_COLUMNS)].reset_index(drop=True)


def _schema_failures(typed: pd.DataFrame) -> pd.DataFrame:
    """RAW_SCHEMA's failure cases (lazy: all at once); empty when the frame passes."""
    with warnings.catch_warnings():
        # pandera concatenates empty failure-case frames (pandas FutureWarning), harmless
        warnings.filterwarnings(
            "ignore", message="The behavior of DataFrame concatenation", category=FutureWarning
        )
        try:
            RAW_SCHEMA.validate(typed, lazy=True)
        except SchemaErrors as exc:
            return exc.failure_cases
    return pd.DataFrame(columns=["column", "check", "index", "failure_case"])


def _problem(check: str) -> str:
    if check == "not_nullable":
        return MISSING
    if check == "field_uniqueness":
        return DUPLICATE
    if check.startswith("dtype("):
        return WRONG_TYPE
    return check  # our checks carry their problem as the error text


def _row_reasons(typed: pd.DataFrame, unreadable: list[Unreadable]) -> pd.Series:
    """One string per failing row position: every reason, in column order, joined."""
    found = [
        pd.DataFrame({"row": np.flatnonzero(mask), "column": column, "problem": problem})
        for mask, column, problem in unreadable
    ]
    n_unreadable = sum(len(f) for f in found)
    failures = _schema_failures(typed)
    if len(failures):
        failures = failures.assign(check=failures["check"].astype(str))
        frame_checks = failures["check"].isin(list(_FRAME_CHECK_COLUMN))
        failures.loc[frame_checks, "column"] = failures.loc[frame_checks, "check"].map(
            _FRAME_CHECK_COLUMN
        )
        column_level = failures["index"].isna()
        # a column holding unreadable or missing values cannot have its final dtype yet;
        # its rows are reported one by one, and the valid part is cast and re-checked later
        explained = {column for _, column, _ in unreadable}
        explained |= set(failures.loc[~column_level, "column"])
        tolerated = failures["check"].str.startswith("dtype(") & failures["column"].isin(explained)
        unexplained = failures[column_level & ~tolerated]
        if len(unexplained):
            raise RawFrameError(
                "raw transactions failed frame-level checks that no single row explains:\n"
                + unexplained[["column", "check", "failure_case"]].to_string(index=False)
                + "\nCheck the column types against mlref.data.columns."
            )
        rows = failures[~column_level]
        found.append(
            pd.DataFrame(
                {
                    "row": rows["index"].astype("int64").to_numpy(),
                    "column": rows["column"].astype(str).to_numpy(),
                    "problem": rows["check"].map(_problem).to_numpy(),
                }
            )
        )
    if not found:
        return pd.Series([], dtype=object, name=REASON_COLUMN)
    table = pd.concat(found, ignore_index=True)
    from_parse = np.arange(len(table)) < n_unreadable
    key = pd.MultiIndex.from_frame(table[["row", "column"]])
    # a value that could not be read is reported once, not again as missing or mistyped
    echo = ~from_parse & key.isin(key[from_parse])
    # pandera also calls a missing value a wrong dtype; "missing" says it better
    is_missing = table["problem"].to_numpy() == MISSING
    redundant = (table["problem"].to_numpy() == WRONG_TYPE) & key.isin(key[is_missing])
    table = table[~echo & ~redundant].drop_duplicates()
    table = table.assign(
        reason=table["column"] + ": " + table["problem"],
        order=table["column"].map({c: i for i, c in enumerate(RAW_COLUMNS)}),
    ).sort_values(["row", "order", "reason"])
    joined = table.groupby("row", sort=True)["reason"].agg(REASON_SEPARATOR.join)
    joined.name = REASON_COLUMN
    return joined


def _text_or_none(value: object) -> str | None:
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return None
    return str(value)


def _as_storable(frame: pd.DataFrame) -> pd.DataFrame:
    """Original values, with mixed object columns turned into strings so parquet stores them."""
    out = {}
    for column in frame.columns:
        values = frame[column]
        if values.dtype == object:
            values = values.map(_text_or_none)
        out[column] = values
    return pd.DataFrame(out, index=frame.index)


@dataclass(frozen=True)
class ValidationResult:
    """Valid rows (``RAW_DTYPES``), quarantined rows (original values + ``reason``), counts.

    ``counts_by_reason`` counts rows per individual reason: a row with two reasons counts
    once under each. Both frames keep the input's index labels.
    """

    valid: pd.DataFrame
    quarantined: pd.DataFrame
    counts_by_reason: dict[str, int]
    n_input: int
    quarantine_path: Path | None = field(default=None)

    @property
    def n_valid(self) -> int:
        return len(self.valid)

    @property
    def n_quarantined(self) -> int:
        return len(self.quarantined)

    @property
    def quarantine_rate(self) -> float:
        return self.n_quarantined / self.n_input if self.n_input else 0.0

    def summary(self) -> str:
        head = (
            f"{self.n_input} rows: {self.n_valid} valid, {self.n_quarantined} quarantined "
            f"({self.quarantine_rate:.2%})"
        )
        if not self.counts_by_reason:
            return head
        counts = ", ".join(f"{r} = {n}" for r, n in self.counts_by_reason.items())
        where = f"; quarantine file {self.quarantine_path}" if self.quarantine_path else ""
        return f"{head}; by reason: {counts}{where}"


def write_quarantine(result: ValidationResult, path: str | os.PathLike[str]) -> Path:
    """Write the quarantined rows (with ``row`` and ``reason``) to parquet; returns the path."""
    return write_parquet(result.quarantined, path)


def validate(
    df: pd.DataFrame,
    max_quarantine_rate: float = 0.05,
    *,
    quarantine_path: str | os.PathLike[str] | None = None,
) -> ValidationResult:
    """Split ``df`` into valid and quarantined rows; stop when too many rows fail.

    All checks run at once (pandera ``lazy=True``); a row that fails several checks gets
    every reason. ``len(valid) + len(quarantined) == len(df)`` always holds. With
    ``quarantine_path`` the quarantined rows are written there (also when empty, and
    before the rate limit is applied, so the file is there to inspect). Raises
    ``RawFrameError`` for frame-level problems and ``DataQualityError`` when the share of
    quarantined rows exceeds ``max_quarantine_rate``.
    """
    if not 0.0 <= max_quarantine_rate <= 1.0:
        raise ValueError(f"max_quarantine_rate must be in [0, 1] (got {max_quarantine_rate})")
    frame = _check_frame(df)
    labels = df.index
    typed, unreadable = _parse(frame)
    reasons = _row_reasons(typed, unreadable)

    bad = np.zeros(len(frame), bool)
    bad[reasons.index.to_numpy(dtype=np.int64)] = True
    already_checked = not bad.any() and all(str(typed[c].dtype) == d for c, d in RAW_DTYPES.items())
    valid = typed[~bad].astype(RAW_DTYPES)
    valid.index = labels[~bad]
    if not already_checked:  # the contract: the valid part passes the schema as it is
        RAW_SCHEMA.validate(valid)

    quarantined = _as_storable(df.loc[:, list(RAW_COLUMNS)][bad])
    quarantined.insert(0, ROW_COLUMN, np.flatnonzero(bad).astype(np.int64))
    quarantined[REASON_COLUMN] = reasons.to_numpy(dtype=object)
    counts = (
        reasons.str.split(REASON_SEPARATOR).explode().value_counts().sort_index()
        if len(reasons)
        else pd.Series(dtype="int64")
    )
    counts_by_reason = {str(k): int(v) for k, v in counts.items()}

    path = None
    result = ValidationResult(valid, quarantined, counts_by_reason, len(frame))
    if quarantine_path is not None:
        path = write_quarantine(result, quarantine_path)
        result = ValidationResult(valid, quarantined, counts_by_reason, len(frame), path)
    logger.info("validation: %s", result.summary())
    if result.quarantine_rate > max_quarantine_rate:
        where = (
            f" Quarantined rows are in {path}."
            if path
            else " Pass quarantine_path= to write them to a file."
        )
        counts_text = "\n".join(f"  {n:>8}  {r}" for r, n in counts_by_reason.items())
        raise DataQualityError(
            f"{result.n_quarantined} of {result.n_input} raw rows "
            f"({result.quarantine_rate:.2%}) failed validation, above the limit "
            f"max_quarantine_rate={max_quarantine_rate:.2%}. Rows by reason:\n{counts_text}\n"
            f"{where.strip()} Fix the source data (or raise the limit if this is expected).",
            result,
        )
    return result


# --------------------------------------------------------------------------- freshness


@dataclass(frozen=True)
class FreshnessResult:
    """Whether the newest event is recent enough at ``as_of``; ``gate`` is the
    ``mlgates.freshness`` result it was judged by (None when there was nothing to judge)."""

    passed: bool
    as_of: pd.Timestamp
    newest: pd.Timestamp | None
    age: pd.Timedelta | None
    max_age: pd.Timedelta
    message: str
    gate: GateResult | None = None


def _utc(value: object, what: str) -> pd.Timestamp:
    # TrainConfig has a same-shape _utc (mlref.train.config) whose messages name the config
    # field; this one names the caller's argument. The shared part is four pandas calls.
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{what}={value!r} is not a date/time") from exc
    if ts is pd.NaT:
        raise ValueError(f"{what} is missing (NaT)")
    if ts.tzinfo is None:
        raise ValueError(f"{what}={value!r} has no time zone; pass an aware time, e.g. UTC")
    return ts.tz_convert("UTC")


def check_freshness(
    df: pd.DataFrame,
    as_of: object,
    max_age: dt.timedelta | pd.Timedelta | str,
    *,
    column: str = EVENT_TIMESTAMP,
) -> FreshnessResult:
    """The newest ``column`` value at or before ``as_of`` must be no older than ``max_age``.

    The verdict is ``mlgates.freshness``, the gate CI runs (one implementation); this adds
    what a pipeline step needs around it: the frame's column and time zone are checked, and
    only a ``pass`` passes. Fails (``passed=False``) with a message when there are no events,
    when the newest is too old, or when events lie after ``as_of`` (a wrong ``as_of`` or a
    clock problem: the gate warns, a pipeline must not build on such data).
    """
    as_of_ts = _utc(as_of, "as_of")
    limit = pd.Timedelta(max_age)
    if limit <= pd.Timedelta(0):
        raise ValueError(f"max_age must be > 0 (got {max_age})")
    if column not in df.columns:
        raise RawFrameError(f"freshness: column {column!r} not in frame {list(df.columns)}")
    stamps = df[column]
    if not isinstance(stamps.dtype, pd.DatetimeTZDtype):
        raise RawFrameError(
            f"freshness: {column!r} must be time-zone aware datetimes (got {stamps.dtype}); "
            "validate the frame first"
        )
    if not stamps.notna().any():
        message = f"freshness FAILED: no {column} values to check at {as_of_ts.isoformat()}"
        return FreshnessResult(False, as_of_ts, None, None, limit, message)
    gate = freshness(stamps, as_of_ts, limit)
    newest = pd.Timestamp(gate.details["newest"]) if gate.details["newest"] else None
    age = as_of_ts - newest if newest is not None else None
    passed = gate.verdict == "pass"
    message = f"freshness {'ok' if passed else 'FAILED'} ({column}): {gate.message}"
    return FreshnessResult(passed, as_of_ts, newest, age, limit, message, gate)
