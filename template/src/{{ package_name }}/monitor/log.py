"""Read windows of the serving prediction log (SQLite, table ``predictions``).

The schema is the serving contract (docs in notes/TEAM.md, "Serving"): one row per scored
request, times as unix seconds, the model inputs as a JSON object in ``features``. Reading
turns the times into UTC timestamps and expands ``features`` into one column per input, so
monitoring, hard-example mining and the shadow report all work on one plain frame.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

TABLE = "predictions"
PREDICTION_LOG_COLUMNS: tuple[str, ...] = (
    "request_id",
    "ts",
    "event_timestamp",
    "transaction_id",
    "user_id",
    "features",
    "score",
    "decision",
    "threshold",
    "model_version",
    "latency_ms",
    "shadow_score",
    "shadow_version",
    "unknown_user",
    "batch_size",
)
# columns a log written by an older server may lack (read-only: the monitor never alters the
# log), with the value their rows mean
OPTIONAL_COLUMNS: dict[str, str] = {"batch_size": "1"}
# columns of the frame read_log returns, before the expanded feature columns
BASE_COLUMNS: tuple[str, ...] = tuple(c for c in PREDICTION_LOG_COLUMNS if c != "features")


def _to_unix(value: Any, name: str) -> float | None:
    """Accept a datetime/Timestamp/ISO string (with timezone) or unix seconds."""
    import pandas as pd

    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a time, got {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{name}={value!r} is not a time; pass a timezone-aware datetime, an ISO-8601 "
            "string with a timezone, or unix seconds"
        ) from exc
    if stamp.tzinfo is None:
        raise ValueError(
            f"{name}={value!r} has no timezone; the log is in UTC, so pass e.g. "
            f"'{stamp.isoformat()}+00:00'"
        )
    return stamp.timestamp()


def read_log(
    path: str | Path,
    start: datetime | pd.Timestamp | str | float | None = None,
    end: datetime | pd.Timestamp | str | float | None = None,
) -> pd.DataFrame:
    """Read the prediction log rows with request time ``start <= ts < end``.

    Returns a frame with the log columns (``ts`` and ``event_timestamp`` as UTC timestamps,
    ``decision`` / ``unknown_user`` as bool, ``shadow_score`` NaN where no shadow model ran)
    followed by one column per model input from the ``features`` JSON, in the order the
    server wrote them. Rows are sorted by ``ts`` then ``request_id``. The feature names are
    also in ``frame.attrs["feature_names"]``.
    """
    import numpy as np
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"prediction log {path} does not exist; start the server (it writes the log) or "
            "point at settings.prediction_log"
        )
    lo = _to_unix(start, "start")
    hi = _to_unix(end, "end")
    if lo is not None and hi is not None and hi <= lo:
        raise ValueError(f"empty window: end ({end}) must be after start ({start})")

    where: list[str] = []
    params: list[float] = []
    if lo is not None:
        where.append("ts >= ?")
        params.append(lo)
    if hi is not None:
        where.append("ts < ?")
        params.append(hi)

    # read-only URI: monitoring must never create or lock the server's log for writing
    uri = f"{path.resolve().as_uri()}?mode=ro"
    con = sqlite3.connect(uri, uri=True)
    try:
        try:
            present = {row[1] for row in con.execute(f"PRAGMA table_info({TABLE})")}
            select = ", ".join(
                c if c in present or c not in OPTIONAL_COLUMNS else f"{OPTIONAL_COLUMNS[c]} AS {c}"
                for c in PREDICTION_LOG_COLUMNS
            )
            sql = f"SELECT {select} FROM {TABLE}"
            if where:
                sql += " WHERE " + " AND ".join(where)
            sql += " ORDER BY ts, request_id"
            rows = con.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            raise ValueError(
                f"{path} is not a prediction log with table {TABLE!r} and columns "
                f"{', '.join(PREDICTION_LOG_COLUMNS)}: {exc}"
            ) from exc
    finally:
        con.close()

    raw = pd.DataFrame.from_records(rows, columns=list(PREDICTION_LOG_COLUMNS))
    feature_rows = [_parse_features(text, i) for i, text in enumerate(raw["features"])]
    names = _feature_names(feature_rows)
    clash = sorted(set(names) & set(BASE_COLUMNS))
    if clash:
        raise ValueError(f"feature names {clash} clash with prediction log columns")

    frame = raw.drop(columns=["features"])
    frame["ts"] = pd.to_datetime(frame["ts"].astype("float64"), unit="s", utc=True)
    frame["event_timestamp"] = pd.to_datetime(
        frame["event_timestamp"].astype("float64"), unit="s", utc=True
    )
    frame["user_id"] = frame["user_id"].astype("int64")
    for col in ("score", "threshold", "latency_ms", "shadow_score"):
        frame[col] = pd.to_numeric(frame[col], errors="raise").astype("float64")
    frame["decision"] = frame["decision"].astype("int64").astype(bool)
    frame["unknown_user"] = frame["unknown_user"].fillna(0).astype("int64").astype(bool)
    for col in ("request_id", "transaction_id", "model_version", "shadow_version"):
        frame[col] = frame[col].astype("object")

    if names:
        values = np.array(
            [[row.get(n, np.nan) for n in names] for row in feature_rows], dtype="float64"
        ).reshape(len(feature_rows), len(names))
        feats = pd.DataFrame(values, columns=names, index=frame.index)
        frame = pd.concat([frame, feats], axis=1)
    frame.attrs["feature_names"] = list(names)
    logger.debug("read %d prediction log rows from %s", len(frame), path)
    return frame


def _parse_features(text: Any, row: int) -> dict[str, float]:
    if text is None:
        return {}
    try:
        parsed = json.loads(text)
    except (TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"prediction log row {row}: features is not JSON ({exc})") from exc
    if not isinstance(parsed, dict):
        raise ValueError(f"prediction log row {row}: features must be a JSON object")
    out: dict[str, float] = {}
    for key, value in parsed.items():
        out[str(key)] = float("nan") if value is None else float(value)
    return out


def _feature_names(rows: Sequence[dict[str, float]]) -> list[str]:
    """Union of keys in first-seen order (the server writes MODEL_FEATURES order)."""
    seen: dict[str, None] = {}
    for row in rows:
        for key in row:
            seen.setdefault(key, None)
    return list(seen)


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """The expanded feature columns of a frame from :func:`read_log`."""
    names = frame.attrs.get("feature_names")
    if names is not None:
        return [n for n in names if n in frame.columns]
    return [c for c in frame.columns if c not in BASE_COLUMNS]
