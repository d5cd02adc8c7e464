"""The operator's routes: ``/healthz`` (alive), ``/readyz`` (ready to score) and ``/metrics``
(Prometheus exposition), each for GET and HEAD (probes and scrapers that only want the status
send HEAD).

Liveness fails only when restarting is the cure: start-up retried for ``load_give_up_s`` and
gave up. Readiness fails while loading, while start-up is being retried, while the online
store cannot be read (it recovers by itself when the store is back), and while shutting down.
The reasons are public words, no internals: the causes are in the server log."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi.responses import JSONResponse, PlainTextResponse, Response

from mlref.serve.metrics import CONTENT_TYPE, ScrapeState
from mlref.serve.openapi import retry_after_header
from mlref.serve.schemas import HealthStatus, NotReadyStatus, ReadyStatus

if TYPE_CHECKING:
    from fastapi import FastAPI

    from mlref.serve.runtime import ServingRuntime


def add_probe_routes(app: FastAPI, runtime: ServingRuntime) -> None:
    retry_after_s = runtime.config.retry_after_s

    @app.api_route(
        "/healthz",
        methods=["GET"],
        responses={
            200: {"model": HealthStatus, "description": "alive"},
            503: {
                "model": HealthStatus,
                "description": "start-up failed for load_give_up_s and gave up: restart",
            },
        },
    )
    async def healthz() -> JSONResponse:
        """The process is alive and the event loop answers; 503 once start-up has given up."""
        if runtime.alive:
            return JSONResponse({"status": "ok"})
        return JSONResponse(
            {"status": "failed", "reason": runtime.not_ready_reason()}, status_code=503
        )

    @app.api_route(
        "/readyz",
        methods=["GET"],
        responses={
            200: {"model": ReadyStatus, "description": "ready to score"},
            503: {
                "model": NotReadyStatus,
                "description": "not ready: loading, start-up failed (retrying, or gave up), "
                "the feature store cannot be read, the batcher's worker has stopped, or "
                "shutting down",
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

    @app.api_route("/metrics", methods=["GET"], response_class=PlainTextResponse)
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

    _add_head_routes(app, ("/healthz", "/readyz", "/metrics"))


def _add_head_routes(app: FastAPI, paths: tuple[str, ...]) -> None:
    """HEAD twins of the GET routes at ``paths``: the same answer without its body (the ASGI
    server drops it), documented under their own operation ids."""
    from fastapi.routing import APIRoute

    for route in list(app.routes):
        if isinstance(route, APIRoute) and route.path in paths and "GET" in (route.methods or ()):
            app.add_api_route(
                route.path,
                route.endpoint,
                methods=["HEAD"],
                operation_id=f"{route.name}_head",
                summary=f"{route.summary or route.name.capitalize()} (HEAD: status only)",
                response_class=route.response_class,
                responses={
                    code: {k: v for k, v in spec.items() if k != "model"}
                    for code, spec in route.responses.items()
                },
            )
