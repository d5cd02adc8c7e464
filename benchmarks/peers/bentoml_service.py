"""mlref's scoring endpoint served by BentoML (peer benchmark; ``uv run --group peers``).

``POST /predict`` takes mlref's ``Transaction`` JSON as the whole body (a positional-only
parameter: BentoML's "root input") and answers its ``Prediction`` JSON, scored by the same
ONNX model on the same Feast online-store read (``_common.PeerScorer``).

Batching is BentoML's adaptive batching: ``score_many`` is a ``batchable=True`` API
(``max_batch_size``, ``max_latency_ms``: the dispatcher's latency goal, from which it adapts
its own wait), and ``/predict`` reaches it through the service's own proxy
(``self.to_async``), BentoML's documented way for one API to feed a batchable one, so single
transactions from many clients are scored together. One worker (``workers=1``), under
BentoML's process supervisor.

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


# access logging off: mlref's server logs no access lines either (uvicorn access_log=False), and
# one formatted log line per request is CPU the comparison would charge to BentoML
@bentoml.service(workers=1, traffic={"timeout": 30}, logging={"access": {"enabled": False}})
class FraudService:
    def __init__(self) -> None:
        self.scorer = PeerScorer(_SETTINGS)

    @bentoml.api(route="/predict")
    async def predict(self, transaction: Transaction, /) -> dict[str, Any]:
        (prediction,) = await self.to_async.score_many([transaction])  # type: ignore[attr-defined]
        return prediction  # type: ignore[no-any-return]

    @bentoml.api(
        batchable=True,
        max_batch_size=_SETTINGS.max_batch_size,
        max_latency_ms=max(1, int(_SETTINGS.wait_ms)),
    )
    def score_many(self, transactions: list[Transaction], /) -> list[dict[str, Any]]:
        return self.scorer.score(transactions)
