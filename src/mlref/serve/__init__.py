"""Online scoring: FastAPI + dynamic batching + ONNX Runtime + Feast online features.

``create_app(settings)`` builds the app, ``serve(settings)`` runs it under uvicorn. Names are
resolved lazily so ``import mlref.serve`` costs nothing until something is used.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "create_app": "mlref.serve.app",
    "serve": "mlref.serve.run",
    "ServeConfig": "mlref.serve.config",
    "BatchingPredictor": "mlref.serve.batching",
    "BatchInfo": "mlref.serve.batching",
    "BatchFailed": "mlref.serve.batching",
    "PredictorClosed": "mlref.serve.batching",
    "QueueFull": "mlref.serve.batching",
    "FeatureSource": "mlref.serve.features",
    "FeastFeatureSource": "mlref.serve.features",
    "Model": "mlref.serve.predictor",
    "OnnxModel": "mlref.serve.predictor",
    "ServedModel": "mlref.serve.predictor",
    "PredictionLog": "mlref.serve.predlog",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mlref.serve' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
