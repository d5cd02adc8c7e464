"""The prediction log's bounds: a bounded backlog, every unwritten row counted by reason, a
full disk dropped at once (not retried), a bounded shutdown, retention, the sync mode.

Real SQLite throughout. The full disk is real in two ways: a database file capped with
``PRAGMA max_page_count`` (``max_file_bytes``: SQLite itself answers SQLITE_FULL, always
available), and a 2 MB tmpfs mounted in a private mount namespace (``unshare -m``: the kernel
answers ENOSPC; skipped where the test may not mount). The lock comes from a second real
connection, as a second writer would hold it.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from mlref.serve.predlog import (
    DELETE_REASONS,
    DROP_REASONS,
    PredictionLog,
    PredictionRecord,
    features_json,
    read_predictions,
)

NAMES = tuple(f"f{k}" for k in range(8))


def record(i: int, *, ts: float | None = None) -> PredictionRecord:
    return PredictionRecord(
        request_id=f"r{i:08d}",
        ts=ts if ts is not None else 1_772_000_000.0 + i,
        event_timestamp=1_772_000_000.0 + i - 0.5,
        transaction_id=f"t{i:08d}",
        user_id=i % 7,
        features=features_json(NAMES, [float(i) * 1.000001] * len(NAMES)),
        score=(i % 1000) / 1000.0,
        decision=int(i % 2),
        threshold=0.5,
        model_version="v1",
        latency_ms=1.5,
        shadow_score=None,
        shadow_version=None,
        unknown_user=0,
    )


def rows(start: int, n: int) -> list[PredictionRecord]:
    return [record(i) for i in range(start, start + n)]


def wait_until(predicate: Any, timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.005)


def exclusive_lock(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=5.0)
    conn.execute("BEGIN EXCLUSIVE")
    return conn


def accounted(log: PredictionLog) -> int:
    return log.written + sum(log.dropped_by.values())


def table_rows(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM predictions").fetchone()[0])
    finally:
        conn.close()


# -- 1. a bounded backlog; every row accounted for --------------------------------------------
def test_a_stalled_writer_drops_past_the_row_bound_and_counts_every_row(tmp_path: Path) -> None:
    path = tmp_path / "p.sqlite"
    log = PredictionLog(
        path,
        flush_rows=100,
        flush_interval_s=0.01,
        busy_timeout_s=5.0,  # the writer waits on the lock: the backlog builds up behind it
        write_retries=0,
        max_pending_rows=1_000,
    )
    log.start()
    lock = exclusive_lock(path)
    try:
        for g in range(30):
            log.append(rows(g * 100, 100))  # 3000 rows; the writer can take none of them
        assert log.pending <= 1_000
        assert log.dropped_by["queue_full"] == 2_000  # refused at once, not queued
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    log.close()
    assert log.pending == 0
    assert (log.written, log.dropped) == (1_000, 2_000)
    assert table_rows(path) == 1_000


def test_the_byte_bound_holds_for_large_records(tmp_path: Path) -> None:
    path = tmp_path / "p.sqlite"
    big = [record(i) for i in range(50)]
    for r in big:
        r.features = json.dumps({"x": "y" * 20_000})  # ~20 kB each
    log = PredictionLog(
        path, flush_rows=10, busy_timeout_s=5.0, write_retries=0, max_pending_bytes=200_000
    )
    log.start()
    lock = exclusive_lock(path)
    try:
        for r in big:
            log.append([r])
        # ~20.6 kB per record (features + the measured overhead): 9 fit under 200 kB
        assert log.dropped_by["queue_full"] == 41
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    log.close()
    assert (log.written, log.dropped) == (9, 41)


# -- 2. a full disk: dropped at once, counted, the invariant holds ----------------------------
def test_a_capped_file_drops_full_batches_at_once_and_counts_them(tmp_path: Path) -> None:
    path = tmp_path / "p.sqlite"
    log = PredictionLog(
        path,
        flush_rows=256,
        flush_interval_s=0.02,
        write_retries=4,  # would cost seconds per batch if a full disk were retried
        retry_backoff_s=0.5,
        max_file_bytes=256 * 1024,
    )
    log.start()
    appended = 0
    for g in range(60):
        log.append(rows(g * 100, 100))
        appended += 100
        time.sleep(0.001)
    started = time.monotonic()
    log.close(10.0)
    closing_s = time.monotonic() - started
    by = log.dropped_by
    assert by["disk_full"] > 0, by
    assert log.retried == 0  # SQLITE_FULL is not "database is locked"
    assert log.written + log.dropped == appended
    assert sum(by.values()) == by["disk_full"] + by["queue_full"]
    assert table_rows(path) == log.written
    assert path.stat().st_size <= 256 * 1024
    assert closing_s < 5.0, f"close() took {closing_s:.1f} s on a full disk"


FULL_DISK_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    from mlref.serve.predlog import PredictionLog, PredictionRecord, features_json

    names = [f"f{k}" for k in range(8)]
    log = PredictionLog(sys.argv[1], flush_rows=256, flush_interval_s=0.02, retry_backoff_s=0.5)
    log.start()
    n = 0
    for g in range(150):
        now = time.time()
        log.append([
            PredictionRecord(f"r{g}-{i}", now, now, f"t{g}-{i}", i,
                             features_json(names, [1.234567] * 8), 0.1, 0, 0.3, "1", 1.0,
                             None, None, 0)
            for i in range(100)
        ])
        n += 100
        time.sleep(0.001)
    started = time.monotonic()
    log.close(10.0)
    print(json.dumps({"appended": n, "written": log.written, "dropped": log.dropped_by,
                      "retried": log.retried, "close_s": time.monotonic() - started}))
    """
)


def test_a_real_full_filesystem_drops_and_counts_without_retrying(tmp_path: Path) -> None:
    """A 2 MB tmpfs (the log lives on it and fills it), mounted in a private mount namespace
    so the mount dies with the process even if the test is killed."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare not installed: the capped-file test above covers SQLITE_FULL")
    script = tmp_path / "fill.py"
    script.write_text(FULL_DISK_SCRIPT)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    shell = (
        f"mount -t tmpfs -o size=2m tmpfs {mnt} || exit 77; "
        f"exec {sys.executable} {script} {mnt / 'p.sqlite'}"
    )
    done = subprocess.run(
        ["unshare", "-m", "sh", "-c", shell], capture_output=True, text=True, timeout=120
    )
    if done.returncode == 77 or "unshare failed" in done.stderr:
        pytest.skip(f"may not mount a tmpfs here: {done.stderr.strip()[-200:]}")
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["dropped"]["disk_full"] > 0, out
    assert out["written"] + sum(out["dropped"].values()) == out["appended"] == 15_000
    assert out["retried"] == 0
    assert out["close_s"] < 5.0


# -- 3. a bounded shutdown on a locked database -----------------------------------------------
def test_close_stops_retrying_at_its_deadline_and_counts_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "p.sqlite"
    log = PredictionLog(
        path,
        flush_rows=10,
        flush_interval_s=0.01,
        busy_timeout_s=0.05,
        write_retries=10,  # 10 retries, backoff up to 2 s: ~15 s per batch without a deadline
        retry_backoff_s=1.0,
    )
    log.start()
    lock = exclusive_lock(path)
    try:
        for g in range(20):
            log.append(rows(g * 10, 10))
        wait_until(lambda: log.retried >= 1, what="the first retry")
        started = time.monotonic()
        log.close(timeout=0.5)
        closing_s = time.monotonic() - started
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    by = log.dropped_by
    assert log.written + log.dropped == 200
    assert by["shutdown"] > 0
    assert by["shutdown"] + by["locked"] == 200
    # the deadline, plus the retry sleep under way (at most 2 s) and one attempt (0.05 s)
    assert closing_s < 3.5, f"close(timeout=0.5) took {closing_s:.1f} s"


def test_every_reason_is_reported_even_at_zero(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path / "p.sqlite")
    assert list(log.dropped_by) == list(DROP_REASONS)
    assert list(log.deleted_by) == list(DELETE_REASONS)
    assert set(log.dropped_by.values()) == {0}


def test_many_threads_appending_into_a_full_disk_lose_no_count(tmp_path: Path) -> None:
    path = tmp_path / "p.sqlite"
    log = PredictionLog(
        path, flush_rows=64, flush_interval_s=0.01, max_pending_rows=500, max_file_bytes=128 * 1024
    )
    log.start()

    def producer(k: int) -> None:
        for g in range(40):
            batch = rows(k * 100_000 + g * 25, 25)
            if g % 3 == 0:
                log.submit(batch)  # the sync path shares the accounting
            else:
                log.append(batch)

    threads = [threading.Thread(target=producer, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close(10.0)
    assert log.written + log.dropped == 6 * 40 * 25
    assert log.dropped_by["disk_full"] > 0
    assert table_rows(path) == log.written
    assert log.pending == 0


# -- 4. retention -----------------------------------------------------------------------------
def test_max_rows_keeps_the_newest_rows_and_counts_the_deleted(tmp_path: Path) -> None:
    path = tmp_path / "p.sqlite"
    log = PredictionLog(path, flush_rows=50, flush_interval_s=60.0, max_rows=120)
    log.start()
    for g in range(20):
        log.append(rows(g * 50, 50))  # 1000 rows, a flush (and a retention pass) every 50
    log.close()
    kept = [r["transaction_id"] for r in read_predictions(path)]
    assert kept == [f"t{i:08d}" for i in range(880, 1000)]
    assert log.written == 1000
    assert log.deleted_by == {"max_rows": 880, "max_age": 0}


def test_a_row_cap_on_an_existing_larger_log_is_worked_off_in_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlref.serve import predlog

    monkeypatch.setattr(predlog, "RETENTION_CHUNK_ROWS", 7)
    monkeypatch.setattr(predlog, "RETENTION_MAX_CHUNKS", 3)
    monkeypatch.setattr(predlog, "RETENTION_CHECK_S", 1000.0)  # passes at open and close only
    path = tmp_path / "p.sqlite"
    first = PredictionLog(path, flush_rows=100)
    first.start()
    first.append(rows(0, 100))
    first.close()
    capped = PredictionLog(path, flush_rows=1, flush_interval_s=60.0, max_rows=10)
    capped.start()  # one pass at open: 3 chunks of 7, not all 90 rows over the cap at once
    wait_until(lambda: capped.deleted_by["max_rows"] == 21, what="the pass at open")
    time.sleep(0.05)
    assert capped.deleted_by["max_rows"] == 21
    for i in range(100, 104):
        capped.append([record(i)])
    capped.close()  # one more pass at close
    assert capped.deleted_by["max_rows"] == 42
    assert table_rows(path) == 104 - 42
    monkeypatch.undo()  # default chunks: the rest goes at the next open
    again = PredictionLog(path, max_rows=10)
    again.start()
    again.close()
    assert again.deleted_by["max_rows"] == 52
    assert [r["transaction_id"] for r in read_predictions(path)] == [
        f"t{i:08d}" for i in range(94, 104)
    ]


def test_max_age_deletes_old_rows_and_monitoring_still_reads_the_log(tmp_path: Path) -> None:
    from mlref.monitor.log import read_log

    path = tmp_path / "p.sqlite"
    now = time.time()
    log = PredictionLog(path, flush_rows=10, flush_interval_s=60.0, max_age_s=3600.0)
    log.start()
    old = [record(i, ts=now - 7200 + i) for i in range(10)]  # two hours old
    new = [record(i, ts=now - 60 + i) for i in range(10, 20)]
    log.append(old)
    log.append(new)
    log.close()
    frame = read_log(path)
    assert list(frame["transaction_id"]) == [f"t{i:08d}" for i in range(10, 20)]
    assert frame.attrs["feature_names"] == list(NAMES)
    assert log.deleted_by == {"max_rows": 0, "max_age": 10}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_pending_rows": 10, "flush_rows": 20}, "max_pending_rows .* must be >= flush_rows"),
        ({"max_pending_bytes": 0}, "max_pending_bytes must be >= 1"),
        ({"max_rows": 0}, "max_rows must be >= 1"),
        ({"max_age_s": 0.0}, "max_age_s must be > 0"),
        ({"max_file_bytes": 4096}, "max_file_bytes must be >= 65536"),
    ],
)
def test_bad_bounds_are_refused(tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PredictionLog(tmp_path / "p.sqlite", **kwargs)


# -- 5. the sync mode ---------------------------------------------------------------------------
def test_submit_resolves_only_once_the_rows_are_committed(tmp_path: Path) -> None:
    path = tmp_path / "p.sqlite"
    # a flush interval of a minute: only the waiting caller makes the writer commit now
    log = PredictionLog(path, flush_rows=10_000, flush_interval_s=60.0)
    log.start()
    try:
        log.append(rows(0, 3))  # fire-and-forget rows ride along in the same commit
        done = log.submit(rows(3, 2))
        assert done.result(timeout=10) is None
        assert not done.cancel()  # a caller that gives up cannot cancel the writer's result
        # visible to another connection the moment the future resolved
        assert table_rows(path) == 5
        assert log.written == 5
    finally:
        log.close()


def test_submit_into_a_full_file_resolves_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "p.sqlite"
    log = PredictionLog(path, flush_rows=10_000, max_file_bytes=64 * 1024)
    log.start()
    try:
        outcomes = [log.submit(rows(g * 100, 100)).result(timeout=10) for g in range(10)]
    finally:
        log.close()
    assert outcomes[0] is None
    assert outcomes[-1] == "disk_full"
    assert log.dropped_by["disk_full"] == 100 * outcomes.count("disk_full")
    assert log.written == 100 * outcomes.count(None) == table_rows(path)


# -- the document says what the code does ------------------------------------------------------
def test_the_doc_names_every_reason_and_the_defaults() -> None:
    import re

    from mlref.serve.config import ServeConfig

    doc = (Path(__file__).resolve().parents[3] / "docs" / "prediction-log.md").read_text()
    documented = re.findall(r"^\| `([a-z_]+)` \| ", doc, flags=re.MULTILINE)
    assert [r for r in documented if r in DROP_REASONS] == list(DROP_REASONS)
    config = ServeConfig()
    assert f"| {config.log_max_rows:,} |".replace(",", " ") in doc
    assert f"default {config.log_max_pending_rows:,} rows".replace(",", " ") in doc
    assert f"default {config.log_max_pending_bytes // 2**20} MiB" in doc
    assert f"`log_flush_interval_s` ({config.log_flush_interval_s:g} s)" in doc
    assert f"`log_flush_rows` ({config.log_flush_rows})" in doc


def test_a_writer_that_crashes_releases_sync_callers_and_counts_every_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlref.serve import predlog

    def broken(conn: sqlite3.Connection, rows: list[tuple[object, ...]]) -> None:
        raise ZeroDivisionError("a bug, not an SQLite error")

    monkeypatch.setattr(predlog, "_insert", broken)
    log = PredictionLog(tmp_path / "p.sqlite", flush_rows=10_000, flush_interval_s=60.0)
    log.start()
    log.append(rows(0, 3))
    assert log.submit(rows(3, 2)).result(timeout=10) == "write_error"  # never hangs
    wait_until(lambda: log.pending == 0, what="the queue to be counted")
    with pytest.raises(RuntimeError, match="not open"):
        log.append(rows(5, 4))
    log.close()
    assert log.written == 0
    assert log.dropped_by["write_error"] == 5
    assert log.dropped_by["closed"] == 4
