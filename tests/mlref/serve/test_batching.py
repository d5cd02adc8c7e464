"""BatchingPredictor mechanics, driven directly (no HTTP): the seed's flaws, one test each."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from mlref.serve.batching import (
    BatchFailed,
    BatchInfo,
    BatchingPredictor,
    PredictorClosed,
    QueueFull,
)

pytestmark = pytest.mark.anyio


class Recorder:
    """``process`` for the tests: doubles its inputs, records batches, can block or fail."""

    def __init__(self, *, fail_if: Any = None, wrong_count: bool = False) -> None:
        self.batches: list[list[int]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.fail_if = fail_if
        self.wrong_count = wrong_count
        self.threads: set[str] = set()

    def __call__(self, items: list[int]) -> list[int]:
        self.threads.add(threading.current_thread().name)
        self.batches.append(list(items))
        if not self.gate.wait(timeout=20):
            raise TimeoutError("gate never opened")
        if self.fail_if is not None and self.fail_if(items):
            raise ValueError(f"cannot score {items}")
        if self.wrong_count:
            return [2 * x for x in items[:-1]]
        return [2 * x for x in items]


def infos(predictor: BatchingPredictor[Any, Any]) -> list[BatchInfo]:
    seen: list[BatchInfo] = []
    predictor.add_listener(seen.append)
    return seen


async def until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.002)


def test_construction_needs_no_event_loop_and_checks_arguments() -> None:
    # the seed called get_event_loop() in __init__; ours binds to the loop only in start()
    predictor = BatchingPredictor(Recorder(), max_batch_size=4)
    assert predictor.queue_depth == 0
    assert not predictor.accepting
    with pytest.raises(ValueError, match="max_batch_size must be at least 1"):
        BatchingPredictor(Recorder(), max_batch_size=0)
    with pytest.raises(ValueError, match="max_wait_ms must be a finite number >= 0"):
        BatchingPredictor(Recorder(), max_wait_ms=-1)
    with pytest.raises(ValueError, match="max_queue must be a whole number >= 1"):
        BatchingPredictor(Recorder(), max_queue=0)
    with pytest.raises(RuntimeError, match="no running event loop"):
        predictor.start()


async def test_submit_before_start_is_refused() -> None:
    predictor = BatchingPredictor(Recorder())
    with pytest.raises(PredictorClosed, match="not started"):
        await predictor.submit(1)


async def test_concurrent_requests_form_batches_and_results_keep_order() -> None:
    process = Recorder()
    process.gate.clear()
    async with BatchingPredictor(process, max_batch_size=8, max_wait_ms=0) as predictor:
        seen = infos(predictor)
        first = asyncio.create_task(predictor.submit(0))
        await until(lambda: len(process.batches) == 1)  # worker busy with [0]
        rest = [asyncio.create_task(predictor.submit(i)) for i in range(1, 20)]
        await until(lambda: predictor.queue_depth == 19)
        process.gate.set()
        results = await asyncio.gather(first, *rest)
    assert results == [2 * i for i in range(20)]
    assert [len(b) for b in process.batches] == [1, 8, 8, 3]
    assert [i.size for i in seen] == [1, 8, 8, 3]
    flat = [x for batch in process.batches for x in batch]
    assert flat == list(range(20))  # FIFO
    # process ran in the executor thread, never on the event loop's thread
    assert threading.current_thread().name not in process.threads


async def test_idle_worker_sleeps_without_a_tick() -> None:
    async with BatchingPredictor(Recorder(), max_batch_size=8, max_wait_ms=0) as predictor:
        await asyncio.sleep(0.01)
        before = predictor.wakeups
        await asyncio.sleep(0.3)  # idle: a polling loop would wake here again and again
        assert predictor.wakeups == before
        assert await predictor.submit(3) == 6
        assert predictor.wakeups == before + 1  # woken by the arrival, once


async def test_lone_request_is_dispatched_at_once_with_max_wait_zero() -> None:
    async with BatchingPredictor(Recorder(), max_batch_size=64, max_wait_ms=0) as predictor:
        seen = infos(predictor)
        for i in range(5):
            assert await predictor.submit(i) == 2 * i
            await asyncio.sleep(0.02)  # idle between requests
    assert [i.size for i in seen] == [1] * 5
    # structural: the dispatch did not wait for any timer (generous bound for a loaded box)
    assert max(i.queue_wait_s for i in seen) < 0.25


async def test_full_batch_goes_out_before_max_wait() -> None:
    async with BatchingPredictor(Recorder(), max_batch_size=4, max_wait_ms=5000) as predictor:
        seen = infos(predictor)
        started = time.monotonic()
        results = await asyncio.gather(*(predictor.submit(i) for i in range(4)))
        elapsed = time.monotonic() - started
    assert results == [0, 2, 4, 6]
    assert [i.size for i in seen] == [4]
    assert elapsed < 2.5  # half of max_wait: dispatched because full, not by the deadline


async def test_partial_batch_waits_for_oldest_deadline() -> None:
    async with BatchingPredictor(Recorder(), max_batch_size=64, max_wait_ms=300) as predictor:
        seen = infos(predictor)
        results = await asyncio.gather(*(predictor.submit(i) for i in range(3)))
    assert results == [0, 2, 4]
    assert [i.size for i in seen] == [3]
    assert seen[0].queue_wait_s >= 0.25  # held for max_wait to let the batch fill


async def test_sparse_arrivals_do_not_wait_for_a_batch_that_cannot_fill() -> None:
    """Requests 0.5 s apart with a 300 ms max_wait: once the gaps are known, waiting could
    batch nothing, so each request goes out at once instead of 300 ms late."""
    async with BatchingPredictor(Recorder(), max_batch_size=64, max_wait_ms=300) as predictor:
        seen = infos(predictor)
        for i in range(4):
            assert await predictor.submit(i) == 2 * i
            await asyncio.sleep(0.5)
    assert [i.size for i in seen] == [1] * 4
    assert seen[0].queue_wait_s >= 0.25  # no gap known yet: waited as configured
    assert predictor.skipped_waits == 3
    # structural: not held to the deadline (generous bound for a loaded box)
    assert max(i.queue_wait_s for i in seen[1:]) < 0.15


async def test_failing_batch_fails_exactly_its_requests_and_loop_survives() -> None:
    process = Recorder(fail_if=lambda items: 13 in items)
    process.gate.clear()
    async with BatchingPredictor(process, max_batch_size=4, max_wait_ms=0) as predictor:
        seen = infos(predictor)
        first = asyncio.create_task(predictor.submit(1))
        await until(lambda: len(process.batches) == 1)
        doomed = [asyncio.create_task(predictor.submit(i)) for i in (11, 12, 13)]
        await until(lambda: predictor.queue_depth == 3)
        process.gate.set()
        assert await first == 2
        outcomes = await asyncio.gather(*doomed, return_exceptions=True)
        assert all(isinstance(o, BatchFailed) for o in outcomes)
        assert all("ValueError: cannot score [11, 12, 13]" in str(o) for o in outcomes)
        assert all(isinstance(o.__cause__, ValueError) for o in outcomes)  # type: ignore[union-attr]
        # the next batch is served normally
        assert await predictor.submit(5) == 10
    assert [(i.size, i.error is not None) for i in seen] == [(1, False), (3, True), (1, False)]


async def test_wrong_result_count_fails_the_batch() -> None:
    async with BatchingPredictor(Recorder(wrong_count=True), max_wait_ms=0) as predictor:
        with pytest.raises(BatchFailed, match="returned 0 results for a batch of 1 requests"):
            await predictor.submit(1)


async def test_clean_batch_passes_the_count_check() -> None:
    async with BatchingPredictor(Recorder(), max_wait_ms=0) as predictor:
        assert await predictor.submit_many([1, 2, 3]) == [2, 4, 6]


async def test_cancelled_callers_are_dropped_before_the_batch_runs() -> None:
    process = Recorder()
    process.gate.clear()
    async with BatchingPredictor(process, max_batch_size=8, max_wait_ms=0) as predictor:
        first = asyncio.create_task(predictor.submit(0))
        await until(lambda: len(process.batches) == 1)
        waiting = {i: asyncio.create_task(predictor.submit(i)) for i in range(1, 6)}
        await until(lambda: predictor.queue_depth == 5)
        waiting[2].cancel()
        waiting[4].cancel()
        await until(lambda: predictor.queue_depth == 3)  # their slots are freed at once
        process.gate.set()
        assert await first == 0
        assert [await waiting[i] for i in (1, 3, 5)] == [2, 6, 10]
        for i in (2, 4):
            assert waiting[i].cancelled()
        assert process.batches[1] == [1, 3, 5]
        assert predictor.dropped == 2
        # the worker keeps going, and a caller cancelled mid-batch does not break it either
        process.gate.clear()
        mid = asyncio.create_task(predictor.submit(7))
        await until(lambda: len(process.batches) == 3)
        mid.cancel()
        process.gate.set()
        with pytest.raises(asyncio.CancelledError):
            await mid
        assert await predictor.submit(8) == 16


async def test_full_queue_sheds_at_once_and_admission_is_all_or_nothing() -> None:
    process = Recorder()
    process.gate.clear()
    async with BatchingPredictor(process, max_batch_size=2, max_wait_ms=0, max_queue=3) as pred:
        running = asyncio.create_task(pred.submit(0))
        await until(lambda: len(process.batches) == 1)
        queued = [asyncio.create_task(pred.submit(i)) for i in (1, 2)]
        await until(lambda: pred.queue_depth == 2)
        with pytest.raises(QueueFull, match=r"queue full \(2 of 3 slots taken, 2 requested\)"):
            await pred.submit_many([3, 4])
        assert pred.queue_depth == 2  # nothing of the refused request was enqueued
        queued.append(asyncio.create_task(pred.submit(3)))  # exactly fits
        await until(lambda: pred.queue_depth == 3)
        with pytest.raises(QueueFull):
            await pred.submit(4)
        process.gate.set()
        assert await running == 0
        assert await asyncio.gather(*queued) == [2, 4, 6]


async def test_stop_refuses_new_work_and_drains_every_accepted_request() -> None:
    process = Recorder()
    process.gate.clear()
    predictor = BatchingPredictor(process, max_batch_size=4, max_wait_ms=5000)
    predictor.start()
    accepted = [asyncio.create_task(predictor.submit(i)) for i in range(10)]
    await until(lambda: predictor.queue_depth + predictor.in_flight == 10)
    stopping = asyncio.create_task(predictor.stop())
    await asyncio.sleep(0.01)
    with pytest.raises(PredictorClosed, match="shutting down"):
        await predictor.submit(99)
    started = time.monotonic()
    process.gate.set()
    assert await asyncio.gather(*accepted) == [2 * i for i in range(10)]
    await asyncio.wait_for(stopping, 10)
    assert time.monotonic() - started < 2.5  # drained without waiting max_wait (5 s)
    assert predictor.queue_depth == 0
    with pytest.raises(PredictorClosed):
        await predictor.submit(1)


async def test_event_loop_keeps_running_while_a_batch_is_scored() -> None:
    process = Recorder()
    process.gate.clear()
    async with BatchingPredictor(process, max_wait_ms=0) as predictor:
        pending = asyncio.create_task(predictor.submit(1))
        await until(lambda: len(process.batches) == 1)
        ticks = 0
        for _ in range(5):  # the loop is free although the batch is blocked in its thread
            await asyncio.sleep(0.005)
            ticks += 1
        assert ticks == 5
        assert not pending.done()
        process.gate.set()
        assert await pending == 2


async def test_a_raising_listener_does_not_stop_the_worker() -> None:
    def bad_listener(info: BatchInfo) -> None:
        raise RuntimeError("listener bug")

    async with BatchingPredictor(Recorder(), max_wait_ms=0) as predictor:
        predictor.add_listener(bad_listener)
        assert await predictor.submit(1) == 2
        assert await predictor.submit(2) == 4
