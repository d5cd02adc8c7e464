"""The open-loop generator records every request it sent, answered or not.

A toy HTTP server on 127.0.0.1 (same event loop) leaves chosen requests without an answer:
they must appear in the raw records (status 0, ``TIMEOUT_EXCEPTION``, censored latency of at
least the drain deadline), in ``timed_out`` / ``failed`` / ``error_share``, and in the
percentiles, which therefore cannot read below the deadline. References are recomputed from
the raw records with numpy; no timing is asserted beyond the documented censoring bound."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlref.load import loadgen
from mlref.load.loadgen import TIMEOUT_EXCEPTION
from mlref.load.rawlog import read_raw

RATE = 50.0
DURATION_S = 1.0
DRAIN_S = 0.5
SENT = round(RATE * DURATION_S)


async def _toy_server(answer: Callable[[int], int | None]) -> tuple[asyncio.Server, set[Any]]:
    """HTTP/1.1 keep-alive server: the k-th request (1-based, in arrival order) gets status
    ``answer(k)``, or no answer at all when that is None (the connection stays open)."""
    count = 0
    handlers: set[asyncio.Task[Any]] = set()
    never = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal count
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
                length = int(head.split("content-length:", 1)[1].split("\r\n", 1)[0])
                await reader.readexactly(length)
                count += 1
                status = answer(count)
                if status is None:
                    await never.wait()  # cancelled when the test ends
                body = b'{"score": 0.5}'
                writer.write(
                    f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, handlers


def _run(answer: Callable[[int], int | None], out: Path) -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        server, handlers = await _toy_server(answer)
        port = server.sockets[0].getsockname()[1]
        try:
            return await loadgen.run(
                f"http://127.0.0.1:{port}",
                RATE,
                DURATION_S,
                str(out),
                connections=16,
                seed=1,
                warmup_s=0.0,
                drain_s=DRAIN_S,
            )
        finally:
            server.close()
            for task in handlers:
                task.cancel()
            await asyncio.gather(*handlers, return_exceptions=True)
            await server.wait_closed()

    return asyncio.run(main())


def _tail_reference(raw: pd.DataFrame) -> np.ndarray:
    keep = ((raw["status"] == 200) & (raw["exception"] == "")) | (
        raw["exception"] == TIMEOUT_EXCEPTION
    )
    return raw.loc[keep, "latency_ms"].to_numpy()


def test_unanswered_requests_are_recorded_and_push_p99_to_the_deadline(tmp_path: Path) -> None:
    point = _run(lambda k: None if k % 10 == 0 else 200, tmp_path / "raw")

    assert point["sent"] == SENT
    assert point["completed_ok"] == SENT - SENT // 10
    assert point["errors"] == 0  # timeouts are not errors ...
    assert point["timed_out"] == SENT // 10  # ... they are counted here
    assert point["failed"] == SENT // 10
    assert point["error_share"] == pytest.approx(0.1)
    assert point["completed_ok"] + point["errors"] + point["timed_out"] == point["sent"]
    assert point["latency_censored"] is True

    raw = read_raw(tmp_path / "raw")
    assert len(raw) == SENT  # one line per request sent, the unanswered ones too
    cut = raw[raw["exception"] == TIMEOUT_EXCEPTION]
    assert len(cut) == SENT // 10
    assert set(cut["status"]) == {0}
    assert (cut["latency_ms"] >= DRAIN_S * 1000.0).all()  # censored at the drain deadline

    # the timed-out requests are in the percentiles, at their censored latency
    assert point["p99_ms"] >= DRAIN_S * 1000.0
    tail = _tail_reference(raw)
    assert len(tail) == SENT
    assert point["p99_ms"] == pytest.approx(np.percentile(tail, 99), abs=1e-3)
    assert point["p50_ms"] == pytest.approx(np.percentile(tail, 50), abs=1e-3)
    ok = raw.loc[raw["status"] == 200, "latency_ms"].to_numpy()
    assert point["p99_ok_ms"] == pytest.approx(np.percentile(ok, 99), abs=1e-3)


def test_errors_and_timeouts_are_counted_apart_and_both_fail(tmp_path: Path) -> None:
    def answer(k: int) -> int | None:
        return None if k % 10 == 0 else (500 if k % 10 == 5 else 200)

    point = _run(answer, tmp_path / "raw")
    assert (point["errors"], point["timed_out"], point["failed"]) == (5, 5, 10)
    # benchmarks/bench_server.py's (errors + timed_out) / sent counts each failure once
    assert (point["errors"] + point["timed_out"]) / point["sent"] == point["error_share"] == 0.2
    raw = read_raw(tmp_path / "raw")
    assert len(raw) == SENT
    assert raw["exception"].value_counts().to_dict() == {
        "": 40,
        "HTTP 500": 5,
        TIMEOUT_EXCEPTION: 5,
    }


def test_a_server_that_answers_everything_has_no_censoring(tmp_path: Path) -> None:
    point = _run(lambda k: 200, tmp_path / "raw")
    assert (point["sent"], point["completed_ok"], point["errors"], point["timed_out"]) == (
        SENT,
        SENT,
        0,
        0,
    )
    assert point["error_share"] == 0.0
    assert point["latency_censored"] is False
    raw = read_raw(tmp_path / "raw")
    assert len(raw) == SENT
    assert set(raw["status"]) == {200}
    assert point["p99_ms"] == point["p99_ok_ms"]
    assert point["p99_ms"] == pytest.approx(np.percentile(raw["latency_ms"], 99), abs=1e-3)


def test_drain_deadline_must_be_bounded(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"drain_s must be in \(0, 120\]"):
        asyncio.run(loadgen.run("http://127.0.0.1:9", 10.0, 1.0, str(tmp_path), drain_s=0.0))
    with pytest.raises(SystemExit):
        loadgen.main(["--url", "http://127.0.0.1:9", "--rate", "10", "--drain", "0", "--out", "x"])
    assert not list(tmp_path.iterdir())
