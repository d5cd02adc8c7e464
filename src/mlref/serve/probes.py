"""The operator's routes: ``/healthz`` (alive), ``/readyz`` (ready to score) and ``/metrics``
(Prometheus exposition)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi.responses import JSONResponse, PlainTextResponse, Response

from mlref.serve.metrics import CONTENT_TYPE, ScrapeState
from mlref.serve.openapi import retry_after_header
from mlref.serve.schemas import NotReadyStatus, ReadyStatus

if TYPE_CHECKING:
    from fastapi import FastAPI

    from mlref.serve.runtime import ServingRuntime


def add_probe_routes(app: FastAPI, runtime: ServingRuntime) -> None:
    retry_after_s = runtime.config.retry_after_s

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The process is alive and the event loop answers."""
        return {"status": "ok"}

    @app.get(
        "/readyz",
        responses={
            200: {"model": ReadyStatus, "description": "ready to score"},
            503: {
                "model": NotReadyStatus,
                "description": "not ready: loading, start-up failed, the batcher's worker "
                "has stopped, or shutting down",
                "headers": retry_after_header(),
            },
        },
    )
    async def readyz() -> JSONResponse:
        """Ready to score: model and feature store loaded, batcher alive, not shutting down."""
        if runtime.serving:
            return JSONResponse(
                {
                    "ready": True,
                    "model_version": runtime.model.version if runtime.model else None,
                    "shadow_version": runtime.shadow.version if runtime.shadow else None,
                }
            )
        return JSONResponse(
            {"ready": False, "reason": runtime.not_ready_reason()},
            status_code=503,
            headers={"Retry-After": str(retry_after_s)},
        )

    @app.get("/metrics", response_class=PlainTextResponse)
    async def metrics() -> Response:
        """Prometheus text exposition."""
        batcher, log, loaded = runtime.batcher, runtime.log, runtime.ready
        state = ScrapeState(
            queue_depth=batcher.queue_depth if batcher else 0,
            in_flight=batcher.in_flight if batcher else 0,
            ready=runtime.serving,
            model_version=runtime.model.version if loaded and runtime.model else None,
            shadow_version=runtime.shadow.version if loaded and runtime.shadow else None,
            log_pending=log.pending if log else 0,
            log_written=log.written if log else 0,
            log_dropped=log.dropped_by if log else {},
            log_deleted=log.deleted_by if log else {},
        )
        return Response(runtime.metrics.render(state), media_type=CONTENT_TYPE)
