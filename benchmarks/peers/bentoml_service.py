"""mlref's scoring endpoint served by BentoML (peer benchmark; ``uv run --group peers``).

``POST /predict`` takes mlref's ``Transaction`` JSON as the whole body (a positional-only
parameter: BentoML's "root input"; here a list, see below) and answers its ``Prediction`` JSON, scored by the same
ONNX model on the same Feast online-store read (``_common.PeerScorer``).

Batching is BentoML's adaptive batching: ``score_many`` is a ``batchable=True`` API
(``max_batch_size``, ``max_latency_ms``: the dispatcher's latency goal, from which it adapts
its own wait), and ``/predict`` reaches it through a byte-level ASGI middleware
(``OneTransactionAsBatch``, BentoML's ``add_asgi_middleware``) that makes one transaction a
batch of one, so single transactions from many clients are scored together. One worker
(``workers=1``), under BentoML's process supervisor.

    MLREF_PEER_WORKDIR=... MLREF_PEER_MODEL=... MLREF_PEER_MAX_BATCH=64 MLREF_PEER_WAIT_MS=20 \
        bentoml serve bentoml_service:FraudService --working-dir benchmarks/peers --port 8124
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import bentoml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import PeerScorer, PeerSettings

from mlref.serve.schemas import Transaction

# read at import: BentoML takes the batching knobs at decoration time
_SETTINGS = PeerSettings.from_env()
BATCH_ROUTE = "/score_many"


# access logging off: mlref's server logs no access lines either (uvicorn access_log=False), and
# one formatted log line per request is CPU the comparison would charge to BentoML
@bentoml.service(workers=1, traffic={"timeout": 30}, logging={"access": {"enabled": False}})
class FraudService:
    def __init__(self) -> None:
        self.scorer = PeerScorer(_SETTINGS)

    @bentoml.api(
        route=BATCH_ROUTE,
        batchable=True,
        max_batch_size=_SETTINGS.max_batch_size,
        max_latency_ms=max(1, int(_SETTINGS.wait_ms)),
    )
    def score_many(self, transactions: list[Transaction], /) -> list[dict[str, Any]]:
        return self.scorer.score(transactions)


class OneTransactionAsBatch:
    """ASGI middleware: ``POST /predict`` with one transaction becomes a batch of one on the
    batchable route, and the one-element answer becomes the object again.

    BentoML batches a batchable API's list inputs; a client sending one object per request
    (mlref's contract) needs this. Byte edits only (a bracket each way, Content-Length), so
    the cost stays BentoML's own: calling the batchable API through the service's own proxy
    (``self.to_async``) instead went through an HTTP client per request and could not keep
    up with 20 requests per second here.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if not (scope["type"] == "http" and scope["path"] == "/predict"):
            await self.app(scope, receive, send)
            return
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        wrapped = b"[" + b"".join(chunks) + b"]"
        delivered = False

        async def receive_batch() -> Any:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": wrapped, "more_body": False}
            return await receive()

        start: dict[str, Any] = {}
        body: list[bytes] = []

        async def send_one(message: Any) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            body.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            data = b"".join(body)
            if start.get("status") == 200:
                data = data.strip()[1:-1]  # [ {...} ] -> {...}
            headers = [
                (k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"
            ]
            headers.append((b"content-length", str(len(data)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": data})

        path = BATCH_ROUTE
        scope = {**scope, "path": path, "raw_path": path.encode()}
        await self.app(scope, receive_batch, send_one)


FraudService.add_asgi_middleware(OneTransactionAsBatch)  # type: ignore[attr-defined]
