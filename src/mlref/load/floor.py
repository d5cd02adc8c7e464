"""The floors the server benchmark measures the scoring server against, on the same uvicorn.

- ``floor_app``: a bare JSON endpoint, no framework, no model, no features. A raw ASGI app
  that reads the body, parses it as JSON and answers a fixed-shape prediction. The scoring
  server's throughput over this one's is the benchmark's goal figure: what is left is what
  FastAPI, validation, Feast, batching and ONNX Runtime cost.
- ``mlref.load.framework_floor``: the endpoint a FastAPI user writes first, with the scoring
  API's own request and response models and a constant answer (no features, model or
  batching). Floor -> framework floor is what the framework and validation cost, framework
  floor -> scoring server what features, model, batching and the prediction log cost.
"""

from __future__ import annotations

import json
from typing import Any

_READY = json.dumps({"ready": True}).encode()
_OK = json.dumps({"status": "ok"}).encode()
_HEADERS = [(b"content-type", b"application/json")]


async def _send_json(send: Any, status: int, body: bytes) -> None:
    headers = [*_HEADERS, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def floor_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """POST /predict -> a prediction-shaped JSON; GET /healthz, /readyz -> 200."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    path = scope["path"]
    if scope["method"] == "GET" and path in ("/healthz", "/readyz"):
        await _send_json(send, 200, _READY if path == "/readyz" else _OK)
        return
    if scope["method"] != "POST" or path != "/predict":
        await _send_json(send, 404, b'{"detail":"not found"}')
        return
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    try:
        txn = json.loads(b"".join(chunks))
        tid = txn["transaction_id"]
    except (ValueError, KeyError, TypeError):
        await _send_json(send, 422, b'{"detail":"invalid request"}')
        return
    body = {
        "transaction_id": tid,
        "score": 0.0,
        "decision": False,
        "threshold": 0.5,
        "model_version": "floor",
        "unknown_user": False,
    }
    await _send_json(send, 200, json.dumps(body).encode())
