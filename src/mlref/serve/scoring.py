"""The hot path: request -> features -> batcher -> model -> response -> log.

``/predict`` and ``/predict/batch`` read and validate the body (``mlref.serve.body``), then
``score`` checks readiness, queues the transactions on the batcher (whose worker looks up the
online features and runs the model on the whole batch: ``mlref.serve.predictor.Scorer``; a
``/predict/batch`` call at or above the model's native crossover is scored whole in the same
thread instead, ``ServingRuntime.score_whole``),
builds the answers and the prediction-log records, and hands the records on (logged now, or
after the response once the shadow model has scored them: ``ServingRuntime.follow_up``).

Per-request cost, measured (``nox -s perf``; see benchmarks/results/perf.md): one process runs
Python on about one core (the GIL), so every request's CPU counts. Hence: the scoring routes
are Starlette routes (no per-request dependency solving or response-model round trip,
~0.1-0.2 ms per request on this machine, a third of the bare endpoint's whole cost; the
OpenAPI document still describes them: ``mlref.serve.openapi``); the body is parsed and
validated in one pydantic-core pass; features travel as numpy arrays from the request to the
model (``RequestBatch`` -> ``online_feature_arrays``); the online store is read once per
feature view per batch; no per-request pydantic models or context managers, one log hand-off
per request. The start-up heap is frozen out of the garbage collector (``gc_freeze``) and
batching is opportunistic by default (``max_wait_ms=0``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response

from mlref.serve.body import read_json_body, validate
from mlref.serve.config import SINGLE_BODY_LIMIT
from mlref.serve.errors import BatchTooLarge
from mlref.serve.features import conversion_errors
from mlref.serve.predictor import crossover_rows
from mlref.serve.predlog import PredictionRecord, features_json
from mlref.serve.schemas import MODEL_CATEGORIES, BatchRequest, Transaction

if TYPE_CHECKING:
    from starlette.background import BackgroundTask

    from mlref.serve.runtime import ServingRuntime

Endpoint = Callable[[Request], Awaitable[Response]]
# a category the model never saw is scored (as the unknown code), flagged and counted, not
# refused: the demo's injected drift sends such a category on purpose, and refusing it would
# hide the drift from monitoring
_MODEL_CATEGORIES = frozenset(MODEL_CATEGORIES)


def scoring_endpoints(runtime: ServingRuntime) -> tuple[Endpoint, Endpoint]:
    """The ``/predict`` and ``/predict/batch`` endpoints, bound to ``runtime``."""
    max_batch_request = runtime.config.max_batch_request
    batch_limit = runtime.config.batch_body_limit

    async def predict(request: Request) -> Response:
        """Score one transaction (body: ``Transaction``; answer: ``Prediction``)."""
        body = await read_json_body(request, SINGLE_BODY_LIMIT)
        transaction = validate(Transaction, body)
        (prediction,), follow_up = await score(runtime, [transaction])
        return _json(prediction, follow_up)

    async def predict_batch(request: Request) -> Response:
        """Score many transactions; each is scored exactly as if sent alone."""
        body = await read_json_body(request, batch_limit)
        batch = validate(BatchRequest, body)
        if len(batch.transactions) > max_batch_request:
            raise BatchTooLarge(
                f"batch of {len(batch.transactions)} transactions exceeds the limit of "
                f"{max_batch_request}; split it into smaller calls"
            )
        predictions, follow_up = await score(runtime, batch.transactions, loc=("transactions",))
        return _json({"predictions": predictions}, follow_up)

    return predict, predict_batch


async def score(
    runtime: ServingRuntime, transactions: Sequence[Transaction], *, loc: tuple[str, ...] = ()
) -> tuple[list[dict[str, Any]], BackgroundTask | None]:
    """Score ``transactions``; returns the predictions (the ``Prediction`` fields, as dicts
    ready for JSON) and the task to run after the response is sent (shadow + log), if any.

    ``loc`` is where the transactions sit in the request body (``()`` for /predict,
    ``("transactions",)`` for /predict/batch): a value the batch worker could not convert
    is refused here with 422 at that location (``RequestValidationError``), before it is
    queued, so it never fails the batch it would have joined. The schema's bounds already
    keep such values out; this is the second line.
    """
    runtime.check_ready()
    bad = conversion_errors(transactions)
    if bad:
        raise RequestValidationError(
            [
                {
                    "type": "unconvertible",
                    "loc": ("body", *loc, index, field) if loc else ("body", field),
                    "msg": reason,
                }
                for index, field, reason in bad
            ]
        )
    batcher, model = runtime.batcher, runtime.model
    assert batcher is not None
    assert model is not None
    # a call this large is scored whole, not in the batcher's chunks (which never reach the
    # crossover): native XGBoost is faster per row there (benchmarks/bench_model.py). Not
    # with batching off (every request scored alone, on purpose) nor under a canary rollout
    # (its arms split the call per user and score through their own batchers)
    whole_from = crossover_rows(model.model) if runtime.config.batching else None
    # one snapshot per request: scored, answered and logged under this rollout (or none)
    rollout = runtime.router.active
    arrived = time.time()
    started = time.perf_counter()
    runtime.begin()  # shutdown waits for this request, its response and its log records
    try:
        if rollout is not None:
            scored, models, arms = await rollout.submit(batcher, model, transactions)
        elif len(transactions) == 1:
            scored = [await batcher.submit(transactions[0])]
        elif whole_from is not None and len(transactions) >= whole_from:
            # at or above the model's crossover: one call, which the native model scores
            scored = await runtime.score_whole(list(transactions))
        else:
            scored = await batcher.submit_many(list(transactions))
        latency_ms = (time.perf_counter() - started) * 1000.0
        threshold, version, names = model.threshold, model.version, model.feature_names
        arm = rollout_id = None
        next_request_id = runtime.next_request_id
        predictions = []
        records = []
        unknown_categories = 0
        for i, (txn, s) in enumerate(zip(transactions, scored, strict=True)):
            if rollout is not None:  # the arm's model answers, and acts
                threshold, version = models[i].threshold, models[i].version
                arm, rollout_id = arms[i], rollout.rollout_id
            decision = s.score >= threshold
            unknown_category = txn.merchant_category not in _MODEL_CATEGORIES
            unknown_categories += unknown_category
            predictions.append(
                {
                    "transaction_id": txn.transaction_id,
                    "score": s.score,
                    "decision": decision,
                    "threshold": threshold,
                    "model_version": version,
                    "unknown_user": s.unknown_user,
                    "unknown_category": unknown_category,
                }
            )
            records.append(
                PredictionRecord(
                    request_id=next_request_id(),
                    batch_size=len(transactions),
                    ts=arrived,
                    event_timestamp=txn.event_timestamp.timestamp(),
                    transaction_id=txn.transaction_id,
                    user_id=txn.user_id,
                    features=features_json(names, s.features),
                    score=s.score,
                    decision=int(decision),
                    threshold=threshold,
                    model_version=version,
                    latency_ms=latency_ms,
                    shadow_score=None,
                    shadow_version=None,
                    unknown_user=int(s.unknown_user),
                    unknown_category=int(unknown_category),
                    arm=arm,
                    rollout_id=rollout_id,
                )
            )
        if unknown_categories:
            runtime.metrics.count_unknown_category(unknown_categories)
        if runtime.config.log_sync:  # committed before the answer (docs/prediction-log.md)
            await runtime.log_before_answer(records, scored)
            follow_up = None
        else:
            follow_up = runtime.follow_up(records, scored)
    finally:
        runtime.end()
    return predictions, follow_up


def _json(content: Any, background: BackgroundTask | None) -> Response:
    return Response(
        json.dumps(content, allow_nan=False).encode(),
        media_type="application/json",
        background=background,
    )
