"""The app under a real uvicorn on 127.0.0.1 (ephemeral port): round trip, shadow after the
response, and graceful shutdown through uvicorn's own exit path."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from mlref.serve.app import create_app
from mlref.serve.predlog import read_predictions


def test_round_trip_and_shadow_runs_after_the_response(
    settings: Any, champion: Any, challenger: Any, features: Any, kit: Any
) -> None:
    shadow, gate = kit.gated(challenger)
    app = create_app(
        settings, model=champion, features=features, shadow=shadow, config=kit.serve_config()
    )
    with (
        kit.uvicorn_server(app) as (url, _server),
        httpx.Client(base_url=url, timeout=20) as client,
    ):
        deadline = time.monotonic() + 20
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, "not ready in 20 s"
            time.sleep(0.02)
        assert client.get("/healthz").json() == {"status": "ok"}
        gate.gate.clear()  # the shadow model now blocks
        response = client.post("/predict", json=kit.txn(1))
        # the caller has its answer while the shadow model is still blocked
        assert response.status_code == 200
        assert set(response.json()) == {
            "transaction_id",
            "score",
            "decision",
            "threshold",
            "model_version",
            "unknown_user",
            "unknown_category",
        }
        assert gate.entered.wait(10)
        assert not gate.gate.is_set()
        gate.gate.set()
    (row,) = read_predictions(settings.prediction_log)  # logged with the shadow score
    assert row["score"] == response.json()["score"]
    assert row["shadow_version"] == "challenger-v2"
    assert row["shadow_score"] is not None
    assert row["shadow_score"] != row["score"]


def test_uvicorn_shutdown_drains_accepted_requests(
    settings: Any, champion: Any, features: Any, kit: Any
) -> None:
    model, gate = kit.gated(champion)
    app = create_app(
        settings, model=model, features=features, config=kit.serve_config(max_wait_ms=0)
    )
    runtime = app.state.runtime
    n = 12

    async def scenario(url: str, server: Any) -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            await kit.wait_ready(client, 20)
            gate.gate.clear()
            tasks = [
                asyncio.create_task(client.post("/predict", json=kit.txn(i))) for i in range(n)
            ]
            await kit.wait_for(
                lambda: runtime.batcher.queue_depth + runtime.batcher.in_flight == n,
                what="all accepted",
            )
            server.should_exit = True  # what SIGTERM does
            await asyncio.sleep(0.2)
            assert not any(t.done() for t in tasks)  # still blocked in the model
            gate.gate.set()
            return await asyncio.wait_for(asyncio.gather(*tasks), 20)

    with kit.uvicorn_server(app) as (url, server):
        responses = asyncio.run(scenario(url, server))
    assert [r.status_code for r in responses] == [200] * n
    assert runtime.closing
    rows = read_predictions(settings.prediction_log)
    assert sorted(r["transaction_id"] for r in rows) == sorted(
        kit.txn(i)["transaction_id"] for i in range(n)
    )
