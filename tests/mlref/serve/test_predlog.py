"""The prediction log writer: batched inserts, flush on interval and on close, no loss."""

from __future__ import annotations

import json
import math
import sqlite3
import time
from pathlib import Path

import pytest

from mlref.serve.predlog import (
    COLUMNS,
    PredictionLog,
    PredictionRecord,
    features_json,
    read_predictions,
)

NAMES = ("a", "b", "c")


def record(i: int, shadow: float | None = None) -> PredictionRecord:
    return PredictionRecord(
        request_id=f"r{i}",
        ts=1_772_000_000.0 + i,
        event_timestamp=1_772_000_000.0 + i - 0.5,
        transaction_id=f"t{i}",
        user_id=i % 7,
        features=features_json(NAMES, [float(i), 0.5, None]),
        score=i / 1000.0,
        decision=int(i % 2),
        threshold=0.5,
        model_version="v1",
        latency_ms=1.5,
        shadow_score=shadow,
        shadow_version="v2" if shadow is not None else None,
        unknown_user=0,
    )


def test_close_writes_everything_queued(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "predictions.sqlite"
    log = PredictionLog(path, flush_rows=10_000, flush_interval_s=60.0)  # only close flushes
    log.start()
    for chunk in range(100):
        log.append([record(chunk * 10 + j) for j in range(10)])
    log.close()
    rows = read_predictions(path)
    assert [r["transaction_id"] for r in rows] == [f"t{i}" for i in range(1000)]
    assert log.written == 1000
    assert log.failed == 0
    assert tuple(rows[0]) == COLUMNS  # the table's columns, in the contract's order


def test_rows_reach_disk_before_close_by_size_and_by_interval(tmp_path: Path) -> None:
    path = tmp_path / "p.sqlite"
    by_size = PredictionLog(path, flush_rows=5, flush_interval_s=60.0)
    by_size.start()
    by_size.append([record(i) for i in range(5)])
    deadline = time.monotonic() + 10
    while by_size.written < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(read_predictions(path)) == 5  # flushed on size while still open
    by_size.close()

    path2 = tmp_path / "q.sqlite"
    by_time = PredictionLog(path2, flush_rows=10_000, flush_interval_s=0.05)
    by_time.start()
    by_time.append([record(1)])
    deadline = time.monotonic() + 10
    while by_time.written < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(read_predictions(path2)) == 1  # one row, flushed by the interval
    by_time.close()


def test_values_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "p.sqlite"
    log = PredictionLog(path)
    log.start()
    log.append([record(3, shadow=0.25), record(4)])
    log.close()
    first, second = read_predictions(path)
    assert first["shadow_score"] == 0.25
    assert first["shadow_version"] == "v2"
    assert second["shadow_score"] is None
    assert json.loads(first["features"]) == {"a": 3.0, "b": 0.5, "c": None}
    assert first["ts"] == record(3).ts


def test_append_after_close_is_an_error_not_a_silent_loss(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path / "p.sqlite")
    log.start()
    log.close()
    with pytest.raises(RuntimeError, match="not open; records would be lost"):
        log.append([record(1)])


def test_unopenable_path_fails_at_start(tmp_path: Path) -> None:
    (tmp_path / "dir.sqlite").mkdir()
    log = PredictionLog(tmp_path / "dir.sqlite")
    with pytest.raises(RuntimeError, match="cannot open the prediction log"):
        log.start()


def test_features_json_is_valid_json_in_model_order() -> None:
    text = features_json(("z", "a", "m"), [1.0, math.nan, math.inf])
    assert list(json.loads(text)) == ["z", "a", "m"]
    assert json.loads(text) == {"z": 1.0, "a": None, "m": None}
    with pytest.raises(ValueError, match="2 feature names but 1 values"):
        features_json(("z", "a"), [1.0])


def test_table_is_readable_by_the_monitoring_reader(tmp_path: Path) -> None:
    from mlref.monitor.log import PREDICTION_LOG_COLUMNS

    path = tmp_path / "p.sqlite"
    log = PredictionLog(path)
    log.start()
    log.append([record(1)])
    log.close()
    with sqlite3.connect(path) as conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(predictions)")]
    conn.close()
    # the monitor selects its columns by name: each must be there (it does not read the
    # columns added after it was written: unknown_category, the canary's arm/rollout_id)
    assert set(PREDICTION_LOG_COLUMNS) <= set(columns)
    assert set(columns) - set(PREDICTION_LOG_COLUMNS) <= {"unknown_category", "arm", "rollout_id"}


def test_a_log_written_before_unknown_category_is_upgraded_on_open(tmp_path: Path) -> None:
    """An existing log without the newer column: the server adds it (old rows read 0) instead
    of dropping every insert as 'no column named unknown_category'."""
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE predictions (request_id TEXT NOT NULL, ts REAL NOT NULL, "
            "event_timestamp REAL NOT NULL, transaction_id TEXT NOT NULL, user_id INTEGER NOT "
            "NULL, features TEXT NOT NULL, score REAL NOT NULL, decision INTEGER NOT NULL, "
            "threshold REAL NOT NULL, model_version TEXT NOT NULL, latency_ms REAL NOT NULL, "
            "shadow_score REAL NULL, shadow_version TEXT NULL, unknown_user INTEGER NOT NULL)"
        )
        conn.execute(
            "INSERT INTO predictions VALUES ('r0', 1, 1, 't0', 1, '{}', 0.1, 0, 0.5, 'v1', 1, "
            "NULL, NULL, 0)"
        )
    conn.close()
    log = PredictionLog(path, flush_rows=1, flush_interval_s=60.0)
    log.start()
    log.append([record(1)])
    log.close()
    rows = read_predictions(path)
    assert log.dropped == 0
    assert [(r["transaction_id"], r["unknown_category"]) for r in rows] == [("t0", 0), ("t1", 0)]
    # the canary's columns too: an old row was served under no rollout
    assert [(r["arm"], r["rollout_id"]) for r in rows] == [(None, None), (None, None)]
    assert tuple(rows[0]) == COLUMNS
