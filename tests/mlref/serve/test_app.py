"""The scoring app over HTTP (httpx + ASGI, lifespan run for real): contract, batching,
failures, shedding, shutdown, prediction log, shadow, metrics, readiness, bad input.

The champion/challenger are real ONNX models (ONNX Runtime). The feature source is the
in-memory ``StateTableSource`` (shared request-time transforms, state in a dict) standing in
for the Feast online store at the boundary.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import numpy as np
import pytest

from mlref.serve.app import ServeConfig, create_app
from mlref.serve.metrics import parse_metrics
from mlref.serve.predlog import read_predictions

pytestmark = pytest.mark.anyio

RESPONSE_KEYS = {
    "transaction_id",
    "score",
    "decision",
    "threshold",
    "model_version",
    "unknown_user",
    "unknown_category",
}


def reference_scores(model: Any, source: Any, bodies: list[dict[str, Any]]) -> np.ndarray:
    """Score the same transactions outside the server: same features, same ONNX model."""
    from mlref.serve.features import request_batch
    from mlref.serve.schemas import Transaction

    frame = source.lookup(request_batch([Transaction.model_validate(b) for b in bodies]))
    x = frame[list(model.feature_names)].to_numpy(dtype=np.float32)
    return np.asarray(model.model.predict(x))


async def test_predict_returns_the_contract_and_the_offline_score(
    settings: Any, champion: Any, features: Any, kit: Any
) -> None:
    app = create_app(settings, model=champion, features=features, config=kit.serve_config())
    bodies = [kit.txn(i) for i in range(6)]
    async with kit.running_app(app) as client:
        responses = [await client.post("/predict", json=b) for b in bodies]
    assert [r.status_code for r in responses] == [200] * 6
    expected = reference_scores(champion, kit.StateTableSource(kit.user_state()), bodies)
    for body, response, score in zip(bodies, responses, expected, strict=True):
        data = response.json()
        assert set(data) == RESPONSE_KEYS
        assert data["transaction_id"] == body["transaction_id"]
        assert data["score"] == pytest.approx(float(score), abs=1e-7)
        assert data["decision"] == (data["score"] >= kit.threshold)
        assert data["threshold"] == kit.threshold
        assert data["model_version"] == "champion-v1"
        assert data["unknown_user"] is False
        assert data["unknown_category"] is False
    # the reference itself agrees with native XGBoost on these inputs (the ONNX is honest)
    assert len({round(float(s), 6) for s in expected}) > 1


async def test_batch_endpoint_scores_like_single_requests_and_flags_unknown_users(
    settings: Any, champion: Any, features: Any, kit: Any
) -> None:
    bodies = [kit.txn(i) for i in range(5)] + [kit.txn(5, user_id=10_000)]
    app = create_app(settings, model=champion, features=features, config=kit.serve_config())
    async with kit.running_app(app) as client:
        batch = await client.post("/predict/batch", json={"transactions": bodies})
        singles = [(await client.post("/predict", json=b)).json() for b in bodies]
    assert batch.status_code == 200
    predictions = batch.json()["predictions"]
    assert [p["transaction_id"] for p in predictions] == [b["transaction_id"] for b in bodies]
    assert predictions == singles
    assert [p["unknown_user"] for p in predictions] == [False] * 5 + [True]
    # the unknown user is scored on the documented defaults, like the offline reference
    expected = reference_scores(champion, kit.StateTableSource(kit.user_state()), bodies)
    assert predictions[-1]["score"] == pytest.approx(float(expected[-1]), abs=1e-7)


async def test_concurrent_requests_are_batched_one_lookup_and_one_model_call_each(
    settings: Any, champion: Any, features: Any, kit: Any
) -> None:
    model, gate = kit.gated(champion)
    app = create_app(
        settings, model=model, features=features, config=kit.serve_config(max_wait_ms=0)
    )
    async with kit.running_app(app) as client:
        gate.gate.clear()
        features.calls.clear()
        gate.calls.clear()
        runtime = app.state.runtime
        first = asyncio.create_task(client.post("/predict", json=kit.txn(0)))
        await kit.wait_for(lambda: len(gate.calls) == 1, what="first batch")
        rest = [asyncio.create_task(client.post("/predict", json=kit.txn(i))) for i in range(1, 40)]
        await kit.wait_for(lambda: runtime.batcher.queue_depth == 39, what="queue to fill")
        gate.gate.set()
        responses = await asyncio.gather(first, *rest)
        metrics = parse_metrics((await client.get("/metrics")).text)
    assert [r.status_code for r in responses] == [200] * 40
    assert gate.calls == [1, 16, 16, 7]  # max_batch_size=16
    assert features.calls == gate.calls  # one feature lookup per batch, same rows
    assert metrics["mlref_batch_size_count"] >= 4
    assert metrics['mlref_batch_size_bucket{le="8.0"}'] < metrics["mlref_batch_size_count"]
    assert metrics['mlref_requests_total{path="/predict",status="200"}'] == 40


async def test_batching_off_scores_every_request_alone(
    settings: Any, champion: Any, features: Any, kit: Any
) -> None:
    model, gate = kit.gated(champion)
    app = create_app(
        settings, model=model, features=features, config=kit.serve_config(batching=False)
    )
    async with kit.running_app(app) as client:
        gate.gate.clear()
        gate.calls.clear()
        first = asyncio.create_task(client.post("/predict", json=kit.txn(0)))
        await kit.wait_for(lambda: len(gate.calls) == 1, what="first call")
        rest = [asyncio.create_task(client.post("/predict", json=kit.txn(i))) for i in range(1, 10)]
        await kit.wait_for(lambda: app.state.runtime.batcher.queue_depth == 9, what="queue")
        gate.gate.set()
        responses = await asyncio.gather(first, *rest)
    assert all(r.status_code == 200 for r in responses)
    assert gate.calls == [1] * 10


async def test_a_failing_model_fails_exactly_its_batch_and_the_next_one_succeeds(
    settings: Any, champion: Any, features: Any, kit: Any, caplog: pytest.LogCaptureFixture
) -> None:
    model, gate = kit.gated(champion, fail_calls={3})  # call 1 is the warm-up
    gate.gate.clear()
    app = create_app(
        settings, model=model, features=features, config=kit.serve_config(max_wait_ms=0)
    )

    async def warm() -> None:
        await kit.wait_for(lambda: len(gate.calls) == 1, what="warm-up")
        gate.gate.set()

    warm_task = asyncio.create_task(warm())
    async with kit.running_app(app) as client:
        await warm_task
        gate.gate.clear()
        first = asyncio.create_task(client.post("/predict", json=kit.txn(0)))
        await kit.wait_for(lambda: len(gate.calls) == 2, what="batch 1 running")
        doomed = [asyncio.create_task(client.post("/predict", json=kit.txn(i))) for i in (1, 2, 3)]
        await kit.wait_for(lambda: app.state.runtime.batcher.queue_depth == 3, what="queue")
        gate.gate.set()
        ok = await first
        failed = await asyncio.gather(*doomed)
        after = await client.post("/predict", json=kit.txn(4))
        metrics = parse_metrics((await client.get("/metrics")).text)
    assert ok.status_code == 200
    assert [r.status_code for r in failed] == [500, 500, 500]
    logged = caplog.text
    for r in failed:  # the client gets its request id; the cause goes to the log under it
        rid = r.json()["request_id"]
        assert r.headers["x-request-id"] == rid
        assert "injected failure" not in r.text
        assert f"request {rid}: 500" in logged
    assert "injected failure on model call 3" in logged
    assert "batch of 3 requests" in logged
    assert after.status_code == 200
    assert metrics["mlref_batch_errors_total"] == 1


async def test_full_queue_sheds_503_with_retry_after_and_every_request_is_answered(
    settings: Any, champion: Any, features: Any, kit: Any
) -> None:
    model, gate = kit.gated(champion)
    config = kit.serve_config(max_batch_size=2, max_queue=4, max_batch_request=4, max_wait_ms=0)
    app = create_app(settings, model=model, features=features, config=config)
    async with kit.running_app(app) as client:
        gate.gate.clear()
        gate.calls.clear()
        tasks = [asyncio.create_task(client.post("/predict", json=kit.txn(0)))]
        await kit.wait_for(lambda: len(gate.calls) == 1, what="first batch running")
        tasks += [
            asyncio.create_task(client.post("/predict", json=kit.txn(i))) for i in range(1, 20)
        ]
        # the sheds are answered while the model is still blocked: nothing waits for room
        await kit.wait_for(lambda: sum(t.done() for t in tasks) >= 15, what="shed answers")
        assert gate.gate.is_set() is False
        gate.gate.set()
        responses = await asyncio.wait_for(asyncio.gather(*tasks), 20)
        metrics = parse_metrics((await client.get("/metrics")).text)
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 503}
    shed = [r for r in responses if r.status_code == 503]
    assert statuses.count(200) == 5  # one running + a full queue of 4
    assert len(shed) == 15
    for r in shed:
        assert r.headers["retry-after"] == "1"
        assert "queue full" in r.json()["detail"]
    assert metrics["mlref_shed_total"] == 15
    assert metrics['mlref_requests_total{path="/predict",status="503"}'] == 15


async def test_shutdown_drains_accepted_requests_and_logs_every_prediction(
    settings: Any, champion: Any, features: Any, kit: Any
) -> None:
    import httpx

    model, gate = kit.gated(champion)
    config = kit.serve_config(max_wait_ms=1000, log_flush_rows=1000, log_flush_interval_s=30)
    app = create_app(settings, model=model, features=features, config=config)
    runtime = app.state.runtime
    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://mlref.test") as client,
        app.router.lifespan_context(app),
    ):
        await kit.wait_ready(client, 20)
        gate.gate.clear()
        accepted = [
            asyncio.create_task(client.post("/predict", json=kit.txn(i))) for i in range(25)
        ]
        batch = asyncio.create_task(
            client.post("/predict/batch", json={"transactions": [kit.txn(i) for i in (90, 91)]})
        )
        await kit.wait_for(
            lambda: runtime.batcher.queue_depth + runtime.batcher.in_flight == 27,
            what="all requests accepted",
        )
        stopping = asyncio.create_task(runtime.stop())
        await kit.wait_for(lambda: runtime.closing, what="closing")
        refused = await client.post("/predict", json=kit.txn(99))
        ready = await client.get("/readyz")
        gate.gate.set()
        responses = await asyncio.wait_for(asyncio.gather(*accepted, batch), 20)
        await asyncio.wait_for(stopping, 20)
    assert refused.status_code == 503
    assert "shutting down" in refused.json()["detail"]
    assert ready.status_code == 503
    assert [r.status_code for r in responses] == [200] * 26
    rows = read_predictions(settings.prediction_log)
    logged = sorted(r["transaction_id"] for r in rows)
    assert logged == sorted([kit.txn(i)["transaction_id"] for i in (*range(25), 90, 91)])


async def test_prediction_log_rows_follow_the_contract(
    settings: Any, champion: Any, features: Any, kit: Any
) -> None:
    bodies = [kit.txn(i) for i in range(3)] + [kit.txn(3, user_id=424242)]
    app = create_app(settings, model=champion, features=features, config=kit.serve_config())
    async with kit.running_app(app) as client:
        served = (await client.post("/predict/batch", json={"transactions": bodies})).json()
    rows = read_predictions(settings.prediction_log)
    assert len(rows) == 4
    by_id = {r["transaction_id"]: r for r in rows}
    for body, prediction in zip(bodies, served["predictions"], strict=True):
        row = by_id[body["transaction_id"]]
        assert row["user_id"] == body["user_id"]
        assert row["score"] == prediction["score"]
        assert row["decision"] == int(prediction["decision"])
        assert row["threshold"] == kit.threshold
        assert row["model_version"] == "champion-v1"
        assert row["unknown_user"] == int(prediction["unknown_user"])
        assert row["shadow_score"] is None
        assert row["shadow_version"] is None
        assert row["latency_ms"] > 0
        assert row["batch_size"] == 4  # the call's: latency_ms is the whole call's
        assert row["event_timestamp"] == pytest.approx(
            np.datetime64(body["event_timestamp"][:19]).astype("datetime64[s]").astype(float)
        )
        feats = json.loads(row["features"])
        assert list(feats) == list(champion.feature_names)
    assert len({r["request_id"] for r in rows}) == 4
    # unknown user: missing averages are stored as JSON null, not NaN
    unknown = json.loads(by_id[bodies[-1]["transaction_id"]]["features"])
    assert unknown["avg_order_30d"] is None
    assert unknown["txn_velocity_24h"] == 0.0


async def test_shadow_score_is_logged_but_never_returned(
    settings: Any, champion: Any, challenger: Any, features: Any, kit: Any
) -> None:
    bodies = [kit.txn(i) for i in range(8)]
    app = create_app(
        settings, model=champion, features=features, shadow=challenger, config=kit.serve_config()
    )
    async with kit.running_app(app) as client:
        ready = (await client.get("/readyz")).json()
        responses = await asyncio.gather(*(client.post("/predict", json=b) for b in bodies))
    assert ready["shadow_version"] == "challenger-v2"
    for r in responses:
        assert r.status_code == 200
        assert set(r.json()) == RESPONSE_KEYS
        assert r.json()["model_version"] == "champion-v1"
    rows = {r["transaction_id"]: r for r in read_predictions(settings.prediction_log)}
    source = kit.StateTableSource(kit.user_state())
    champion_ref = reference_scores(champion, source, bodies)
    shadow_ref = reference_scores(challenger, source, bodies)
    assert not np.allclose(champion_ref, shadow_ref)  # two different models
    for body, response, c, s in zip(bodies, responses, champion_ref, shadow_ref, strict=True):
        row = rows[body["transaction_id"]]
        assert response.json()["score"] == pytest.approx(float(c), abs=1e-7)
        assert row["score"] == pytest.approx(float(c), abs=1e-7)
        assert row["shadow_score"] == pytest.approx(float(s), abs=1e-7)
        assert row["shadow_version"] == "challenger-v2"


async def test_a_failing_shadow_model_never_touches_the_caller(
    settings: Any, champion: Any, challenger: Any, features: Any, kit: Any
) -> None:
    shadow, _gate = kit.gated(challenger, fail_calls={2})  # call 1 is the warm-up
    app = create_app(
        settings, model=champion, features=features, shadow=shadow, config=kit.serve_config()
    )
    async with kit.running_app(app) as client:
        response = await client.post("/predict", json=kit.txn(1))
        metrics = parse_metrics((await client.get("/metrics")).text)
    assert response.status_code == 200
    assert metrics["mlref_shadow_errors_total"] == 1
    (row,) = read_predictions(settings.prediction_log)
    assert row["shadow_score"] is None
    assert row["score"] == response.json()["score"]


async def test_readyz_is_503_while_loading_and_200_after(
    settings: Any, champion: Any, features: Any, kit: Any
) -> None:
    import httpx

    model, gate = kit.gated(champion)
    gate.gate.clear()  # the warm-up prediction blocks: start-up is "loading"
    app = create_app(settings, model=model, features=features, config=kit.serve_config())
    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://mlref.test") as client,
        app.router.lifespan_context(app),
    ):
        alive = await client.get("/healthz")
        loading = await client.get("/readyz")
        early = await client.post("/predict", json=kit.txn(0))
        gate.gate.set()
        await kit.wait_ready(client, 20)
        ready = await client.get("/readyz")
    assert alive.status_code == 200
    assert alive.json() == {"status": "ok"}
    assert loading.status_code == 503
    assert loading.json()["reason"] == "loading the model and the feature store"
    assert early.status_code == 503
    assert early.headers["retry-after"] == "1"
    assert "still loading" in early.json()["detail"]
    assert ready.status_code == 200
    assert ready.json()["model_version"] == "champion-v1"


async def test_readyz_reports_a_failed_start_up(
    settings: Any, champion: Any, kit: Any, caplog: pytest.LogCaptureFixture
) -> None:
    import httpx

    # no feature source given and no Feast repo under the workdir
    app = create_app(settings, model=champion, config=kit.serve_config())
    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://mlref.test") as client,
        app.router.lifespan_context(app),
    ):
        await kit.wait_for(lambda: app.state.runtime.load_error is not None, what="load error")
        ready = await client.get("/readyz")
        predict = await client.post("/predict", json=kit.txn(0))
    assert ready.status_code == 503
    # the reason is public: the path and the cause are in the server log only
    assert ready.json()["reason"].startswith("start-up failed (attempt ")
    assert str(settings.workdir) not in ready.text
    assert "no feature repo at" in caplog.text
    assert "build it first" in caplog.text
    assert predict.status_code == 503
    assert "start-up failed" in predict.json()["detail"]
    assert str(settings.workdir) not in predict.text


async def test_model_from_a_path_in_the_config(
    settings: Any, champion_onnx: Any, features: Any, kit: Any
) -> None:
    config = kit.serve_config(model_path=champion_onnx.onnx_path)
    app = create_app(settings, features=features, config=config)
    async with kit.running_app(app) as client:
        response = await client.post("/predict", json=kit.txn(2))
    assert response.status_code == 200
    assert response.json()["model_version"] == f"{champion_onnx.onnx_path.stem}"
    x = kit.StateTableSource(kit.user_state()).lookup
    expected = champion_onnx.native.predict_proba(
        _frame_for(x, kit.txn(2))[list(champion_onnx.feature_names)]
    )[:, 1]
    assert response.json()["score"] == pytest.approx(float(expected[0]), abs=1e-5)


def _frame_for(lookup: Any, body: dict[str, Any]) -> Any:
    from mlref.serve.features import request_batch
    from mlref.serve.schemas import Transaction

    return lookup(request_batch([Transaction.model_validate(body)]))


async def test_metrics_exposition(settings: Any, champion: Any, features: Any, kit: Any) -> None:
    app = create_app(settings, model=champion, features=features, config=kit.serve_config())
    async with kit.running_app(app) as client:
        for i in range(3):
            await client.post("/predict", json=kit.txn(i))
        await client.post("/predict", json={"bad": 1})
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    assert "# TYPE mlref_request_latency_seconds histogram" in text
    m = parse_metrics(text)
    assert m['mlref_requests_total{path="/predict",status="200"}'] == 3
    assert m['mlref_requests_total{path="/predict",status="422"}'] == 1
    count = m['mlref_request_latency_seconds_count{path="/predict"}']
    assert count == 4
    assert m['mlref_request_latency_seconds_bucket{le="+Inf",path="/predict"}'] == count
    buckets = [
        v
        for k, v in m.items()
        if k.startswith("mlref_request_latency_seconds_bucket{") and k.endswith(',path="/predict"}')
    ]
    assert len(buckets) == 14
    assert buckets == sorted(buckets)  # cumulative
    assert m["mlref_queue_depth"] == 0
    assert m["mlref_ready"] == 1
    assert m['mlref_model_info{model_version="champion-v1",shadow_version=""}'] == 1


def test_config_from_settings_and_its_checks(settings: Any) -> None:
    config = ServeConfig.from_settings(settings.with_(max_batch_size=7), max_batch_request=9)
    assert config.max_batch_size == 7
    assert config.max_wait_ms == settings.max_wait_ms
    assert config.max_queue == settings.max_queue
    assert config.max_batch_request == 9
    with pytest.raises(ValueError, match="could never be admitted"):
        ServeConfig(max_queue=10, max_batch_request=11)


# -- bad input ----------------------------------------------------------------------------

BAD_BODIES = [
    pytest.param(
        "missing user_id",
        lambda t: {k: v for k, v in t.items() if k != "user_id"},
        422,
        "user_id: Field required",
        id="missing-field",
    ),
    pytest.param(
        "user_id as text",
        lambda t: {**t, "user_id": "abc"},
        422,
        "user_id: Input should be a valid integer",
        id="wrong-type",
    ),
    pytest.param(
        "amount as text",
        lambda t: {**t, "amount": "12.5"},
        422,
        "amount: Input should be a valid number",
        id="amount-text",
    ),
    pytest.param(
        "negative amount",
        lambda t: {**t, "amount": -3.0},
        422,
        "amount: Input should be greater than or equal to 0",
        id="negative-amount",
    ),
    pytest.param(
        "naive timestamp",
        lambda t: {**t, "event_timestamp": "2026-03-01T12:00:00"},
        422,
        "event_timestamp: Input should have timezone info",
        id="naive-timestamp",
    ),
    pytest.param(
        "unknown field",
        lambda t: {**t, "card_number": "4111"},
        422,
        "card_number: Extra inputs are not permitted",
        id="extra-field",
    ),
]


@pytest.mark.parametrize(("label", "mutate", "status", "message"), BAD_BODIES)
async def test_bad_transaction_is_refused_with_field_and_reason(
    settings: Any,
    champion: Any,
    features: Any,
    kit: Any,
    label: str,
    mutate: Any,
    status: int,
    message: str,
) -> None:
    app = create_app(settings, model=champion, features=features, config=kit.serve_config())
    async with kit.running_app(app) as client:
        single = await client.post("/predict", json=mutate(kit.txn(0)))
        in_batch = await client.post(
            "/predict/batch", json={"transactions": [kit.txn(1), mutate(kit.txn(2))]}
        )
        good = await client.post("/predict", json=kit.txn(0))
    assert single.status_code == status, label
    assert message in single.json()["detail"]
    field = message.split(":")[0]
    assert single.json()["errors"][0]["field"] == field
    assert in_batch.status_code == status
    assert f"transactions[1].{message}" in in_batch.json()["detail"]
    assert good.status_code == 200


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("NaN", "amount: Input should be a finite number"),
        ("Infinity", "amount: Input should be a finite number"),
        ("1e999", "amount: Input should be a finite number"),
    ],
)
async def test_non_finite_amount_is_422(
    settings: Any, champion: Any, features: Any, kit: Any, raw: str, message: str
) -> None:
    body = json.dumps({**kit.txn(0), "amount": "__AMOUNT__"}).replace('"__AMOUNT__"', raw)
    app = create_app(settings, model=champion, features=features, config=kit.serve_config())
    async with kit.running_app(app) as client:
        response = await client.post(
            "/predict", content=body, headers={"content-type": "application/json"}
        )
    assert raw in body
    assert response.status_code == 422
    assert message in response.json()["detail"]


@pytest.mark.parametrize(
    ("content", "content_type", "message"),
    [
        ("{not json", "application/json", "request body is not valid JSON"),
        ("transaction_id=t1&user_id=3", "application/x-www-form-urlencoded", "must be JSON"),
        ("", "application/json", "request body is empty"),
    ],
)
async def test_non_json_body_is_400(
    settings: Any,
    champion: Any,
    features: Any,
    kit: Any,
    content: str,
    content_type: str,
    message: str,
) -> None:
    app = create_app(settings, model=champion, features=features, config=kit.serve_config())
    async with kit.running_app(app) as client:
        response = await client.post(
            "/predict", content=content, headers={"content-type": content_type}
        )
        valid_json_wrong_shape = await client.post("/predict", json=[1, 2])
    assert response.status_code == 400
    assert message in response.json()["detail"]
    assert valid_json_wrong_shape.status_code == 422  # JSON, but not a transaction object


async def test_oversized_and_empty_batches(
    settings: Any, champion: Any, features: Any, kit: Any
) -> None:
    app = create_app(
        settings, model=champion, features=features, config=kit.serve_config(max_batch_request=5)
    )
    async with kit.running_app(app) as client:
        over = await client.post(
            "/predict/batch", json={"transactions": [kit.txn(i) for i in range(6)]}
        )
        at_limit = await client.post(
            "/predict/batch", json={"transactions": [kit.txn(i) for i in range(5)]}
        )
        huge = await client.post("/predict/batch", content=b'{"transactions": [' + b" " * 20_000)
        empty = await client.post("/predict/batch", json={"transactions": []})
    assert over.status_code == 413
    assert "batch of 6 transactions exceeds the limit of 5" in over.json()["detail"]
    assert at_limit.status_code == 200
    assert len(at_limit.json()["predictions"]) == 5
    assert huge.status_code == 413  # refused by size before parsing
    assert empty.status_code == 422
    assert "transactions: List should have at least 1 item" in empty.json()["detail"]


async def test_bad_requests_do_not_disturb_good_ones_batched_with_them(
    settings: Any, champion: Any, features: Any, kit: Any
) -> None:
    model, gate = kit.gated(champion)
    app = create_app(
        settings, model=model, features=features, config=kit.serve_config(max_wait_ms=0)
    )
    async with kit.running_app(app) as client:
        gate.gate.clear()
        gate.calls.clear()
        blocker = asyncio.create_task(client.post("/predict", json=kit.txn(0)))
        await kit.wait_for(lambda: len(gate.calls) == 1, what="blocker running")
        good = [asyncio.create_task(client.post("/predict", json=kit.txn(i))) for i in range(1, 6)]
        bad = [
            asyncio.create_task(client.post("/predict", json={**kit.txn(9), "amount": -1})),
            asyncio.create_task(client.post("/predict", content="{oops")),
            asyncio.create_task(client.post("/predict", json=kit.txn(10, user_id=777_777))),
        ]
        await kit.wait_for(lambda: all(t.done() for t in bad[:2]), what="bad answered")
        await kit.wait_for(lambda: app.state.runtime.batcher.queue_depth == 6, what="queue")
        gate.gate.set()
        good_responses = await asyncio.gather(blocker, *good)
        bad_responses = await asyncio.gather(*bad)
    assert [r.status_code for r in good_responses] == [200] * 6
    assert [r.status_code for r in bad_responses] == [422, 400, 200]
    assert bad_responses[2].json()["unknown_user"] is True
    assert all(r.json()["unknown_user"] is False for r in good_responses)
    assert gate.calls == [1, 6]  # 5 good + the unknown user scored together


async def test_openapi_documents_the_scoring_routes(
    settings: Any, champion: Any, features: Any, kit: Any
) -> None:
    """The scoring routes are Starlette routes (lean hot path) but the API document still
    describes them with their request and response schemas."""
    app = create_app(settings, model=champion, features=features, config=kit.serve_config())
    async with kit.running_app(app) as client:
        doc = (await client.get("/openapi.json")).json()
    single = doc["paths"]["/predict"]["post"]
    batch = doc["paths"]["/predict/batch"]["post"]
    assert single["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/Transaction"
    )
    assert single["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/Prediction"
    )
    assert batch["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/BatchRequest"
    )
    assert set(doc["components"]["schemas"]["Prediction"]["properties"]) == RESPONSE_KEYS
    assert {"/healthz", "/readyz", "/metrics"} <= set(doc["paths"])


class _BrokenSource:
    """A feature source that breaks the lookup contract in a chosen way."""

    def __init__(self, inner: Any, how: str) -> None:
        self.inner = inner
        self.how = how

    def lookup(self, batch: Any) -> Any:
        frame = self.inner.lookup(batch)
        if self.how == "short":
            return frame.iloc[:-1]
        return frame.drop(columns=["log_amount"])


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("short", "returned [1] rows for 2 requests"),
        ("column", "lacks columns ['log_amount']"),
    ],
)
async def test_a_feature_source_breaking_the_contract_fails_the_batch_loudly(
    settings: Any,
    champion: Any,
    features: Any,
    kit: Any,
    how: str,
    message: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Misaligned or missing model inputs are never scored: the batch fails, the reason in the
    server log under the request id (not in the public body)."""
    app = create_app(
        settings,
        model=champion,
        features=_BrokenSource(features, how),
        config=kit.serve_config(),
    )
    async with kit.running_app(app) as client:
        response = await client.post(
            "/predict/batch", json={"transactions": [kit.txn(0), kit.txn(1)]}
        )
    assert response.status_code == 500
    assert message not in response.text
    assert f"request {response.json()['request_id']}: 500" in caplog.text
    assert message in caplog.text


async def test_single_request_body_size_is_limited(
    settings: Any, champion: Any, features: Any, kit: Any
) -> None:
    from mlref.serve.app import BYTES_PER_TRANSACTION

    app = create_app(settings, model=champion, features=features, config=kit.serve_config())
    async with kit.running_app(app) as client:
        padded = json.dumps(kit.txn(0), indent=1).encode()
        ok = await client.post(
            "/predict", content=padded, headers={"content-type": "application/json"}
        )
        huge = await client.post(
            "/predict",
            content=b"{" + b" " * (8 * BYTES_PER_TRANSACTION) + b"}",
            headers={"content-type": "application/json"},
        )
    assert ok.status_code == 200
    assert huge.status_code == 413
    assert "exceeds the limit of" in huge.json()["detail"]


async def test_request_ids_are_unique_and_in_arrival_order(
    settings: Any, champion: Any, features: Any, kit: Any
) -> None:
    app = create_app(settings, model=champion, features=features, config=kit.serve_config())
    async with kit.running_app(app) as client:
        for i in range(5):
            assert (await client.post("/predict", json=kit.txn(i))).status_code == 200
    rows = read_predictions(settings.prediction_log)
    ids = [r["request_id"] for r in rows]
    assert [r["transaction_id"] for r in rows] == [kit.txn(i)["transaction_id"] for i in range(5)]
    assert len(set(ids)) == 5
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    assert ids == sorted(ids)


async def test_gc_is_frozen_while_serving_and_released_at_shutdown(
    settings: Any, champion: Any, features: Any, kit: Any
) -> None:
    """Start-up objects leave the collector's view while serving (a full collection over them
    stalled requests ~210 ms), and come back at shutdown. Off unless asked for: the process
    entry points ask, an embedded app (this test process) must not freeze its host."""
    import gc

    assert gc.get_freeze_count() == 0
    assert ServeConfig().gc_freeze is False
    app = create_app(
        settings, model=champion, features=features, config=kit.serve_config(gc_freeze=True)
    )
    async with kit.running_app(app) as client:
        assert (await client.post("/predict", json=kit.txn(0))).status_code == 200
        frozen = gc.get_freeze_count()
    assert frozen > 1000
    assert gc.get_freeze_count() == 0


async def test_an_unknown_category_is_scored_flagged_logged_and_counted(
    settings: Any, champion: Any, features: Any, kit: Any
) -> None:
    """A merchant_category the model was not trained on ("crypto": the demo's injected drift)
    is scored as the unknown category, not refused; the answer, the log and /metrics say so."""
    app = create_app(settings, model=champion, features=features, config=kit.serve_config())
    known, unknown = kit.txn(1), {**kit.txn(2), "merchant_category": "crypto"}
    async with kit.running_app(app) as client:
        single = await client.post("/predict", json=unknown)
        batch = await client.post("/predict/batch", json={"transactions": [known, unknown]})
        metrics = parse_metrics((await client.get("/metrics")).text)
    assert single.status_code == 200
    assert single.json()["unknown_category"] is True
    assert [p["unknown_category"] for p in batch.json()["predictions"]] == [False, True]
    assert single.json()["score"] == batch.json()["predictions"][1]["score"]
    assert metrics["mlref_unknown_category_total"] == 2
    rows = read_predictions(settings.prediction_log)
    assert sorted((r["transaction_id"], r["unknown_category"]) for r in rows) == [
        ("t000001", 0),
        ("t000002", 1),
        ("t000002", 1),
    ]


def test_the_openapi_document_names_the_allowed_categories(
    settings: Any, champion: Any, features: Any, kit: Any
) -> None:
    from mlref.data.columns import CATEGORIES

    app = create_app(settings, model=champion, features=features, config=kit.serve_config())
    schemas = app.openapi()["components"]["schemas"]
    described = schemas["Transaction"]["properties"]["merchant_category"]["description"]
    assert all(c in described for c in CATEGORIES)
    assert "unknown_category" in schemas["Prediction"]["properties"]


async def test_docs_is_an_offline_page_that_points_at_the_openapi_document(
    settings: Any, champion: Any, features: Any, kit: Any
) -> None:
    """/docs answers (it was 404) without the CDN scripts Swagger UI needs: no external URL."""
    app = create_app(settings, model=champion, features=features, config=kit.serve_config())
    async with kit.running_app(app) as client:
        page = await client.get("/docs")
        spec = await client.get("/openapi.json")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert 'href="/openapi.json"' in page.text
    assert "<code>POST /predict</code>" in page.text
    assert "<code>POST /predict/batch</code>" in page.text
    assert "http" not in page.text.replace('href="/openapi.json"', "")  # nothing fetched
    assert spec.status_code == 200
