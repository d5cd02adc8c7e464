"""What every peer server shares with mlref: the model, the feature read, the JSON contract.

A peer (LitServe, BentoML) must do the same work per request as the mlref server, or the
comparison measures less work, not a better server. So each peer builds a ``PeerScorer``:

* the same ONNX model and card (``mlref.serve.predictor.served_model_from_card``, one
  ONNX Runtime thread, as mlref serves it);
* the same online feature read (``mlref.serve.features.FeastFeatureSource``: Feast's SQLite
  online store through ``mlref.features.store.online_feature_arrays``, once per batch);
* the same request validation (``mlref.serve.schemas.Transaction``, strict) and the same
  answer (the ``Prediction`` fields, in the order mlref sends them).

What a peer does NOT do that mlref does: the prediction log (SQLite, written after the
response), the shadow model, the /metrics counters, admission control. The peers therefore do
less work per request; where mlref still wins, it wins with a handicap.

Configuration comes from the environment (``MLREF_PEER_*``), because BentoML imports the
service module in its own worker process and passes no arguments.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlref.data.columns import CATEGORIES

ENV_WORKDIR = "MLREF_PEER_WORKDIR"
ENV_MODEL = "MLREF_PEER_MODEL"
ENV_MAX_BATCH = "MLREF_PEER_MAX_BATCH"
ENV_WAIT_MS = "MLREF_PEER_WAIT_MS"
_CATEGORIES = frozenset(CATEGORIES)


@dataclass(frozen=True)
class PeerSettings:
    workdir: Path
    model_path: Path
    max_batch_size: int
    wait_ms: float

    @classmethod
    def from_env(cls) -> PeerSettings:
        missing = [k for k in (ENV_WORKDIR, ENV_MODEL) if not os.environ.get(k)]
        if missing:
            raise RuntimeError(
                f"set {missing}: the reference system's workdir and its ONNX model "
                "(benchmarks/peers/launch.py sets them)"
            )
        max_batch = int(os.environ.get(ENV_MAX_BATCH, "64"))
        wait_ms = float(os.environ.get(ENV_WAIT_MS, "2"))
        if max_batch < 2 or wait_ms < 0:
            raise ValueError(f"max batch must be >= 2 and wait >= 0, got {max_batch}, {wait_ms}")
        return cls(Path(os.environ[ENV_WORKDIR]), Path(os.environ[ENV_MODEL]), max_batch, wait_ms)


class PeerScorer:
    """mlref's model + feature read, scoring a list of validated transactions at once."""

    def __init__(self, settings: PeerSettings) -> None:
        from mlref.serve.features import FeastFeatureSource
        from mlref.serve.predictor import Scorer, served_model_from_card
        from mlref.settings import make_settings

        card = settings.model_path.with_suffix(".card.json")
        self.model = served_model_from_card(settings.model_path, card, None, intra_op_threads=1)
        self.model.warm_up()
        source = FeastFeatureSource.open(make_settings(settings.workdir))
        self.scorer = Scorer(self.model, source)

    def score(self, transactions: list[Any]) -> list[dict[str, Any]]:
        """``Transaction`` models in, ``Prediction`` dicts out (mlref's keys and order)."""
        threshold, version = self.model.threshold, self.model.version
        scored = self.scorer.score_batch(transactions)
        return [
            {
                "transaction_id": t.transaction_id,
                "score": s.score,
                "decision": s.score >= threshold,
                "threshold": threshold,
                "model_version": version,
                "unknown_user": s.unknown_user,
                "unknown_category": t.merchant_category not in _CATEGORIES,
            }
            for t, s in zip(transactions, scored, strict=True)
        ]
