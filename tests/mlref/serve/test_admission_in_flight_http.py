"""The HTTP layer's in-flight limit through a real uvicorn on 127.0.0.1: a burst that saturates
the event loop, not the batching queue.

Here the model is fast (the real ONNX champion of the serving fixtures) and the HTTP work is
heavy: ``LoopWork`` holds the event loop for ``LOOP_S`` on every scoring request, inside the
admission layer (as parsing a large body, TLS, or authentication would), so the loop, not the
model, sets the capacity (~1 / LOOP_S = 100 req/s) and the batching queue never grows: deadline
admission (``Admission``) sees nothing to refuse. That is the shape of ``nox -s overload`` at
10x on a fast model (issue #21: answered p99 650 ms, nothing shed), made small and set by the
test, not by this shared machine's CPU. The burst comes from the open-loop generator
(``mlref.load.loadgen``) in its own process: 400 req/s for 2 s over up to 256 connections (so
requests wait at the server, where it can see them, not in the generator's pool). Without the
in-flight limit all of them are taken into the app and answered seconds late or not at all
(``test_without_the_limit_the_same_burst_is_answered_seconds_late``); with it the excess gets
503 + ``Retry-After`` at once and the answered stay near the budget. Bounds are generous: they
separate seconds from the budget's order, nothing finer.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from starlette.middleware import Middleware

from mlref.serve.app import create_app
from mlref.serve.metrics import parse_metrics

RATE, SECONDS, CONNECTIONS = 400.0, 2.0, 256
LOOP_S = 0.010
BUDGET_MS = 200.0


class LoopWork:
    """Holds the event loop for ``seconds`` on every scoring request: heavy HTTP work (a
    blocking sleep costs the loop what CPU-bound parsing would, without taxing the shared
    machine's CPU)."""

    def __init__(self, app: Any, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/predict":
            time.sleep(self.seconds)
        await self.app(scope, receive, send)


def heavy_http_app(settings: Any, champion: Any, features: Any, kit: Any, *, limit: bool) -> Any:
    config = kit.serve_config(
        admission=True,  # deadline admission on in both: it is not what this test is about
        in_flight_admission=limit,
        min_in_flight=2,
        p99_budget_ms=BUDGET_MS,
        max_batch_size=16,
        max_wait_ms=0,
        max_queue=1024,
        max_batch_request=50,
    )
    app = create_app(settings, model=champion, features=features, config=config)
    # innermost (Starlette wraps user_middleware in order: the last is nearest the routes),
    # so a request the limit refuses never pays for it
    app.user_middleware.append(Middleware(LoopWork, seconds=LOOP_S))
    return app


def burst(app: Any, kit: Any, tmp_path: Path) -> dict[str, Any]:
    from mlref.load.capacity import run_point
    from mlref.load.rawlog import read_raw
    from mlref.load.traffic import N_USERS_ENV

    env = {**os.environ, N_USERS_ENV: str(kit.n_users)}
    with kit.uvicorn_server(app) as (url, _server), httpx.Client(base_url=url) as client:
        deadline = time.monotonic() + 20
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, "not ready in 20 s"
            time.sleep(0.02)
        for i in range(5):
            assert client.post("/predict", json=kit.txn(i)).status_code == 200
        point = run_point(
            url,
            env,
            tmp_path / "burst",
            rate=RATE,
            duration_s=SECONDS,
            # the first ~0.5 s of a burst onto an idle server is measured apart: in this
            # process (pytest's heap is not frozen out of the collector, as the server's own
            # process does with gc_freeze) a full collection over ~170 new connections held
            # the loop for over a second (answers ~1.9 s late, with or without the limit)
            warmup_s=1.0,
            connections=CONNECTIONS,
            drain_s=5.0,
        )
        time.sleep(0.2)
        refused = client.post("/predict", json=kit.txn(0))  # after the burst: answered
        after = []
        for i in range(20):
            started = time.perf_counter()
            response = client.post("/predict", json=kit.txn(i))
            after.append((time.perf_counter() - started, response.status_code))
        metrics = parse_metrics(client.get("/metrics").text)
    raw = read_raw(tmp_path / "burst")
    statuses = raw["status"].to_numpy()
    return {
        "summary": point.summary,
        "statuses": statuses,
        "ok_ms": raw.loc[statuses == 200, "latency_ms"].to_numpy(),
        "shed_ms": raw.loc[statuses == 503, "latency_ms"].to_numpy(),
        "exceptions": raw["exception"].unique().tolist(),
        "first_after": refused,
        "after": after,
        "metrics": metrics,
    }


@pytest.fixture
def kit_app(settings: Any, champion: Any, features: Any, kit: Any) -> Any:
    return lambda limit: heavy_http_app(settings, champion, features, kit, limit=limit)


def test_a_burst_that_saturates_the_loop_is_shed_before_the_app_and_the_rest_answered_in_time(
    kit_app: Any, kit: Any, tmp_path: Path
) -> None:
    out = burst(kit_app(True), kit, tmp_path)
    summary, statuses = out["summary"], out["statuses"]
    # every request answered, each with 200 or 503: no timeout, no broken connection
    assert summary["timed_out"] == 0, summary
    assert set(statuses.tolist()) <= {200, 503}, out["exceptions"]
    ok_ms, shed_ms = out["ok_ms"], out["shed_ms"]
    # ~100 req/s of loop capacity against 400: most refused, and at least half the capacity
    # answered (the loop's time went to scoring, not to answering 503s)
    assert shed_ms.size >= 0.5 * statuses.size, summary
    assert ok_ms.size >= 0.5 * SECONDS / LOOP_S, summary
    # refused at once, and the answered within twice the budget (without: seconds)
    assert float(np.median(shed_ms)) < BUDGET_MS, f"503 median {np.median(shed_ms):.0f} ms"
    p90 = float(np.percentile(ok_ms, 90))
    assert p90 < 2 * BUDGET_MS, f"answered p90 {p90:.0f} ms"
    # counted under their own reason, every 503 of /predict accounted for by a reason
    metrics = out["metrics"]
    by_reason = {
        r: metrics[f'mlref_requests_shed_total{{reason="{r}"}}']
        for r in ("queue_full", "deadline", "late", "in_flight")
    }
    assert by_reason["in_flight"] > 0, by_reason
    assert sum(by_reason.values()) == metrics['mlref_requests_total{path="/predict",status="503"}']
    # and back to normal at once
    assert out["first_after"].status_code == 200
    assert [status for _, status in out["after"]] == [200] * 20
    assert max(t for t, _ in out["after"]) < 1.0


def test_the_503_says_why_and_when_to_come_back_without_reading_the_body(
    kit_app: Any, kit: Any
) -> None:
    """Every place taken: the next request is refused before its body is read (a body that
    never arrives does not hold the answer back), on a connection that stays usable."""
    import socket

    app = kit_app(True)
    with kit.uvicorn_server(app) as (url, _server), httpx.Client(base_url=url) as client:
        deadline = time.monotonic() + 20
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, "not ready in 20 s"
            time.sleep(0.02)
        port = int(url.rsplit(":", 1)[1])
        limit = app.middleware_stack  # built by the first request
        while not hasattr(limit, "limit"):
            limit = limit.app
        limit = limit.limit
        limit.in_flight = int(limit.limit)  # as if that many were being served
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            # headers announcing a body that is never sent
            sock.sendall(
                b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100\r\n\r\n"
            )
            answer = sock.recv(65536).decode()
        limit.in_flight = 0
        assert answer.startswith("HTTP/1.1 503"), answer
        head, _, body = answer.partition("\r\n\r\n")
        headers = dict(line.split(": ", 1) for line in head.split("\r\n")[1:] if ": " in line)
        headers = {k.lower(): v for k, v in headers.items()}
        assert int(headers["retry-after"]) >= 1
        assert headers["x-request-id"]
        assert "connection" not in headers  # keep-alive: a retry needs no new connection
        payload = json.loads(body)
        assert "overloaded" in payload["detail"]
        assert payload["request_id"] == headers["x-request-id"]
        # probes are never held by the limit
        limit.in_flight = int(limit.limit)
        assert client.get("/readyz").status_code == 200
        limit.in_flight = 0
        assert client.post("/predict", json=kit.txn(1)).status_code == 200


def test_without_the_limit_the_same_burst_is_answered_seconds_late(
    kit_app: Any, kit: Any, tmp_path: Path
) -> None:
    """The first test's burst with the in-flight limit off (deadline admission still on):
    what it guards against. All requests are taken into the app; the loop needs ~8 s for
    them, so the answered p90 is far past twice the budget (or requests time out)."""
    out = burst(kit_app(False), kit, tmp_path)
    ok_ms = out["ok_ms"]
    late = ok_ms.size == 0 or float(np.percentile(ok_ms, 90)) >= 2 * BUDGET_MS
    assert late or out["summary"]["timed_out"] > 0, out["summary"]
    assert out["metrics"]['mlref_requests_shed_total{reason="in_flight"}'] == 0
