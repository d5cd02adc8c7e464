"""Lifecycle hardening: readiness follows the batcher, shutdown is bounded when the model
hangs, the prediction log retries locked writes and exports its counters, and appends that
race ``close()`` are never lost silently.

Real parts throughout: the ONNX champion (ONNX Runtime) behind the app, a real SQLite file
(the lock comes from a second real connection), the real ``BatchingPredictor``. Faults are
injected at the boundary only: a model wrapper that blocks on an event, a queue wrapper that
pauses one ``put`` to force the append/close interleaving.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlref.serve.app import create_app
from mlref.serve.batching import BatchingPredictor, PredictorClosed
from mlref.serve.metrics import parse_metrics
from mlref.serve.predlog import PredictionLog, PredictionRecord, features_json, read_predictions

WRITTEN = "mlref_prediction_log_rows_written_total"
DROPPED = 'mlref_prediction_log_rows_dropped_total{reason="locked"}'


def record(i: int) -> PredictionRecord:
    return PredictionRecord(
        request_id=f"r{i}",
        ts=1_772_000_000.0 + i,
        event_timestamp=1_772_000_000.0 + i - 0.5,
        transaction_id=f"t{i}",
        user_id=i % 7,
        features=features_json(("a", "b"), [float(i), 0.5]),
        score=i / 1000.0,
        decision=int(i % 2),
        threshold=0.5,
        model_version="v1",
        latency_ms=1.5,
        shadow_score=None,
        shadow_version=None,
        unknown_user=0,
    )


def wait_until(predicate: Any, timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.005)


def exclusive_lock(path: Path) -> sqlite3.Connection:
    """Another connection holding the database's write lock (as a second writer would)."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=5.0)
    conn.execute("BEGIN EXCLUSIVE")
    return conn


# -- 1. readiness follows the batcher ------------------------------------------------------
@pytest.mark.anyio
async def test_readyz_is_503_naming_the_batcher_when_its_worker_died(
    settings: Any, champion: Any, features: Any, kit: Any
) -> None:
    app = create_app(settings, model=champion, features=features, config=kit.serve_config())
    runtime = app.state.runtime
    async with kit.running_app(app) as client:
        healthy = await client.get("/readyz")
        ready_before = parse_metrics((await client.get("/metrics")).text)["mlref_ready"]
        worker = runtime.batcher._worker  # the defect: the worker task dies
        worker.cancel()
        await asyncio.wait({worker}, timeout=5)
        assert worker.done()
        ready = await client.get("/readyz")
        scored = await client.post("/predict", json=kit.txn(1))
        ready_after = parse_metrics((await client.get("/metrics")).text)["mlref_ready"]
    assert healthy.status_code == 200
    assert healthy.json()["ready"] is True
    assert ready_before == 1
    assert scored.status_code == 503  # every request is refused ...
    assert ready.status_code == 503  # ... so readiness must say so
    body = ready.json()
    assert body["ready"] is False
    assert "batcher" in body["reason"]
    assert ready.headers["retry-after"] == "1"
    assert ready_after == 0


@pytest.mark.anyio
async def test_callers_queued_when_the_worker_dies_are_answered_not_stranded() -> None:
    release = threading.Event()

    def process(items: list[int]) -> list[int]:
        release.wait(10)
        return [i * 2 for i in items]

    predictor: BatchingPredictor[int, int] = BatchingPredictor(
        process, max_batch_size=1, max_queue=8, name="predict"
    )
    predictor.start()
    try:
        calls = [asyncio.create_task(predictor.submit(i)) for i in range(3)]
        deadline = time.monotonic() + 5
        while predictor.in_flight == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        assert predictor.in_flight == 1
        assert predictor.queue_depth == 2
        predictor._worker.cancel()  # type: ignore[union-attr]
        results = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 5)
    finally:
        release.set()
    assert all(isinstance(r, PredictorClosed) for r in results), results
    assert not predictor.accepting
    assert predictor.worker_failure is not None
    assert "cancelled" in predictor.worker_failure


@pytest.mark.anyio
async def test_a_clean_stop_is_not_reported_as_a_worker_failure() -> None:
    predictor: BatchingPredictor[int, int] = BatchingPredictor(lambda xs: [x + 1 for x in xs])
    predictor.start()
    assert await predictor.submit(1) == 2
    await predictor.stop()
    assert not predictor.accepting
    assert predictor.worker_failure is None


# -- 2. shutdown is bounded ------------------------------------------------------------------
class HangingModel:
    """A real model that, once ``hang`` is set, blocks every call on ``release`` (which the
    test only sets at cleanup, so the thread can end before the process exits)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.hang = threading.Event()
        self.release = threading.Event()
        self.entered = threading.Event()

    def predict(self, x: np.ndarray) -> np.ndarray:
        if self.hang.is_set():
            self.entered.set()
            self.release.wait(60)
        return self.inner.predict(x)


@pytest.mark.anyio
async def test_shutdown_is_bounded_when_the_model_hangs_and_still_flushes_the_log(
    settings: Any, champion: Any, features: Any, kit: Any, caplog: pytest.LogCaptureFixture
) -> None:
    import httpx

    hanging = HangingModel(champion.model)
    model = replace(champion, model=hanging)
    timeout = 1.0
    # rows reach the file only at close(): the flush must happen after the abandoned batch
    config = kit.serve_config(
        max_wait_ms=0.0,
        max_batch_size=1,
        log_flush_rows=1000,
        log_flush_interval_s=60.0,
        graceful_timeout_s=timeout,
    )
    app = create_app(settings, model=model, features=features, config=config)
    runtime = app.state.runtime
    transport = httpx.ASGITransport(app=app)
    caplog.set_level(logging.WARNING, logger="mlref.serve.runtime")
    try:
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://mlref.test") as client,
            app.router.lifespan_context(app),
        ):
            await kit.wait_ready(client, 20)
            done = [await client.post("/predict", json=kit.txn(i)) for i in range(3)]
            hanging.hang.set()
            stuck = asyncio.create_task(client.post("/predict", json=kit.txn(10)))
            await asyncio.to_thread(hanging.entered.wait, 10)
            queued = asyncio.create_task(client.post("/predict", json=kit.txn(11)))
            await kit.wait_for(lambda: runtime.batcher.queue_depth == 1, what="one queued")
            started = time.monotonic()
            await asyncio.wait_for(asyncio.shield(asyncio.ensure_future(runtime.stop())), 8)
            elapsed = time.monotonic() - started
            answers = await asyncio.wait_for(asyncio.gather(stuck, queued), 5)
    finally:
        hanging.release.set()
    assert [r.status_code for r in done] == [200] * 3
    assert elapsed < timeout + 2.0, f"shutdown took {elapsed:.1f} s"
    assert [r.status_code for r in answers] == [503, 503]
    for answer in answers:
        assert "stopped" in answer.json()["detail"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("2 requests abandoned" in m for m in warnings), warnings
    rows = read_predictions(settings.prediction_log)
    assert sorted(r["transaction_id"] for r in rows) == [
        kit.txn(i)["transaction_id"] for i in (0, 1, 2)
    ]


@pytest.mark.anyio
async def test_a_clean_shutdown_abandons_nothing(
    settings: Any, champion: Any, features: Any, kit: Any, caplog: pytest.LogCaptureFixture
) -> None:
    config = kit.serve_config(
        log_flush_rows=1000, log_flush_interval_s=60.0, graceful_timeout_s=1.0
    )
    app = create_app(settings, model=champion, features=features, config=config)
    caplog.set_level(logging.WARNING, logger="mlref.serve.runtime")
    async with kit.running_app(app) as client:
        answers = [await client.post("/predict", json=kit.txn(i)) for i in range(4)]
    assert [r.status_code for r in answers] == [200] * 4
    assert not [r for r in caplog.records if "abandoned" in r.getMessage()]
    assert len(read_predictions(settings.prediction_log)) == 4


# -- 3. locked writes are retried, drops are counted and exported -------------------------
def test_retries_wait_a_doubling_backoff_capped_at_the_maximum(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The retry policy as configured: write_retries retries after the first attempt, waiting
    retry_backoff_s, then twice as long each time, never more than MAX_RETRY_BACKOFF_S."""
    from mlref.serve import predlog

    monkeypatch.setattr(predlog, "MAX_RETRY_BACKOFF_S", 0.05)  # the real cap (2 s) is slow
    caplog.set_level(logging.WARNING, logger="mlref.serve.predlog")
    path = tmp_path / "p.sqlite"
    log = PredictionLog(
        path,
        flush_rows=1,
        flush_interval_s=60.0,
        busy_timeout_s=0.0,
        write_retries=4,
        retry_backoff_s=0.015,
    )
    log.start()
    lock = exclusive_lock(path)
    try:
        log.append([record(1)])
        wait_until(lambda: log.dropped == 1, what="the row to be dropped")
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    log.close()
    retries = [r.args for r in caplog.records if r.getMessage().startswith("prediction log: w")]
    assert [(a[2], a[3]) for a in retries] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert [a[4] for a in retries] == pytest.approx([0.015, 0.03, 0.05, 0.05])
    (dropped,) = [r.getMessage() for r in caplog.records if "rows dropped" in r.getMessage()]
    assert "1 rows dropped (locked), 5 attempts" in dropped
    assert log.retried == 4


def test_a_lock_held_past_the_retries_drops_and_counts_the_rows(tmp_path: Path) -> None:
    path = tmp_path / "p.sqlite"
    log = PredictionLog(
        path,
        flush_rows=1,
        flush_interval_s=60.0,
        busy_timeout_s=0.02,
        write_retries=2,
        retry_backoff_s=0.02,
    )
    log.start()
    lock = exclusive_lock(path)
    try:
        log.append([record(i) for i in range(3)])
        wait_until(lambda: log.dropped == 3, what="the rows to be dropped")
        assert log.retried == 2  # two retries after the first attempt, then give up
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    log.append([record(7)])
    log.close()
    assert [r["transaction_id"] for r in read_predictions(path)] == ["t7"]
    assert (log.written, log.dropped) == (1, 3)


def test_a_lock_released_before_the_retries_end_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "p.sqlite"
    log = PredictionLog(
        path,
        flush_rows=1,
        flush_interval_s=60.0,
        busy_timeout_s=0.02,
        write_retries=6,
        retry_backoff_s=0.1,
    )
    log.start()
    lock = exclusive_lock(path)
    try:
        log.append([record(i) for i in range(3)])
        wait_until(lambda: log.retried >= 1, what="a retry")
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    log.close()
    assert [r["transaction_id"] for r in read_predictions(path)] == ["t0", "t1", "t2"]
    assert (log.written, log.dropped) == (3, 0)


@pytest.mark.anyio
async def test_metrics_export_written_and_dropped_log_rows(
    settings: Any, champion: Any, features: Any, kit: Any
) -> None:
    config = kit.serve_config(
        log_flush_rows=1,
        log_flush_interval_s=60.0,
        log_busy_timeout_s=0.02,
        log_write_retries=1,
        log_retry_backoff_s=0.02,
    )
    app = create_app(settings, model=champion, features=features, config=config)
    runtime = app.state.runtime
    async with kit.running_app(app) as client:
        assert (await client.post("/predict", json=kit.txn(0))).status_code == 200
        await kit.wait_for(lambda: runtime.log.written == 1, what="the first row")
        clean = parse_metrics((await client.get("/metrics")).text)
        lock = exclusive_lock(settings.prediction_log)
        try:
            batch = [kit.txn(i) for i in (1, 2)]
            ok = await client.post("/predict/batch", json={"transactions": batch})
            await kit.wait_for(lambda: runtime.log.dropped == 2, what="the rows to be dropped")
            locked = parse_metrics((await client.get("/metrics")).text)
        finally:
            lock.execute("ROLLBACK")
            lock.close()
    assert ok.status_code == 200  # a logging failure never fails the request
    assert (clean[WRITTEN], clean[DROPPED]) == (1, 0)
    assert (locked[WRITTEN], locked[DROPPED]) == (1, 2)
    assert len(read_predictions(settings.prediction_log)) == 1


# -- 4. append racing close -------------------------------------------------------------------
class PausingQueue:
    """Wraps the writer's queue; the first record ``put`` waits (bounded) until ``close()``
    has queued its stop marker, which is the interleaving that lost records."""

    def __init__(self) -> None:
        self.inner: queue.SimpleQueue[object] = queue.SimpleQueue()
        self.records_entered = threading.Event()
        self.stop_put = threading.Event()
        self.paused = False

    def put(self, item: object) -> None:
        if isinstance(item, tuple) and not self.paused:
            self.paused = True
            self.records_entered.set()
            self.stop_put.wait(0.5)  # a fixed log blocks close() meanwhile: the wait times out
        elif not isinstance(item, tuple):
            self.stop_put.set()
        self.inner.put(item)

    def get(self, timeout: float | None = None) -> object:
        return self.inner.get(timeout=timeout)

    def qsize(self) -> int:
        return self.inner.qsize()


def test_records_appended_while_close_runs_are_written_not_lost(tmp_path: Path) -> None:
    path = tmp_path / "p.sqlite"
    log = PredictionLog(path, flush_rows=1000, flush_interval_s=60.0)
    paused = PausingQueue()
    log._queue = paused  # type: ignore[assignment]
    log.start()
    errors: list[BaseException] = []

    def append() -> None:
        try:
            log.append([record(1), record(2)])
        except RuntimeError as exc:
            errors.append(exc)

    appender = threading.Thread(target=append)
    appender.start()
    assert paused.records_entered.wait(5)  # past the closed check, about to enqueue
    closer = threading.Thread(target=log.close)
    closer.start()
    appender.join(10)
    closer.join(10)
    assert not appender.is_alive()
    assert not closer.is_alive()
    written = [r["transaction_id"] for r in read_predictions(path)]
    # the append got past the closed check first, so close() waits for its enqueue: the
    # records go in ahead of the stop marker and are written (before the fix: lost, uncounted)
    assert errors == []
    assert written == ["t1", "t2"]
    assert (log.written, log.dropped) == (2, 0)


def test_append_after_close_counts_the_dropped_records(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path / "p.sqlite")
    log.start()
    log.append([record(0)])
    log.close()
    with pytest.raises(RuntimeError, match="not open; records would be lost"):
        log.append([record(1), record(2)])
    assert (log.written, log.dropped) == (1, 2)


# -- the new knobs refuse unusable values ---------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"write_retries": -1}, "write_retries must be a whole number in 0..10"),
        ({"write_retries": 11}, "write_retries must be a whole number in 0..10"),
        ({"busy_timeout_s": -0.1}, "busy_timeout_s must be >= 0"),
        ({"retry_backoff_s": float("nan")}, "retry_backoff_s must be >= 0"),
    ],
)
def test_prediction_log_refuses_bad_retry_settings(
    tmp_path: Path, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        PredictionLog(tmp_path / "p.sqlite", **kwargs)
    PredictionLog(tmp_path / "p.sqlite", write_retries=0, busy_timeout_s=0.0)  # edges are fine


def test_serve_config_refuses_a_non_positive_graceful_timeout(kit: Any) -> None:
    with pytest.raises(ValueError, match="graceful_timeout_s must be > 0, got 0"):
        kit.serve_config(graceful_timeout_s=0)
    assert kit.serve_config(graceful_timeout_s=0.5).graceful_timeout_s == 0.5
