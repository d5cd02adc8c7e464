"""The scoring app: ``create_app(settings)`` wires the pieces, each in its own module.

- ``config``: ``ServeConfig``, the serving knobs.
- ``runtime``: ``ServingRuntime``, start-up (model, features, shadow), batchers, prediction log,
  readiness, the bounded shutdown drain.
- ``scoring``: the hot path, request -> features -> batcher -> model -> response -> log.
- ``body``, ``errors``, ``openapi``: request bodies, error answers, the OpenAPI document.
- ``middleware``, ``metrics``, ``probes``: request metrics, ``/healthz`` ``/readyz`` ``/metrics``.
- ``run``: ``serve(settings)``, the uvicorn entry point, after ``preflight`` found a system to serve.

``ServeConfig`` is re-exported here for callers that import it from ``mlref.serve.app``;
``serve`` lives in ``mlref.serve.run`` (which imports this module, not the other way round).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from mlref.serve.admission import InFlightLimit, Overloaded
from mlref.serve.config import BYTES_PER_TRANSACTION, ServeConfig
from mlref.serve.errors import install_error_handlers
from mlref.serve.middleware import InFlightAdmission, MetricsMiddleware, RequestGuardMiddleware
from mlref.serve.openapi import add_docs_page, document_scoring_routes
from mlref.serve.probes import add_probe_routes
from mlref.serve.runtime import ServingRuntime
from mlref.serve.scoring import scoring_endpoints

if TYPE_CHECKING:
    from mlref.serve.features import FeatureSource
    from mlref.serve.metrics import ServingMetrics
    from mlref.serve.predictor import ServedModel
    from mlref.settings import Settings

__all__ = ["BYTES_PER_TRANSACTION", "ServeConfig", "create_app"]


def create_app(
    settings: Settings,
    *,
    model: ServedModel | None = None,
    features: FeatureSource | None = None,
    shadow: ServedModel | None = None,
    config: ServeConfig | None = None,
) -> FastAPI:
    """The scoring app. ``model``/``features``/``shadow`` replace what start-up would load
    (registry champion, Feast store, registry challenger)."""
    cfg = config or ServeConfig.from_settings(settings)
    runtime = ServingRuntime(settings, cfg, model=model, features=features, shadow=shadow)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(
        title="mlref fraud scoring",
        version="1",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        telemetry=None
        if cfg.otel
        else {"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.runtime = runtime
    # the HTTP layer of admission (opt-in; off with admission itself); innermost of the three
    # middlewares, so its 503s are counted by MetricsMiddleware and carry a request id
    if cfg.admission and cfg.in_flight_admission:
        app.add_middleware(
            InFlightAdmission,
            limit=InFlightLimit(
                cfg.p99_budget_ms,
                floor=min(cfg.min_in_flight, cfg.max_queue),
                ceiling=cfg.max_queue,
                initial=min(cfg.max_queue, max(cfg.min_in_flight, cfg.max_batch_size)),
            ),
            metrics=runtime.metrics,
            retry_after_s=cfg.retry_after_s,
        )
    app.add_middleware(MetricsMiddleware, metrics=runtime.metrics)
    app.add_middleware(
        RequestGuardMiddleware,
        request_ids=runtime.next_request_id,
        body_timeout_s=cfg.body_timeout_s,
        body_reads=runtime.body_reads,
    )
    install_error_handlers(app, metrics=runtime.metrics, retry_after_s=cfg.retry_after_s)
    _answer_overload(app, runtime.metrics, cfg.retry_after_s)
    predict, predict_batch = scoring_endpoints(runtime)
    app.add_route("/predict", predict, methods=["POST"], include_in_schema=False)
    app.add_route("/predict/batch", predict_batch, methods=["POST"], include_in_schema=False)
    document_scoring_routes(app)
    add_probe_routes(app, runtime)
    add_docs_page(app)
    return app


def _answer_overload(app: FastAPI, metrics: ServingMetrics, retry_after_s: int) -> None:
    """503 + ``Retry-After`` for a request shed by admission (``mlref.serve.admission``),
    counted by reason in ``mlref_requests_shed_total``."""

    async def shed(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Overloaded)
        metrics.count_shed(reason=exc.reason)
        retry = max(retry_after_s, exc.retry_after_s)
        return JSONResponse(
            {"detail": str(exc)}, status_code=503, headers={"Retry-After": str(retry)}
        )

    app.add_exception_handler(Overloaded, shed)
