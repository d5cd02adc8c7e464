"""Data gates: schema validation (pandera, imported only here) and freshness."""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from mlgates.gates._common import (
    MAX_EXAMPLES,
    as_frame,
    as_times,
    jsonable_value,
    pct,
    same_clock,
)
from mlgates.result import GateInputError, GateResult

FRAME = "<frame>"
#: checks listed in the message without examples after the first MAX_EXAMPLES
MAX_LISTED = 20


def schema_gate(frame: pd.DataFrame, schema: Any) -> GateResult:
    """Validate ``frame`` against a pandera schema, collecting every error (lazy).

    Fails with counts per (column, check) and example rows. Measured is the number of
    distinct rows with at least one failure (schema-level failures, e.g. a missing
    column, count the whole frame).

    Frame-wide checks (``DataFrameSchema(checks=[...])``) are reported once per check
    (column ``"<frame>"``, their rows counted once), not once per column as pandera lists
    them. A column that fails its dtype because some values cannot be read (``"abc"`` in a
    float column, an unparseable or naive timestamp in a tz-aware column) is coerced value
    by value (``pd.to_numeric`` / ``pd.Timestamp``): the unreadable values are reported as
    their own check (``"not a number (expected float64)"``, ...; ``coercion: True`` in
    details) and the column's row checks and the frame-wide checks are re-run on the
    readable values, so a negative amount is still counted when another row holds "abc".
    """
    df = as_frame(frame, "frame")
    try:
        from pandera.errors import SchemaErrors
    except ImportError as exc:  # pragma: no cover - pandera is an optional dependency
        raise GateInputError(
            "schema_gate needs pandera: pip install pandera (or mlgates[ref])"
        ) from exc
    validate = getattr(schema, "validate", None)
    if not callable(validate):
        raise GateInputError(
            f"schema must be a pandera schema with .validate(), got {type(schema).__name__}"
        )
    name = getattr(schema, "name", None) or type(schema).__name__
    try:
        validate(df, lazy=True)
    except SchemaErrors as err:
        fc = _normalize_cases(err.failure_cases)
    else:
        return GateResult(
            name="schema_gate",
            verdict="pass",
            measured=0.0,
            threshold=0.0,
            direction="max",
            unit=" rows",
            message=f"all {df.shape[0]} rows satisfy schema {name}",
            details={"rows": int(df.shape[0]), "schema": str(name), "checks": []},
            rubric=("data-1", "monitor-2"),
        )
    fc = _recheck_coerced(df, schema, fc, SchemaErrors)
    checks = _group_cases(df, fc)
    row_index = fc["index"].dropna()
    frame_level = bool(fc["index"].isna().any())
    n_rows = int(df.shape[0]) if frame_level else int(row_index.nunique())
    listed = "; ".join(_describe(c, with_examples=True) for c in checks[:MAX_EXAMPLES])
    rest = checks[MAX_EXAMPLES : MAX_EXAMPLES + MAX_LISTED]
    if rest:
        listed += "; also " + "; ".join(_describe(c, with_examples=False) for c in rest)
    hidden = len(checks) - MAX_EXAMPLES - len(rest)
    more = f"; and {hidden} more check(s)" if hidden > 0 else ""
    n_failures = sum(c["failures"] for c in checks)
    return GateResult(
        name="schema_gate",
        verdict="fail",
        measured=float(n_rows),
        threshold=0.0,
        direction="max",
        unit=" rows",
        message=(
            f"schema {name}: {n_failures} failure(s) in {len(checks)} check(s), "
            f"{n_rows} of {df.shape[0]} row(s) affected"
            + (
                " (frame-level failure without a row, e.g. a missing column or a wrong "
                "column dtype: every row counts)"
                if frame_level
                else ""
            )
            + f": {listed}{more}"
        ),
        hint=(
            "fix the producer of the named columns, or quarantine the failing rows with their "
            "reasons; change the schema only if the expectation itself was wrong"
        ),
        details={
            "rows": int(df.shape[0]),
            "schema": str(name),
            "rows_failing": n_rows,
            "failures": n_failures,
            "checks": checks,
        },
        rubric=("data-1", "monitor-2"),
    )


def _normalize_cases(fc: pd.DataFrame) -> pd.DataFrame:
    """pandera failure cases with the columns this module reads (and a coercion flag)."""
    out = fc.copy()
    for col in ("schema_context", "column", "check", "check_number", "failure_case", "index"):
        if col not in out.columns:
            out[col] = None
    out["check"] = out["check"].astype(str)
    out["schema_context"] = out["schema_context"].astype(object)
    out["coercion"] = False
    return out.reset_index(drop=True)


def _is_frame_check(fc: pd.DataFrame) -> pd.Series:
    """Failure cases of a frame-wide Check (not a structural one like a missing column)."""
    return (fc["schema_context"] == "DataFrameSchema") & fc["check_number"].notna()


def _is_dtype_case(fc: pd.DataFrame) -> pd.Series:
    return (fc["schema_context"] == "Column") & fc["check"].str.startswith("dtype(")


def _target_dtype(column_schema: Any) -> Any:
    dtype = getattr(getattr(column_schema, "dtype", None), "type", None)
    if dtype is None:
        return None
    try:
        return pd.api.types.pandas_dtype(dtype)
    except TypeError:
        return None


def _coerce(values: pd.Series, dtype: Any) -> tuple[pd.Series, dict[str, np.ndarray]] | None:
    """Values coerced to ``dtype`` (unreadable ones missing) and masks of the unreadable ones.

    None when this dtype is not coerced here (strings, booleans, categories, ...).
    """
    if isinstance(dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(dtype):
        return _coerce_datetime(values, dtype)
    if pd.api.types.is_bool_dtype(dtype) or not (
        pd.api.types.is_integer_dtype(dtype) or pd.api.types.is_float_dtype(dtype)
    ):
        return None
    present = values.notna().to_numpy()
    raw = values.to_numpy(dtype=object)
    is_bool = np.fromiter((isinstance(v, (bool, np.bool_)) for v in raw), bool, raw.size)
    numbers = pd.to_numeric(pd.Series(np.where(is_bool, None, raw), dtype=object), errors="coerce")
    floats = np.asarray(numbers, dtype=np.float64)
    unreadable = present & (np.isnan(floats) | is_bool)
    problems = {f"not a number (expected {dtype})": unreadable}
    bad = unreadable.copy()
    if pd.api.types.is_integer_dtype(dtype):
        with np.errstate(invalid="ignore"):
            not_int = present & ~unreadable & (~np.isfinite(floats) | (floats != np.floor(floats)))
        problems[f"not an integer (expected {dtype})"] = not_int
        bad |= not_int
    floats = np.where(bad, np.nan, floats)
    out = pd.Series(floats, index=values.index, dtype=np.float64)
    if not np.isnan(floats).any():
        out = out.astype(dtype)
    return out, problems


def _coerce_datetime(values: pd.Series, dtype: Any) -> tuple[pd.Series, dict[str, np.ndarray]]:
    tz = getattr(dtype, "tz", None)
    raw = values.to_numpy(dtype=object)
    unreadable = np.zeros(raw.size, bool)
    zone = np.zeros(raw.size, bool)  # naive for a tz-aware column, or the other way round
    parsed: list[Any] = []
    for k, v in enumerate(raw):
        if pd.api.types.is_scalar(v) and pd.isna(v):
            parsed.append(pd.NaT)
            continue
        try:
            ts = pd.Timestamp(v)
        except (TypeError, ValueError, OverflowError):
            unreadable[k] = True
            parsed.append(pd.NaT)
            continue
        if ts is pd.NaT:
            parsed.append(pd.NaT)
        elif (tz is None) != (ts.tzinfo is None):
            zone[k] = True
            parsed.append(pd.NaT)
        else:
            parsed.append(ts.tz_convert("UTC").tz_localize(None) if tz is not None else ts)
    naive = pd.to_datetime(pd.Series(parsed, index=values.index, dtype=object))
    out = naive.dt.tz_localize("UTC").dt.tz_convert(tz) if tz is not None else naive
    with contextlib.suppress(TypeError, ValueError):  # keep the parsed unit if it differs
        out = out.astype(dtype)
    zone_problem = (
        f"naive timestamp (expected {dtype})"
        if tz is not None
        else f"timestamp with a time zone (expected naive {dtype})"
    )
    return out, {f"not a timestamp (expected {dtype})": unreadable, zone_problem: zone}


def _recheck_coerced(
    df: pd.DataFrame, schema: Any, fc: pd.DataFrame, errors: type[Exception]
) -> pd.DataFrame:
    """Replace dtype failures by per-value coercion failures; re-run the row checks.

    pandera skips a column's row checks once its dtype fails (and a frame-wide check over
    it errors), so those checks are re-run on a copy of the frame with the failed columns
    coerced; the unreadable values are reported once, as their own check.
    """
    columns = getattr(schema, "columns", None) or {}
    failed = [
        c for c in pd.unique(fc.loc[_is_dtype_case(fc), "column"]) if c in columns and c in df
    ]
    coerced = df.copy()
    redone: dict[Any, set[Any]] = {}  # column -> index labels of its unreadable values
    replaced: set[Any] = set()  # columns whose pandera dtype cases are superseded
    extra: list[dict[str, Any]] = []
    for col in failed:
        result = _coerce(df[col], _target_dtype(columns[col]))
        if result is None:
            continue
        values, problems = result
        coerced[col] = values
        unreadable = np.zeros(len(df), bool)
        for problem, mask in problems.items():
            unreadable |= mask
            extra += [
                {
                    "schema_context": "Column",
                    "column": col,
                    "check": problem,
                    "check_number": None,
                    "failure_case": v,
                    "index": i,
                    "coercion": True,
                }
                for i, v in zip(df.index[mask], df[col].to_numpy(dtype=object)[mask], strict=True)
            ]
        redone[col] = set(df.index[unreadable])
        if unreadable.any():
            replaced.add(col)
    if not redone:
        return fc
    try:
        schema.validate(coerced, lazy=True)
        fc2 = _normalize_cases(pd.DataFrame())
    except errors as err:
        fc2 = _normalize_cases(err.failure_cases)  # type: ignore[attr-defined]
    in_redone = (fc["schema_context"] == "Column") & fc["column"].isin(list(redone))
    keep_dtype = _is_dtype_case(fc) & fc["column"].isin([c for c in redone if c not in replaced])
    first = fc[(~in_redone | keep_dtype) & ~_is_frame_check(fc)]
    col2 = (fc2["schema_context"] == "Column") & fc2["column"].isin(list(redone))
    col2 &= ~_is_dtype_case(fc2)
    col2 &= ~pd.Series(
        [i in redone.get(c, ()) for c, i in zip(fc2["column"], fc2["index"], strict=True)],
        index=fc2.index,
        dtype=bool,
    )
    second = fc2[col2 | _is_frame_check(fc2)]
    parts = [p for p in (first, second, pd.DataFrame(extra)) if not p.empty]
    return pd.concat(parts, ignore_index=True) if parts else fc


def _group_cases(df: pd.DataFrame, fc: pd.DataFrame) -> list[dict[str, Any]]:
    """One entry per (column, check); a frame-wide check is one entry, rows counted once."""
    fc = fc.copy()
    fc["column"] = fc["column"].astype(object).where(fc["column"].notna(), FRAME)
    wide = _is_frame_check(fc)
    checks: list[dict[str, Any]] = []
    for check, grp in fc[wide].groupby("check", sort=False, dropna=False):
        idx = grp["index"].dropna()
        rows = list(pd.unique(idx))
        examples: list[dict[str, Any]] = [
            {"index": jsonable_value(i), "value": None} for i in rows[:MAX_EXAMPLES]
        ]
        if not rows:  # the check itself errored: pandera reports the exception
            examples = [
                {"index": None, "value": jsonable_value(v)}
                for v in grp["failure_case"].head(MAX_EXAMPLES)
            ]
        checks.append(
            {
                "column": FRAME,
                "check": str(check),
                "failures": len(rows) or int(grp.shape[0]),
                "rows": len(rows),
                "columns": sorted({str(c) for c in grp["column"]}),
                "frame_wide": True,
                "coercion": False,
                "examples": examples,
            }
        )
    for (col, check), grp in fc[~wide].groupby(["column", "check"], sort=False, dropna=False):
        idx = grp["index"].dropna()
        examples = [
            {"index": jsonable_value(i), "value": jsonable_value(v)}
            for i, v in zip(grp["index"], grp["failure_case"], strict=True)
        ][:MAX_EXAMPLES]
        checks.append(
            {
                "column": str(col),
                "check": str(check),
                "failures": int(grp.shape[0]),
                "rows": int(idx.nunique()),
                "frame_wide": False,
                "coercion": bool(grp["coercion"].fillna(False).astype(bool).any()),
                "examples": examples,
            }
        )
    checks.sort(key=lambda c: (-c["rows"], -c["failures"]))
    return checks


def _describe(c: dict[str, Any], with_examples: bool) -> str:
    head = f"{c['column']}: {c['check']} x{c['failures']}"
    if c["frame_wide"]:
        head += " (frame-wide check"
        if with_examples and c["rows"]:
            head += ", e.g. row(s) " + ", ".join(str(e["index"]) for e in c["examples"][:3])
        elif with_examples:
            head += ", e.g. " + ", ".join(repr(e["value"]) for e in c["examples"][:1])
        return head + ")"
    if not with_examples:
        return head
    return (
        head
        + " (e.g. "
        + ", ".join(
            f"row {e['index']}={e['value']!r}" if e["index"] is not None else repr(e["value"])
            for e in c["examples"][:3]
        )
        + ")"
    )


def freshness(
    timestamps: pd.Series | ArrayLike,
    as_of: datetime | pd.Timestamp | str | float,
    max_age: Any = "24h",
) -> GateResult:
    """The newest timestamp at or before ``as_of`` must be no older than ``max_age``.

    Datetime timestamps take a duration (``"6h"``, ``timedelta``; a bare number is refused
    because its unit would be ambiguous); numeric ones a number in their units (default
    "24h", so `[tool.mlgates.freshness] max_age = "6h"` configures it).

    Rows dated after ``as_of`` (clock skew, a time-zone or parsing bug) are reported (count,
    how far ahead, examples) but never make the data fresh: the age is measured from the
    newest row at or before ``as_of``, so one row from 2099 cannot hide stale data. With
    future rows the verdict is ``warn`` if the rest is fresh and ``fail`` if it is stale;
    when every row is after ``as_of`` freshness cannot be measured (``inconclusive``).
    Measured is the age in seconds (or in the numeric units).
    """
    times = as_times(timestamps, "timestamps", allow_missing=True)
    missing = times.missing if times.missing is not None else np.zeros(times.values.size, bool)
    if missing.all():
        raise GateInputError("every timestamp is missing: nothing to judge freshness by")
    if times.kind == "datetime":
        try:
            ref = as_times(pd.Series([pd.Timestamp(as_of)]), "as_of")
        except (TypeError, ValueError) as exc:
            raise GateInputError(f"as_of must be a timestamp, got {as_of!r}") from exc
        same_clock(times, ref, "freshness timestamps vs as_of")
        now: float = int(ref.values[0])
        scale = 1e9  # ns -> s
    else:
        if isinstance(as_of, bool) or not isinstance(as_of, (int, float, np.integer, np.floating)):
            raise GateInputError(
                f"timestamps are numeric, so as_of must be a number too, got {as_of!r}"
            )
        now = float(as_of)
        scale = 1.0
    limit = times.span(max_age, "max_age")
    if limit <= 0:
        raise GateInputError(f"max_age must be positive, got {max_age!r}")
    index = timestamps.index if isinstance(timestamps, pd.Series) else pd.RangeIndex(missing.size)
    present = ~missing
    future = present & (times.values > now)
    n_present = int(present.sum())
    n_future = int(future.sum())
    past = present & ~future
    newest_overall = times.values[present].max()
    order = np.flatnonzero(future)
    order = order[np.argsort(-times.values[order], kind="stable")][:MAX_EXAMPLES]
    future_examples = [
        {"index": jsonable_value(index[i]), "timestamp": times.show(times.values[i])} for i in order
    ]
    details: dict[str, Any] = {
        "newest": times.show(times.values[past].max()) if past.any() else None,
        "newest_overall": times.show(newest_overall),
        "oldest": times.show(times.values[present].min()),
        "as_of": times.show(now),
        "age": None,
        "max_age": times.show_span(limit),
        "rows": int(times.values.size),
        "missing": int(missing.sum()),
        "rows_after_as_of": n_future,
        "max_ahead": times.show_span(newest_overall - now) if n_future else None,
        "future_examples": future_examples,
    }
    future_note = ""
    if n_future:
        shown = ", ".join(f"index {e['index']} at {e['timestamp']}" for e in future_examples[:3])
        future_note = (
            f"{n_future} of {n_present} row(s) ({pct(n_future / n_present)}) are dated after "
            f"as_of {details['as_of']}, up to {details['max_ahead']} ahead (e.g. {shown})"
        )
    unit = " s" if times.kind == "datetime" else ""
    hint = (
        "check the ingestion / materialization job that feeds this data (last successful "
        "run, backlog) before training or serving on it"
    )
    if not past.any():
        return GateResult(
            name="freshness",
            verdict="inconclusive",
            measured=None,
            threshold=float(limit) / scale,
            direction="max",
            unit=unit,
            message=(
                f"cannot judge freshness: {future_note}, so no row is dated at or before "
                "as_of to measure the age from: clock skew, a time-zone bug or a wrong as_of?"
            ),
            hint=(
                "check the clock and time zone of the producer and of as_of (local time "
                "stored as UTC?), then re-run; " + hint
            ),
            details=details,
            rubric=(),  # monitor-4 is the model's age: claim it with a marker when it is
        )
    newest = times.values[past].max()
    age = now - newest
    details["age"] = times.show_span(age)
    if age > limit:
        verdict = "fail"
        message = (
            f"data is stale: newest timestamp {details['newest']} is {details['age']} old at "
            f"{details['as_of']}, {times.show_span(age - limit)} over the limit "
            f"{details['max_age']}"
        )
        if n_future:
            message += (
                f"; {future_note} and do not count as fresh data: clock skew or a time-zone bug?"
            )
    else:
        message = (
            f"newest timestamp {details['newest']} is {details['age']} old at "
            f"{details['as_of']} (max {details['max_age']})"
        )
        if n_future:
            verdict = "warn"
            message += f", but {future_note}: clock skew or a time-zone bug?"
        else:
            verdict = "pass"
    return GateResult(
        name="freshness",
        verdict=verdict,  # type: ignore[arg-type]
        measured=float(age) / scale,
        threshold=float(limit) / scale,
        direction="max",
        unit=unit,
        message=message,
        hint=hint,
        details=details,
        rubric=(),  # monitor-4 is the model's age: claim it with a marker when it is
    )
