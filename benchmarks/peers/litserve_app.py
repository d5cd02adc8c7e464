"""mlref's scoring endpoint served by LitServe (peer benchmark; ``uv run --group peers``).

``POST /predict`` takes mlref's ``Transaction`` JSON and answers its ``Prediction`` JSON,
scored by the same ONNX model on the same Feast online-store read (``_common.PeerScorer``).
LitServe's own batching does the batching: ``LitAPI(max_batch_size=N, batch_timeout=T)``,
the documented place since 0.2 (the ``LitServer`` arguments are deprecated). One inference
worker on the CPU (``accelerator="cpu", devices=1, workers_per_device=1``) and one API server
(``num_api_servers=1``): LitServe's minimum, an HTTP process plus the inference worker it
feeds through a queue (``fast_queue=True``: ZeroMQ instead of a multiprocessing queue, the
faster of the two in LitServe's docs). The body is validated with mlref's strict schema
in the API process (the annotation of decode_request), before the queue.

    MLREF_PEER_WORKDIR=... MLREF_PEER_MODEL=... MLREF_PEER_MAX_BATCH=64 MLREF_PEER_WAIT_MS=2 \
        python benchmarks/peers/litserve_app.py --port 8123
"""

# no ``from __future__ import annotations`` here: LitServe reads decode_request's annotation
# at run time to build its FastAPI endpoint, and a string annotation would not resolve there
import argparse
import sys
from pathlib import Path
from typing import Any

import litserve as ls

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import PeerScorer, PeerSettings

from mlref.serve.schemas import Transaction


class FraudAPI(ls.LitAPI):  # type: ignore[misc]
    def setup(self, device: str) -> None:
        self.scorer = PeerScorer(PeerSettings.from_env())

    def decode_request(self, request: Transaction) -> Transaction:
        # annotated with mlref's schema, so LitServe's FastAPI endpoint validates the body
        # (strict, 422 on a bad one) in the API process, as mlref's server does
        return request

    def batch(self, inputs: list[Any]) -> list[Any]:
        return list(inputs)  # the default stacks tensors; ours are validated models

    def predict(self, x: list[Any]) -> list[dict[str, Any]]:
        return self.scorer.score(x)

    def unbatch(self, output: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return output

    def encode_response(self, output: dict[str, Any]) -> dict[str, Any]:
        return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--fast-queue", choices=("on", "off"), default="on")
    args = parser.parse_args(argv)
    settings = PeerSettings.from_env()
    api = FraudAPI(max_batch_size=settings.max_batch_size, batch_timeout=settings.wait_ms / 1e3)
    server = ls.LitServer(
        api,
        accelerator="cpu",
        devices=1,
        workers_per_device=1,
        timeout=30,
        fast_queue=args.fast_queue == "on",
    )
    server.run(
        host="127.0.0.1",
        port=args.port,
        num_api_servers=1,
        log_level="warning",
        generate_client_file=False,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
