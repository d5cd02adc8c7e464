"""The framework floor: the scoring API's endpoint as a FastAPI user writes it first, no model.

``POST /predict`` takes the scoring API's own ``Transaction`` (the same strict validation, 422
on a bad payload) and answers its ``Prediction`` with a constant score: no features, no
model, no batching, no prediction log. The server benchmark runs it beside the bare floor
(``mlref.load.floor``) to split what the scoring server costs: floor -> framework floor is
FastAPI and validation, framework floor -> scoring server is features, model, batching and
the log. Importing this module imports FastAPI; the server imports it only for
``--app framework-floor``.
"""

from __future__ import annotations

from fastapi import FastAPI

from mlref.serve.schemas import Prediction, Transaction

app = FastAPI(title="mlref framework floor", docs_url=None, redoc_url=None)


@app.post("/predict", response_model=Prediction)
async def predict(txn: Transaction) -> Prediction:
    return Prediction(
        transaction_id=txn.transaction_id,
        score=0.0,
        decision=False,
        threshold=0.5,
        model_version="framework-floor",
        unknown_user=False,
    )


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/readyz")
async def readyz() -> dict[str, bool]:
    return {"ready": True}
