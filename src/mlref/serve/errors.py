"""The server's own errors and the handlers that turn every error into its answer: 400 (not
JSON, empty), 408 (the body did not arrive in time), 413 (too large), 422 (invalid fields,
never echoing the input), 500 (the batch failed, or a defect), 503 with ``Retry-After`` (not
ready, the feature store unavailable, shutting down, queue full).

Public bodies carry what a client can act on and nothing internal: no exception text, no
paths, no table names. Every answer names its request id (the ``X-Request-ID`` header,
``mlref.serve.middleware``), and an error's internal detail goes to the server log under that
id. The bodies are ``ErrorResponse`` / ``ValidationErrorResponse`` (``mlref.serve.schemas``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from mlref.serve.batching import BatchFailed, PredictorClosed, QueueFull
from mlref.serve.body import BodyTimeout, BodyTooLarge, is_json
from mlref.serve.features import FeatureStoreUnavailable

if TYPE_CHECKING:
    from fastapi import FastAPI

    from mlref.serve.metrics import ServingMetrics

logger = logging.getLogger(__name__)

REQUEST_ID_KEY = "mlref.request_id"  # where the middleware puts the id in the ASGI scope


class NotReady(RuntimeError):
    """Model or feature store not loaded (yet, or loading failed), or the feature store cannot
    be read. The message is public (said to the client): no internals in it."""


class BatchTooLarge(ValueError):
    """More transactions in one /predict/batch call than ``max_batch_request``."""


def request_id(request: Request) -> str:
    return str(request.scope.get(REQUEST_ID_KEY, "-"))


def _field_name(loc: Sequence[Any]) -> str:
    parts = [p for p in loc if p != "body"]
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def _error(
    request: Request,
    status: int,
    detail: str,
    *,
    retry_after: int | None = None,
    close: bool = False,
) -> JSONResponse:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    if close:  # the rest of the body was never read: this connection cannot carry another
        headers["Connection"] = "close"
    return JSONResponse(
        {"detail": detail, "request_id": request_id(request)},
        status_code=status,
        headers=headers or None,
    )


def install_error_handlers(app: FastAPI, *, metrics: ServingMetrics, retry_after_s: int) -> None:
    retry = retry_after_s
    later = f"retry after {retry} s"

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            ctx = next(e.get("ctx", {}) for e in errors if e.get("type") == "json_invalid")
            return _error(
                request,
                400,
                f"request body is not valid JSON: {ctx.get('error', 'decode error')}",
            )
        if not is_json(request):
            return _error(
                request,
                400,
                "request body must be JSON: send a JSON object with "
                "'Content-Type: application/json'",
            )
        if any(tuple(e.get("loc", ())) == ("body",) and e.get("type") == "missing" for e in errors):
            return _error(request, 400, "request body is empty: send a JSON object")
        # never echo the input back: it may be huge, or NaN (not representable in JSON)
        items = [
            {
                "field": _field_name(e.get("loc", ())),
                "reason": str(e.get("msg", "")),
                "type": str(e.get("type", "")),
            }
            for e in errors
        ]
        summary = "; ".join(f"{i['field']}: {i['reason']}" for i in items)
        return JSONResponse(
            {
                "detail": f"invalid request: {summary}",
                "errors": items,
                "request_id": request_id(request),
            },
            status_code=422,
        )

    @app.exception_handler(QueueFull)
    async def _shed(request: Request, exc: QueueFull) -> JSONResponse:
        metrics.count_shed()
        return _error(
            request, 503, f"the server is overloaded (queue full); {later}", retry_after=retry
        )

    @app.exception_handler(PredictorClosed)
    async def _closed(request: Request, exc: PredictorClosed) -> JSONResponse:
        # the batcher's own words: which stage stopped and why, nothing internal
        return _error(request, 503, str(exc), retry_after=retry)

    @app.exception_handler(NotReady)
    async def _not_ready(request: Request, exc: NotReady) -> JSONResponse:
        return _error(request, 503, f"not ready: {exc}; {later}", retry_after=retry)

    @app.exception_handler(BatchTooLarge)
    async def _too_large(request: Request, exc: BatchTooLarge) -> JSONResponse:
        return _error(request, 413, str(exc))

    @app.exception_handler(BodyTooLarge)
    async def _body_too_large(request: Request, exc: BodyTooLarge) -> JSONResponse:
        return _error(request, 413, str(exc), close=True)

    @app.exception_handler(BodyTimeout)
    async def _body_timeout(request: Request, exc: BodyTimeout) -> JSONResponse:
        logger.info("request %s: 408 %s", request_id(request), exc)
        return _error(request, 408, str(exc), close=True)

    @app.exception_handler(BatchFailed)
    async def _failed(request: Request, exc: BatchFailed) -> JSONResponse:
        rid = request_id(request)
        if isinstance(exc.__cause__, FeatureStoreUnavailable):
            logger.warning("request %s: 503, the feature store cannot be read: %s", rid, exc)
            return _error(
                request,
                503,
                f"not ready: the feature store cannot be read; {later}",
                retry_after=retry,
            )
        logger.error("request %s: 500 scoring failed: %s", rid, exc, exc_info=exc.__cause__)
        return _error(
            request,
            500,
            f"scoring failed; retry the request (request id {rid} in the server log)",
        )

    @app.exception_handler(Exception)
    async def _defect(request: Request, exc: Exception) -> JSONResponse:
        # anything not answered above is a defect: the client gets an id, the log the trace
        rid = request_id(request)
        logger.error("request %s: 500 unhandled error", rid, exc_info=exc)
        return _error(request, 500, f"internal error (request id {rid} in the server log)")
