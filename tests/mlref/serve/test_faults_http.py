"""Faults at the HTTP edge, from outside: a client trickling its body (raw socket on
127.0.0.1 against a real uvicorn), what public error bodies say (nothing internal; a request
id whose detail is in the log), and the API doing what its document says.

The model is the real ONNX one; the feature source is the in-memory stand-in (conftest)."""

from __future__ import annotations

import asyncio
import json
import select
import socket
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from mlref.serve.app import create_app
from mlref.serve.run import draining_server

pytestmark = pytest.mark.anyio


def _wait_ready(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while httpx.get(f"{url}/readyz").status_code != 200:
        assert time.monotonic() < deadline, f"not ready in {timeout} s"
        time.sleep(0.02)


def _trickle(url: str, body: bytes, *, every_s: float, give_up_s: float) -> tuple[bytes, float]:
    """Send the headers and then the body one byte every ``every_s`` over a raw socket, until
    the server answers or ``give_up_s`` passes; (what it answered, seconds until then)."""
    parts = urlsplit(url)
    started = time.monotonic()
    with socket.create_connection((parts.hostname, parts.port), timeout=give_up_s) as sock:
        sock.sendall(
            b"POST /predict HTTP/1.1\r\nHost: mlref.test\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)
        )
        answer = b""
        sent = 0
        while time.monotonic() - started < give_up_s:
            readable, _, _ = select.select([sock], [], [], every_s)
            if readable:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
                if b"\r\n\r\n" in answer and _complete(answer):
                    break
                continue
            if sent < len(body) - 1:  # never the last byte: the body stays incomplete
                try:
                    sock.sendall(body[sent : sent + 1])
                except OSError:
                    break
                sent += 1
        return answer, time.monotonic() - started


def _complete(raw: bytes) -> bool:
    head, _, rest = raw.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(rest) >= int(line.split(b":")[1])
    return False


def _parse(raw: bytes) -> tuple[int, dict[str, str], Any]:
    head, _, rest = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (x.split(":", 1) for x in lines[1:])}
    return status, headers, json.loads(rest)


def test_a_body_trickled_past_the_limit_is_answered_408_with_the_json_error_body(
    settings: Any, champion: Any, features: Any, kit: Any
) -> None:
    config = kit.serve_config(body_timeout_s=1.0)
    app = create_app(settings, model=champion, features=features, config=config)
    body = json.dumps(kit.txn(1)).encode()
    with kit.uvicorn_server(app) as (url, _server):
        _wait_ready(url)
        raw, took = _trickle(url, body, every_s=0.2, give_up_s=8.0)
        after = httpx.post(f"{url}/predict", json=kit.txn(1))  # the server still serves
    assert raw, f"no answer in {took:.1f} s: the slow client holds the connection"
    status, headers, payload = _parse(raw)
    assert status == 408
    assert headers["content-type"] == "application/json"
    assert headers["connection"] == "close"
    assert set(payload) == {"detail", "request_id"}
    assert payload["request_id"] == headers["x-request-id"]
    assert "1 s" in payload["detail"]
    assert 0.9 <= took < 4.0  # body_timeout_s=1 after the headers, plus scheduling (noisy)
    assert after.status_code == 200


def test_a_slow_client_does_not_hold_shutdown(
    settings: Any, champion: Any, features: Any, kit: Any
) -> None:
    """uvicorn waits for open connections before the app's shutdown; the server is told when
    shutdown begins (``draining_server``) and answers the trickling client 503 at once."""
    import uvicorn

    config = kit.serve_config(body_timeout_s=60.0)  # the body deadline is not what ends it
    app = create_app(settings, model=champion, features=features, config=config)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = draining_server(
        app,
        uvicorn.Config(
            app, log_config=None, lifespan="on", timeout_graceful_shutdown=30, access_log=False
        ),
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    answers: list[tuple[bytes, float]] = []
    try:
        _wait_ready(url)
        body = json.dumps(kit.txn(2)).encode()
        client = threading.Thread(
            target=lambda: answers.append(_trickle(url, body, every_s=0.2, give_up_s=40.0))
        )
        client.start()
        time.sleep(1.0)  # the request is in, its body still arriving
        asked = time.monotonic()
        server.should_exit = True  # what SIGTERM does
        thread.join(30)
        stopped_in = time.monotonic() - asked
        client.join(30)
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
    assert not thread.is_alive()
    assert stopped_in < 5.0, f"shutdown took {stopped_in:.1f} s behind one slow client"
    ((raw, _took),) = answers
    status, headers, payload = _parse(raw)
    assert status == 503
    assert headers["content-type"] == "application/json"
    assert "shutting down" in payload["detail"]
    assert "Traceback" not in raw.decode()
    assert "CancelledError" not in raw.decode()


class _FailingSource:
    """A feature source whose store call fails with what SQLite says about a broken file."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.fail = False

    def lookup(self, batch: Any) -> Any:
        if self.fail:
            raise KeyError("no such table: /srv/mlref/feature_repo/data/online_store.db")
        return self.inner.lookup(batch)


async def test_error_bodies_carry_a_request_id_and_nothing_internal(
    settings: Any, champion: Any, features: Any, kit: Any, caplog: pytest.LogCaptureFixture
) -> None:
    source = _FailingSource(features)
    app = create_app(settings, model=champion, features=source, config=kit.serve_config())
    async with kit.running_app(app) as client:
        source.fail = True
        failed = await client.post("/predict", json=kit.txn(3))
        source.fail = False
        ok = await client.post("/predict", json=kit.txn(3))
        invalid = await client.post("/predict", json={**kit.txn(3), "amount": -1})
    assert failed.status_code == 500
    body = failed.json()
    assert set(body) == {"detail", "request_id"}
    assert body["request_id"] == failed.headers["x-request-id"]
    for internal in ("no such table", "/srv/mlref", "KeyError", "Traceback"):
        assert internal not in failed.text
    assert "retry" in body["detail"]
    # the detail is in the server log, under the id the client was given
    (line,) = [r for r in caplog.records if body["request_id"] in r.getMessage()]
    assert "no such table" in line.getMessage()
    assert ok.status_code == 200
    assert ok.headers["x-request-id"] != failed.headers["x-request-id"]
    assert invalid.status_code == 422
    assert invalid.json()["request_id"] == invalid.headers["x-request-id"]


async def test_a_failed_start_up_says_not_ready_without_paths_or_exception_text(
    settings: Any, champion: Any, kit: Any, caplog: pytest.LogCaptureFixture
) -> None:
    missing = settings.workdir / "models" / "gone.onnx"
    config = kit.serve_config(model_path=missing, load_retry_s=0.05, load_give_up_s=30.0)
    app = create_app(settings, config=config)
    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://mlref.test") as client,
        app.router.lifespan_context(app),
    ):
        await kit.wait_for(lambda: app.state.runtime.load_error is not None, what="a failure")
        await asyncio.sleep(0.2)  # a few retries
        ready = await client.get("/readyz")
        predict = await client.post("/predict", json=kit.txn(0))
    for response in (ready, predict):
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        assert "models/gone" not in response.text
        assert "FileNotFoundError" not in response.text
    assert ready.json()["reason"].startswith("start-up failed (attempt ")
    assert "retrying in" in ready.json()["reason"]
    assert predict.json()["detail"].startswith("not ready: start-up failed")
    assert "models/gone" in caplog.text  # the cause is in the log


# -- the API does what its document says -------------------------------------------------------


async def test_the_api_accepts_and_refuses_what_the_document_says(
    settings: Any, champion: Any, features: Any, kit: Any
) -> None:
    app = create_app(settings, model=champion, features=features, config=kit.serve_config())
    huge = "9" * 5000
    async with kit.running_app(app) as client:
        whole = await client.post("/predict", json=kit.txn(4))  # user_id 5
        as_float = await client.post(
            "/predict",
            content=json.dumps(kit.txn(4)).replace('"user_id": 5', '"user_id": 5.0').encode(),
            headers={"content-type": "application/json"},
        )
        epoch = await client.post("/predict", json={**kit.txn(4), "event_timestamp": 1772366400})
        long_id = await client.post(
            "/predict",
            content=json.dumps({**kit.txn(4), "user_id": 0})
            .replace('"user_id": 0', f'"user_id": {huge}')
            .encode(),
            headers={"content-type": "application/json"},
        )
        long_in_batch = await client.post(
            "/predict/batch",
            content=json.dumps({"transactions": [kit.txn(1), {**kit.txn(4), "user_id": 0}]})
            .replace('"user_id": 0', f'"user_id": -{huge}')
            .encode(),
            headers={"content-type": "application/json"},
        )
        too_much = await client.post("/predict", json={**kit.txn(4), "amount": 1e10})
        heads = [await client.head(p) for p in ("/metrics", "/healthz", "/readyz")]
        document = (await client.get("/openapi.json")).json()
    assert whole.status_code == 200
    assert as_float.status_code == 200, as_float.text  # 5.0 is the integer 5 (JSON Schema)
    assert as_float.json() == whole.json()
    assert epoch.status_code == 422
    assert [e["field"] for e in epoch.json()["errors"]] == ["event_timestamp"]
    assert long_id.status_code == 422, long_id.text
    assert [e["field"] for e in long_id.json()["errors"]] == ["user_id"]
    assert long_in_batch.status_code == 422, long_in_batch.text
    assert [e["field"] for e in long_in_batch.json()["errors"]] == ["transactions[1].user_id"]
    assert too_much.status_code == 422
    assert [e["field"] for e in too_much.json()["errors"]] == ["amount"]
    assert [r.status_code for r in heads] == [200, 200, 200]
    assert all(r.content == b"" for r in heads)
    props = document["components"]["schemas"]["Transaction"]["properties"]
    assert props["amount"]["maximum"] == 1e9
    assert props["user_id"]["maximum"] == 2**53 - 1
    assert props["event_timestamp"]["pattern"].startswith("^(19[7-9]")
    (known,) = [s for s in props["merchant_category"]["anyOf"] if "enum" in s]
    assert "grocery" in known["enum"]
    assert {"head"} <= set(document["paths"]["/metrics"])
