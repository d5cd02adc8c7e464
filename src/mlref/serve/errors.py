"""The server's own errors and the handlers that turn every error into its answer: 400 (not
JSON, empty), 413 (too large), 422 (invalid fields, never echoing the input), 500 (the batch
failed), 503 with ``Retry-After`` (not ready, shutting down, queue full). The bodies are
``ErrorResponse`` / ``ValidationErrorResponse`` (``mlref.serve.schemas``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from mlref.serve.batching import BatchFailed, PredictorClosed, QueueFull
from mlref.serve.body import BodyTooLarge, is_json

if TYPE_CHECKING:
    from fastapi import FastAPI

    from mlref.serve.metrics import ServingMetrics


class NotReady(RuntimeError):
    """Model or feature store not loaded (yet, or loading failed)."""


class BatchTooLarge(ValueError):
    """More transactions in one /predict/batch call than ``max_batch_request``."""


def _field_name(loc: Sequence[Any]) -> str:
    parts = [p for p in loc if p != "body"]
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def _error(status: int, detail: str, *, retry_after: int | None = None) -> JSONResponse:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI, *, metrics: ServingMetrics, retry_after_s: int) -> None:
    retry = retry_after_s

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            ctx = next(e.get("ctx", {}) for e in errors if e.get("type") == "json_invalid")
            return _error(
                400, f"request body is not valid JSON: {ctx.get('error', 'decode error')}"
            )
        if not is_json(request):
            return _error(
                400,
                "request body must be JSON: send a JSON object with "
                "'Content-Type: application/json'",
            )
        if any(tuple(e.get("loc", ())) == ("body",) and e.get("type") == "missing" for e in errors):
            return _error(400, "request body is empty: send a JSON object")
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
            {"detail": f"invalid request: {summary}", "errors": items}, status_code=422
        )

    @app.exception_handler(QueueFull)
    async def _shed(request: Request, exc: QueueFull) -> JSONResponse:
        metrics.count_shed()
        return _error(503, str(exc), retry_after=retry)

    @app.exception_handler(PredictorClosed)
    async def _closed(request: Request, exc: PredictorClosed) -> JSONResponse:
        return _error(503, str(exc), retry_after=retry)

    @app.exception_handler(NotReady)
    async def _not_ready(request: Request, exc: NotReady) -> JSONResponse:
        return _error(503, f"not ready: {exc}", retry_after=retry)

    @app.exception_handler(BatchTooLarge)
    async def _too_large(request: Request, exc: BatchTooLarge) -> JSONResponse:
        return _error(413, str(exc))

    @app.exception_handler(BodyTooLarge)
    async def _body_too_large(request: Request, exc: BodyTooLarge) -> JSONResponse:
        return _error(413, str(exc))

    @app.exception_handler(BatchFailed)
    async def _failed(request: Request, exc: BatchFailed) -> JSONResponse:
        return _error(500, f"scoring failed: {exc}; retry the request")
