"""Data gates: schema validation (pandera, imported only here) and freshness."""

from __future__ import annotations

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


def schema_gate(frame: pd.DataFrame, schema: Any) -> GateResult:
    """Validate ``frame`` against a pandera schema, collecting every error (lazy).

    Fails with counts per (column, check) and example rows. Measured is the number of
    distinct rows with at least one failure (schema-level failures, e.g. a missing
    column, count the whole frame).
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
        fc = err.failure_cases
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
    fc = fc.copy()
    fc["column"] = fc["column"].astype(object).where(fc["column"].notna(), "<frame>")
    fc["check"] = fc["check"].astype(str)
    checks: list[dict[str, Any]] = []
    for (col, check), grp in fc.groupby(["column", "check"], sort=False, dropna=False):
        idx = grp["index"].dropna()
        examples = [
            {"index": jsonable_value(i), "value": jsonable_value(v)}
            for i, v in zip(grp["index"], grp["failure_case"], strict=True)
        ][:MAX_EXAMPLES]
        checks.append(
            {
                "column": str(col),
                "check": check,
                "failures": int(grp.shape[0]),
                "rows": int(idx.nunique()),
                "examples": examples,
            }
        )
    checks.sort(key=lambda c: -c["failures"])
    row_index = fc["index"].dropna()
    frame_level = bool(fc["index"].isna().any())
    n_rows = int(df.shape[0]) if frame_level else int(row_index.nunique())
    listed = "; ".join(
        f"{c['column']}: {c['check']} x{c['failures']} (e.g. "
        + ", ".join(
            f"row {e['index']}={e['value']!r}" if e["index"] is not None else repr(e["value"])
            for e in c["examples"][:3]
        )
        + ")"
        for c in checks[:MAX_EXAMPLES]
    )
    more = f"; and {len(checks) - MAX_EXAMPLES} more check(s)" if len(checks) > MAX_EXAMPLES else ""
    return GateResult(
        name="schema_gate",
        verdict="fail",
        measured=float(n_rows),
        threshold=0.0,
        direction="max",
        unit=" rows",
        message=(
            f"schema {name}: {int(fc.shape[0])} failure(s) in {len(checks)} check(s), "
            f"{n_rows} of {df.shape[0]} row(s) affected"
            + (" (frame-level failure: see the <frame> checks)" if frame_level else "")
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
            "failures": int(fc.shape[0]),
            "checks": checks,
        },
        rubric=("data-1", "monitor-2"),
    )


def freshness(
    timestamps: pd.Series | ArrayLike,
    as_of: datetime | pd.Timestamp | str | float,
    max_age: Any = "24h",
) -> GateResult:
    """The newest timestamp must be no older than ``max_age`` at ``as_of``.

    Datetime timestamps take a duration (``"6h"``, ``timedelta``); numeric ones a number in
    their units (default "24h", so `[tool.mlgates.freshness] max_age = "6h"` configures it).
    A newest timestamp after ``as_of`` (clock skew, bad parsing) warns.
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
        if not isinstance(as_of, (int, float)):
            raise GateInputError(
                f"timestamps are numeric, so as_of must be a number too, got {as_of!r}"
            )
        now = float(as_of)
        scale = 1.0
    limit = times.span(max_age, "max_age")
    if limit <= 0:
        raise GateInputError(f"max_age must be positive, got {max_age!r}")
    present = times.values[~missing]
    newest = present.max()
    age = now - newest
    n_future = int((present > now).sum())
    details = {
        "newest": times.show(newest),
        "oldest": times.show(present.min()),
        "as_of": times.show(now),
        "age": times.show_span(age),
        "max_age": times.show_span(limit),
        "rows": int(times.values.size),
        "missing": int(missing.sum()),
        "rows_after_as_of": n_future,
    }
    unit = " s" if times.kind == "datetime" else ""
    if age < 0:
        verdict = "warn"
        message = (
            f"newest timestamp {details['newest']} is after as_of {details['as_of']} by "
            f"{times.show_span(-age)} ({n_future} row(s), {pct(n_future / present.size)}): "
            "clock skew or a time-zone bug?"
        )
    elif age <= limit:
        verdict = "pass"
        message = (
            f"newest timestamp {details['newest']} is {details['age']} old at "
            f"{details['as_of']} (max {details['max_age']})"
        )
    else:
        verdict = "fail"
        message = (
            f"data is stale: newest timestamp {details['newest']} is {details['age']} old at "
            f"{details['as_of']}, {times.show_span(age - limit)} over the limit "
            f"{details['max_age']}"
        )
    return GateResult(
        name="freshness",
        verdict=verdict,  # type: ignore[arg-type]
        measured=float(age) / scale,
        threshold=float(limit) / scale,
        direction="max",
        unit=unit,
        message=message,
        hint=(
            "check the ingestion / materialization job that feeds this data (last successful "
            "run, backlog) before training or serving on it"
        ),
        details=details,
        rubric=("monitor-4",),
    )
