"""The prediction log: every served prediction, appended to SQLite off the request path.

Requests hand finished records to ``PredictionLog.append`` (a non-blocking put on a queue);
one writer thread owns the SQLite connection and inserts them in batches: when
``flush_rows`` records are waiting or ``flush_interval_s`` has passed since the first unsaved
one. ``close()`` drains the queue and flushes, so a clean shutdown loses nothing. The sync mode
(``submit``: the server awaits the returned future before answering) commits at once, with
whatever else is queued; the durability contract of both modes is in docs/prediction-log.md.

Every row handed in is accounted for: ``written``, or dropped under exactly one reason
(``dropped_by``, ``DROP_REASONS``), exported at ``/metrics`` so monitoring can alert. The
writer's backlog is bounded (``max_pending_rows``, ``max_pending_bytes``): a disk slower than
the traffic costs rows (``queue_full``), never the server's memory. Only a locked database
("database is locked": another process holds the write lock longer than ``busy_timeout_s``) is
retried, ``write_retries`` times with a doubling backoff from ``retry_backoff_s`` (tenacity:
the policy reads as stop/wait/retry-on; imported in the writer thread only, so importing this
module stays cheap); a full disk (SQLITE_FULL) or any other error drops the batch at once.
``close(timeout)`` stops retrying at its deadline and counts what is still queued
(``shutdown``), so a shutdown on a sick disk stays bounded. Records appended after ``close()``
are refused (``RuntimeError``) and counted (``closed``); the closed check and the enqueue hold
one lock against ``close()``, so no record can slip in behind the stop marker and vanish.

Retention: ``max_rows`` and ``max_age_s`` delete the oldest rows after a flush (at most once a
second, and at open and close), counted in ``deleted_by``; ``max_file_bytes`` caps the database file
(``PRAGMA max_page_count``; the WAL file beside it is bounded by SQLite's auto-checkpoint).

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
from collections.abc import Callable, Sequence
from concurrent.futures import Future
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
    rollout_id TEXT NULL,
    batch_size INTEGER NOT NULL DEFAULT 1
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
    # transactions in the HTTP call that carried the row: 1 for /predict; a /predict/batch
    # row's latency_ms is the whole call's, which the single-request p99 budget does not
    # judge (mlref.monitor keeps them apart)
    "batch_size": "INTEGER NOT NULL DEFAULT 1",
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
    batch_size: int = 1  # transactions in the call; latency_ms is the call's


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
# memory one queued record holds beyond its strings' characters: tracemalloc measured 688 B for
# a record whose request_id + transaction_id + features carry 127 characters (Python 3.11)
RECORD_OVERHEAD_BYTES = 560
# why a row was not written; every row the server answered is either written or counted under
# exactly one of these (mlref_prediction_log_rows_dropped_total{reason=...})
DROP_REASONS: tuple[str, ...] = (
    "queue_full",  # the writer's pending bound was reached: the disk is slower than traffic
    "locked",  # another process held the write lock through every retry
    "disk_full",  # SQLITE_FULL: the filesystem, or the max_file_bytes cap, is full
    "write_error",  # any other SQLite error (read-only file, I/O error, corruption)
    "closed",  # appended after close()
    "shutdown",  # still queued when close()'s deadline passed
)
# why written rows were deleted later by retention (mlref_prediction_log_rows_deleted_total)
DELETE_REASONS: tuple[str, ...] = ("max_rows", "max_age")
# retention deletes in transactions of this many rows (the writer stays responsive) and at
# most this many per pass; a backlog is worked off over the following passes
RETENTION_CHUNK_ROWS = 10_000
RETENTION_MAX_CHUNKS = 10
# retention runs after a flush at most this often (and at open and close): a pass per flush
# cost the sync mode, which flushes per request, a write transaction each (measured: bench)
RETENTION_CHECK_S = 1.0
DROP_LOG_EVERY_S = 10.0  # a steady drop (a full disk) is logged once per this many seconds
# only these are worth retrying: another connection holds the lock. A full disk or a read-only
# file will not heal in the next second, so those rows are dropped and counted at once
_RETRYABLE = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})


def record_bytes(record: PredictionRecord) -> int:
    """The memory a queued record holds, estimated (for the pending bound)."""
    return (
        RECORD_OVERHEAD_BYTES
        + len(record.features)
        + len(record.request_id)
        + len(record.transaction_id)
    )


def _drop_reason(exc: sqlite3.Error) -> str:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:
        return "write_error"
    primary = code & 0xFF  # extended codes carry the primary code in the low byte
    if primary in _RETRYABLE:
        return "locked"
    if primary == sqlite3.SQLITE_FULL:
        return "disk_full"
    return "write_error"


class PredictionLog:
    """Append-only SQLite prediction log with a background writer thread.

    Bounded: at most ``max_pending_rows`` rows / ``max_pending_bytes`` of records wait for the
    writer; more are dropped at once and counted (``queue_full``). Every row handed to
    ``append``/``submit`` ends up in ``written`` or in exactly one reason of ``dropped_by``.
    Retention (``max_rows``, ``max_age_s``) deletes the oldest rows after they were written and
    counts them in ``deleted_by``; ``max_file_bytes`` caps the database file itself
    (``PRAGMA max_page_count``: past it inserts fail with SQLITE_FULL and count as
    ``disk_full``).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        flush_rows: int = 256,
        flush_interval_s: float = 0.5,
        busy_timeout_s: float = 1.0,
        write_retries: int = 4,
        retry_backoff_s: float = 0.1,
        max_pending_rows: int = 50_000,
        max_pending_bytes: int = 32 * 2**20,
        max_rows: int | None = None,
        max_age_s: float | None = None,
        max_file_bytes: int | None = None,
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
        if max_pending_rows < flush_rows:
            raise ValueError(
                f"max_pending_rows ({max_pending_rows}) must be >= flush_rows ({flush_rows}), "
                "or a full batch could never be queued"
            )
        if max_pending_bytes < 1:
            raise ValueError(f"max_pending_bytes must be >= 1, got {max_pending_bytes}")
        if max_rows is not None and max_rows < 1:
            raise ValueError(f"max_rows must be >= 1 or None (no cap), got {max_rows}")
        if max_age_s is not None and not max_age_s > 0:
            raise ValueError(f"max_age_s must be > 0 or None (no cap), got {max_age_s}")
        if max_file_bytes is not None and max_file_bytes < 64 * 1024:
            raise ValueError(
                f"max_file_bytes must be >= 65536 (room for the schema) or None, got "
                f"{max_file_bytes}"
            )
        self.path = Path(path)
        self.flush_rows = flush_rows
        self.flush_interval_s = flush_interval_s
        self.busy_timeout_s = float(busy_timeout_s)
        self.write_retries = int(write_retries)
        self.retry_backoff_s = float(retry_backoff_s)
        self.max_pending_rows = int(max_pending_rows)
        self.max_pending_bytes = int(max_pending_bytes)
        self.max_rows = max_rows
        self.max_age_s = max_age_s
        self.max_file_bytes = max_file_bytes
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._closed = False
        self._deadline: float | None = None  # monotonic; set by close(timeout)
        # held by append's closed-check + enqueue and by close's mark + stop marker, so no
        # record lands behind the stop marker; also guards the counters below
        # (uncontended: ~50 ns per append)
        self._lock = threading.Lock()
        self._pending_rows = 0  # accepted, not yet written or dropped (queue + writer buffer)
        self._pending_bytes = 0
        self.written = 0  # rows committed
        self._dropped = dict.fromkeys(DROP_REASONS, 0)
        self._deleted = dict.fromkeys(DELETE_REASONS, 0)
        self.retried = 0  # insert attempts repeated after a failure
        self._last_drop_log: dict[str, float] = {}
        self._unlogged_drops: dict[str, int] = dict.fromkeys(DROP_REASONS, 0)

    # -- counters ------------------------------------------------------------------------
    @property
    def dropped(self) -> int:
        """Rows never written, over every reason."""
        with self._lock:
            return sum(self._dropped.values())

    @property
    def dropped_by(self) -> dict[str, int]:
        """Rows never written, by reason (every reason in ``DROP_REASONS``, zeros too)."""
        with self._lock:
            return dict(self._dropped)

    @property
    def deleted_by(self) -> dict[str, int]:
        """Written rows deleted since by retention, by reason (``DELETE_REASONS``)."""
        with self._lock:
            return dict(self._deleted)

    @property
    def failed(self) -> int:
        """Former name of ``dropped``."""
        return self.dropped

    @property
    def pending(self) -> int:
        """Rows accepted and not yet written or dropped."""
        return self._pending_rows

    # -- lifecycle -----------------------------------------------------------------------
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
        """Queue records for writing; never blocks on the disk. Past the pending bound the
        records are dropped and counted (``queue_full``). Raises ``RuntimeError`` (and counts
        the records as dropped, ``closed``) when the log is not open."""
        self._enqueue(records, None)

    def submit(self, records: Sequence[PredictionRecord]) -> Future[str | None]:
        """Queue records and return a future that resolves once they are committed (``None``)
        or dropped (the reason): the sync mode awaits it before answering. The writer commits
        at once while such a future waits, together with whatever else is queued (group
        commit). Raises ``RuntimeError`` like ``append``."""
        done: Future[str | None] = Future()
        # running: a caller that gives up (asyncio cancellation) cannot cancel it, so the
        # writer's set_result never meets a cancelled future
        done.set_running_or_notify_cancel()
        self._enqueue(records, done)
        return done

    def _enqueue(
        self, records: Sequence[PredictionRecord], done: Future[str | None] | None
    ) -> None:
        n = len(records)
        size = sum(map(record_bytes, records))
        with self._lock:
            if self._closed or self._thread is None:
                self._dropped["closed"] += n
                refused = "closed"
            elif (
                self._pending_rows + n > self.max_pending_rows
                or self._pending_bytes + size > self.max_pending_bytes
            ):
                self._dropped["queue_full"] += n
                self._unlogged_drops["queue_full"] += n
                refused = "queue_full"
            else:
                self._pending_rows += n
                self._pending_bytes += size
                self._queue.put((list(records), size, done))
                return
        if refused == "closed":
            raise RuntimeError(f"prediction log is not open; records would be lost ({n} dropped)")
        self._log_drops(
            "queue_full",
            f"{self._pending_rows} rows already wait for the writer "
            f"(max_pending_rows={self.max_pending_rows}, "
            f"max_pending_bytes={self.max_pending_bytes})",
        )
        if done is not None:
            done.set_result("queue_full")

    def close(self, timeout: float | None = 30.0) -> None:
        """Write everything queued so far, then stop the writer. Within ``timeout`` seconds:
        past it, locked writes are no longer retried and the rows still queued are dropped
        and counted (``shutdown``); the wait is then bounded by one insert attempt."""
        with self._lock:
            if self._thread is None or self._closed:
                self._closed = True
                return
            self._closed = True
            if timeout is not None:
                self._deadline = time.monotonic() + timeout
            self._queue.put(_STOP)  # after every record appended before this point
        # the writer checks the deadline between inserts; one attempt may still be under way
        grace = None if timeout is None else timeout + self.busy_timeout_s + 5.0
        self._thread.join(grace)
        if self._thread.is_alive():
            logger.error("prediction log writer did not finish within %.0f s", grace or 0)

    def _past_deadline(self) -> bool:
        return self._deadline is not None and time.monotonic() > self._deadline

    # -- the writer thread ---------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=self.busy_timeout_s)
        conn.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a commit is in the OS (the WAL file) when it returns, so it survives
        # the process being killed; only a power loss / OS crash can undo the last commits
        conn.execute("PRAGMA synchronous=NORMAL")
        if self.max_file_bytes is not None:
            page_size = conn.execute("PRAGMA page_size").fetchone()[0]
            conn.execute(f"PRAGMA max_page_count={max(1, self.max_file_bytes // page_size)}")
        conn.execute(CREATE_TABLE)
        _add_missing_columns(conn)
        conn.execute(CREATE_INDEX)
        return conn

    def _run(self) -> None:
        try:
            conn = self._connect()
        except BaseException as exc:
            self._start_error = exc
            self._ready.set()
            return
        self._ready.set()
        batch = _Batch()
        next_retention = time.monotonic() + RETENTION_CHECK_S
        try:
            self._apply_retention(conn)
            while True:
                if self._past_deadline():
                    self._drop(batch, "shutdown", "close() timed out")
                    self._drain_after_deadline()
                    return
                timeout = None
                if batch.rows:
                    # a waiting sync caller: commit as soon as the queue is empty
                    due = batch.first_at + self.flush_interval_s - time.monotonic()
                    timeout = 0.0 if batch.waiters else max(0.0, due)
                elif self.max_rows is not None or self.max_age_s is not None:
                    # idle: wake for the next retention pass (rows age without new traffic)
                    timeout = max(0.0, next_retention - time.monotonic())
                if self._deadline is not None:
                    timeout = min(timeout if timeout is not None else 1.0, 0.1)
                try:
                    item = self._queue.get(timeout=timeout)
                except queue.Empty:
                    item = None  # the flush interval passed (or a sync caller waits)
                if item is _STOP:
                    self._flush(conn, batch)
                    self._apply_retention(conn)  # a clean stop leaves the log within its caps
                    return
                if item is not None:
                    batch.add(item)  # type: ignore[arg-type]
                    if len(batch.rows) < self.flush_rows:
                        continue
                if batch.rows:
                    self._flush(conn, batch)
                now = time.monotonic()
                if now >= next_retention:
                    next_retention = now + RETENTION_CHECK_S
                    self._apply_retention(conn)
        except BaseException:
            # a bug in the writer: refuse new rows and count every accepted one, so a sync
            # caller never waits for ever and written + dropped still adds up
            logger.exception("prediction log writer failed; the log is closed")
            with self._lock:
                self._closed = True
            self._drop(batch, "write_error", "the writer failed")
            self._drain_queue("write_error", "the writer failed")
        finally:
            conn.close()
            with self._lock:
                unreported = {r: n for r, n in self._unlogged_drops.items() if n}
            for reason, n in unreported.items():  # the rate limit held these back
                logger.error("prediction log: %d more rows dropped (%s)", n, reason)

    def _drain_after_deadline(self) -> None:
        self._drain_queue("shutdown", "close() timed out")

    def _drain_queue(self, reason: str, detail: str) -> None:
        """Count whatever is still queued as dropped (stops at the stop marker)."""
        rest = _Batch()
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                break
            rest.add(item)  # type: ignore[arg-type]
        self._drop(rest, reason, detail)

    def _flush(self, conn: sqlite3.Connection, batch: _Batch) -> None:
        from tenacity import Retrying, retry_if_exception, stop_after_attempt

        if not batch.rows:
            return
        rows = [_ROW(r) for r in batch.rows]
        retrying = Retrying(
            retry=retry_if_exception(self._retryable),
            stop=stop_after_attempt(self.write_retries + 1),
            wait=self._backoff,
            before_sleep=lambda state: self._count_retry(len(rows), state),
            reraise=True,
        )
        try:
            retrying(_insert, conn, rows)
        except sqlite3.Error as exc:
            reason = _drop_reason(exc)
            self._drop(
                batch,
                reason,
                f"{retrying.statistics['attempt_number']} attempts to write them to {self.path} "
                f"failed; last error: {type(exc).__name__}: {exc}",
            )
            return
        with self._lock:
            self.written += len(rows)
            self._pending_rows -= len(rows)
            self._pending_bytes -= batch.size
        batch.resolve(None)

    def _retryable(self, exc: BaseException) -> bool:
        return (
            isinstance(exc, sqlite3.Error)
            and _drop_reason(exc) == "locked"
            and not self._past_deadline()
        )

    def _drop(self, batch: _Batch, reason: str, detail: str) -> None:
        n = len(batch.rows)
        if not n:
            return
        with self._lock:
            self._dropped[reason] += n
            self._unlogged_drops[reason] += n
            self._pending_rows -= n
            self._pending_bytes -= batch.size
        batch.resolve(reason)
        self._log_drops(reason, detail)

    def _log_drops(self, reason: str, detail: str) -> None:
        """Log drops of one reason at most once per ``DROP_LOG_EVERY_S`` (a full disk drops
        every batch: one line per batch would flood the log it cannot write either)."""
        now = time.monotonic()
        with self._lock:
            last = self._last_drop_log.get(reason)
            if last is not None and now - last < DROP_LOG_EVERY_S:
                return
            self._last_drop_log[reason] = now
            n, self._unlogged_drops[reason] = self._unlogged_drops[reason], 0
        logger.error("prediction log: %d rows dropped (%s), %s", n, reason, detail)

    # -- retention -----------------------------------------------------------------------
    def _apply_retention(self, conn: sqlite3.Connection) -> None:
        """Delete the oldest rows past ``max_rows`` and older than ``max_age_s``, in chunks;
        a failure (lock, full disk) waits for the next pass."""
        try:
            if self.max_rows is not None:
                self._delete_chunks(conn, "max_rows", self._rows_over_cap)
            if self.max_age_s is not None:
                self._delete_chunks(conn, "max_age", self._rows_too_old)
        except sqlite3.Error as exc:
            logger.warning("prediction log: retention pass failed (%s); retried later", exc)

    def _rows_over_cap(self, conn: sqlite3.Connection) -> tuple[str, tuple[object, ...]]:
        # rowids only grow (the newest row is never deleted), so the rows with rowid above
        # max(rowid) - max_rows are at most max_rows: no count(*) scan needed
        assert self.max_rows is not None
        (top,) = conn.execute(f"SELECT max(rowid) FROM {TABLE}").fetchone()
        cut = (top or 0) - self.max_rows
        sql = f"SELECT rowid FROM {TABLE} WHERE rowid <= ? ORDER BY rowid LIMIT ?"
        return sql, (cut, RETENTION_CHUNK_ROWS)

    def _rows_too_old(self, conn: sqlite3.Connection) -> tuple[str, tuple[object, ...]]:
        assert self.max_age_s is not None
        cutoff = time.time() - self.max_age_s
        sql = f"SELECT rowid FROM {TABLE} WHERE ts < ? ORDER BY ts LIMIT ?"
        return sql, (cutoff, RETENTION_CHUNK_ROWS)

    def _delete_chunks(
        self,
        conn: sqlite3.Connection,
        reason: str,
        select: Callable[[sqlite3.Connection], tuple[str, tuple[object, ...]]],
    ) -> None:
        for _ in range(RETENTION_MAX_CHUNKS):
            sql, params = select(conn)
            # a read first: a pass with nothing to delete opens no write transaction
            if not conn.execute(f"SELECT EXISTS ({sql})", params).fetchone()[0]:
                return
            with conn:
                conn.execute("BEGIN IMMEDIATE")
                deleted = conn.execute(
                    f"DELETE FROM {TABLE} WHERE rowid IN ({sql})", params
                ).rowcount
            with self._lock:
                self._deleted[reason] += deleted
            if deleted < RETENTION_CHUNK_ROWS:
                return

    # -- retries -------------------------------------------------------------------------
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


class _Batch:
    """The writer's unsaved rows, their estimated bytes and the sync callers waiting on them."""

    def __init__(self) -> None:
        self.rows: list[PredictionRecord] = []
        self.size = 0
        self.waiters: list[Future[str | None]] = []
        self.first_at = 0.0

    def add(self, item: tuple[list[PredictionRecord], int, Future[str | None] | None]) -> None:
        records, size, done = item
        if not self.rows:
            self.first_at = time.monotonic()
        self.rows.extend(records)
        self.size += size
        if done is not None:
            self.waiters.append(done)

    def resolve(self, outcome: str | None) -> None:
        """Tell the waiting sync callers, and empty the batch for the next rows."""
        for done in self.waiters:
            done.set_result(outcome)
        self.rows = []
        self.size = 0
        self.waiters = []


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
