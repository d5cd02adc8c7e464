"""The prediction log: every served prediction, appended to SQLite off the request path.

Requests hand finished records to ``PredictionLog.append`` (a non-blocking put on a queue);
one writer thread owns the SQLite connection and inserts them in batches: when
``flush_rows`` records are waiting or ``flush_interval_s`` has passed since the first unsaved
one. ``close()`` drains the queue and flushes, so a clean shutdown loses nothing.

A batch insert that fails (typically "database is locked": another process holds the write
lock longer than ``busy_timeout_s``) is retried ``write_retries`` times with a doubling
backoff from ``retry_backoff_s`` (tenacity: the policy reads as stop/wait/retry-on, and the
loop, its sleeps and attempt bookkeeping are the library's; imported in the writer thread
only, so importing this module stays cheap); only then are its rows dropped, logged and
counted in ``dropped`` (exported at ``/metrics`` with ``written``, so monitoring can alert). Records
appended after ``close()`` are refused (``RuntimeError``) and counted as dropped too; the
closed check and the enqueue hold one lock against ``close()``, so no record can slip in
behind the stop marker and vanish.

The table is the serving contract in notes/TEAM.md ("Serving"); monitoring and the flywheel
read it (``mlref.monitor.log.read_log``).
"""

from __future__ import annotations

import json
import logging
import math
import queue
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tenacity import RetryCallState

logger = logging.getLogger(__name__)

TABLE = "predictions"
CREATE_TABLE = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    request_id TEXT NOT NULL,
    ts REAL NOT NULL,
    event_timestamp REAL NOT NULL,
    transaction_id TEXT NOT NULL,
    user_id INTEGER NOT NULL,
    features TEXT NOT NULL,
    score REAL NOT NULL,
    decision INTEGER NOT NULL,
    threshold REAL NOT NULL,
    model_version TEXT NOT NULL,
    latency_ms REAL NOT NULL,
    shadow_score REAL NULL,
    shadow_version TEXT NULL,
    unknown_user INTEGER NOT NULL,
    unknown_category INTEGER NOT NULL DEFAULT 0,
    arm TEXT NULL,
    rollout_id TEXT NULL
)
"""
# columns added since the first release, with their definitions: a log file written before
# them gets them on open (older rows read the default), so an upgraded server never fails to
# insert into an existing log
ADDED_COLUMNS: dict[str, str] = {
    "unknown_category": "INTEGER NOT NULL DEFAULT 0",
    # the canary (mlref.serve.routing): which arm answered, under which rollout; NULL when
    # no rollout was active (model_version already says which model answered)
    "arm": "TEXT NULL",
    "rollout_id": "TEXT NULL",
}
CREATE_INDEX = f"CREATE INDEX IF NOT EXISTS {TABLE}_ts ON {TABLE} (ts)"


@dataclass
class PredictionRecord:
    """One row of the log; field order is the table's column order."""

    request_id: str
    ts: float  # unix seconds when the request arrived
    event_timestamp: float  # unix seconds of the transaction
    transaction_id: str
    user_id: int
    features: str  # JSON object name -> value, in the model's input order
    score: float
    decision: int
    threshold: float
    model_version: str
    latency_ms: float
    shadow_score: float | None
    shadow_version: str | None
    unknown_user: int
    unknown_category: int = 0  # merchant_category not one the model was trained on
    arm: str | None = None  # "champion" / "canary" while a rollout is active, else None
    rollout_id: str | None = None


COLUMNS: tuple[str, ...] = tuple(PredictionRecord.__dataclass_fields__)
# a record's values in column order (dataclasses.astuple deep-copies every field: ~10x slower)
_ROW = attrgetter(*COLUMNS)
_INSERT = f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"


def features_json(names: Sequence[str], values: Sequence[float | None]) -> str:
    """The ``features`` column: valid JSON (NaN/inf become null), inputs in model order."""
    if len(names) != len(values):
        raise ValueError(f"{len(names)} feature names but {len(values)} values")
    clean = [None if v is None or not math.isfinite(v) else float(v) for v in values]
    return json.dumps(dict(zip(names, clean, strict=True)), allow_nan=False)


_STOP = object()
MAX_WRITE_RETRIES = 10
MAX_RETRY_BACKOFF_S = 2.0


class PredictionLog:
    """Append-only SQLite prediction log with a background writer thread."""

    def __init__(
        self,
        path: str | Path,
        *,
        flush_rows: int = 256,
        flush_interval_s: float = 0.5,
        busy_timeout_s: float = 1.0,
        write_retries: int = 4,
        retry_backoff_s: float = 0.1,
    ) -> None:
        if flush_rows < 1:
            raise ValueError(f"flush_rows must be >= 1, got {flush_rows}")
        if not flush_interval_s > 0:
            raise ValueError(f"flush_interval_s must be > 0, got {flush_interval_s}")
        if not busy_timeout_s >= 0:
            raise ValueError(f"busy_timeout_s must be >= 0, got {busy_timeout_s}")
        if isinstance(write_retries, bool) or not 0 <= write_retries <= MAX_WRITE_RETRIES:
            raise ValueError(
                f"write_retries must be a whole number in 0..{MAX_WRITE_RETRIES}, "
                f"got {write_retries!r}"
            )
        if not retry_backoff_s >= 0:
            raise ValueError(f"retry_backoff_s must be >= 0, got {retry_backoff_s}")
        self.path = Path(path)
        self.flush_rows = flush_rows
        self.flush_interval_s = flush_interval_s
        self.busy_timeout_s = float(busy_timeout_s)
        self.write_retries = int(write_retries)
        self.retry_backoff_s = float(retry_backoff_s)
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._closed = False
        # held by append's closed-check + enqueue and by close's mark + stop marker, so no
        # record lands behind the stop marker (uncontended: ~50 ns per append)
        self._lock = threading.Lock()
        self.written = 0  # rows committed
        self.dropped = 0  # rows lost: insert failed after every retry, or appended after close
        self.retried = 0  # insert attempts repeated after a failure

    @property
    def failed(self) -> int:
        """Former name of ``dropped``."""
        return self.dropped

    def start(self) -> None:
        """Open the database in the writer thread; raises here if it cannot be opened."""
        if self._thread is not None:
            raise RuntimeError("prediction log already started")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name="mlref-predlog", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._start_error is not None:
            self._thread.join()
            raise RuntimeError(
                f"cannot open the prediction log at {self.path}: {self._start_error}"
            ) from self._start_error

    def append(self, records: Sequence[PredictionRecord]) -> None:
        """Queue records for writing; never blocks on the disk. Raises ``RuntimeError`` (and
        counts the records as dropped) when the log is not open."""
        with self._lock:
            if not self._closed and self._thread is not None:
                if records:
                    self._queue.put(list(records))
                return
            self.dropped += len(records)
        raise RuntimeError(
            f"prediction log is not open; records would be lost ({len(records)} dropped)"
        )

    def close(self, timeout: float | None = 30.0) -> None:
        """Write everything queued so far, then stop the writer."""
        with self._lock:
            if self._thread is None or self._closed:
                self._closed = True
                return
            self._closed = True
            self._queue.put(_STOP)  # after every record appended before this point
        self._thread.join(timeout)
        if self._thread.is_alive():
            logger.error("prediction log writer did not finish within %.0f s", timeout or 0)

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=self.busy_timeout_s)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(CREATE_TABLE)
            _add_missing_columns(conn)
            conn.execute(CREATE_INDEX)
        except BaseException as exc:
            self._start_error = exc
            self._ready.set()
            return
        self._ready.set()
        buffer: list[PredictionRecord] = []
        first_at = 0.0
        try:
            while True:
                timeout = None
                if buffer:
                    timeout = max(0.0, first_at + self.flush_interval_s - time.monotonic())
                try:
                    item = self._queue.get(timeout=timeout)
                except queue.Empty:
                    self._flush(conn, buffer)
                    continue
                if item is _STOP:
                    self._flush(conn, buffer)
                    return
                if not buffer:
                    first_at = time.monotonic()
                buffer.extend(item)  # type: ignore[arg-type]
                if len(buffer) >= self.flush_rows:
                    self._flush(conn, buffer)
        finally:
            conn.close()

    def _flush(self, conn: sqlite3.Connection, buffer: list[PredictionRecord]) -> None:
        from tenacity import Retrying, retry_if_exception_type, stop_after_attempt

        if not buffer:
            return
        rows = [_ROW(r) for r in buffer]
        buffer.clear()
        retrying = Retrying(
            retry=retry_if_exception_type(sqlite3.Error),
            stop=stop_after_attempt(self.write_retries + 1),
            wait=self._backoff,
            before_sleep=lambda state: self._count_retry(len(rows), state),
            reraise=True,
        )
        try:
            retrying(_insert, conn, rows)
        except sqlite3.Error as exc:
            with self._lock:
                self.dropped += len(rows)
            logger.error(
                "prediction log: %d rows dropped, %d attempts to write them to %s "
                "failed; last error: %s: %s",
                len(rows),
                retrying.statistics["attempt_number"],
                self.path,
                type(exc).__name__,
                exc,
            )
            return
        self.written += len(rows)

    def _backoff(self, state: RetryCallState) -> float:
        """``retry_backoff_s`` before the first retry, then doubling, capped at
        ``MAX_RETRY_BACKOFF_S`` (a first backoff above the cap is kept once)."""
        n = state.attempt_number  # the attempt that just failed
        if n == 1:
            return self.retry_backoff_s
        return float(min(self.retry_backoff_s * 2 ** (n - 1), MAX_RETRY_BACKOFF_S))

    def _count_retry(self, n_rows: int, state: RetryCallState) -> None:
        self.retried += 1
        assert state.outcome is not None
        assert state.next_action is not None
        logger.warning(
            "prediction log: writing %d rows failed (%s); retry %d of %d in %.2f s",
            n_rows,
            state.outcome.exception(),
            state.attempt_number,
            self.write_retries,
            state.next_action.sleep,
        )


def _insert(conn: sqlite3.Connection, rows: list[tuple[object, ...]]) -> None:
    with conn:
        conn.execute("BEGIN IMMEDIATE")  # take the write lock first (busy timeout)
        conn.executemany(_INSERT, rows)


def _add_missing_columns(conn: sqlite3.Connection) -> None:
    present = {row[1] for row in conn.execute(f"PRAGMA table_info({TABLE})")}
    for name, definition in ADDED_COLUMNS.items():
        if name not in present:
            conn.execute(f"ALTER TABLE {TABLE} ADD COLUMN {name} {definition}")


def read_predictions(path: str | Path) -> list[dict[str, object]]:
    """All rows as dicts in insertion order (for tests and quick looks; monitoring has its own
    reader, ``mlref.monitor.log.read_log``)."""
    conn = sqlite3.connect(Path(path))
    try:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(f"SELECT * FROM {TABLE} ORDER BY rowid")]
    finally:
        conn.close()
