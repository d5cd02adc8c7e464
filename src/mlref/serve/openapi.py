"""The OpenAPI document of the scoring routes.

The two scoring routes are plain Starlette routes (see ``mlref.serve.scoring``: FastAPI's
per-request dependency solving and response-model round trip cost a third of the bare
endpoint), so FastAPI does not see them. This module puts them back into ``/openapi.json``
with their request, response and error bodies, by building the document from schema-only
``APIRoute`` twins.

``/docs`` is a short offline page, not FastAPI's Swagger UI: that page loads
``swagger-ui-bundle.js`` and ``swagger-ui.css`` from cdn.jsdelivr.net (no installed package
ships them), which a machine without internet access cannot fetch (a blank page), and a scoring
server should not make its operators' browsers run third-party scripts. The page lists the
routes and points at ``/openapi.json``, which any OpenAPI viewer or client generator reads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlref.serve.schemas import (
    BatchRequest,
    BatchResponse,
    ErrorResponse,
    Prediction,
    Transaction,
    ValidationErrorResponse,
)

if TYPE_CHECKING:
    from fastapi import FastAPI


def retry_after_header() -> dict[str, Any]:
    return {
        "Retry-After": {
            "description": "seconds to wait before retrying (ServeConfig.retry_after_s)",
            "schema": {"type": "integer", "minimum": 0},
        }
    }


def _scoring_error_responses(*, batch: bool) -> dict[int | str, dict[str, Any]]:
    """The error answers of a scoring route, with the bodies ``mlref.serve.errors`` sends."""
    too_large = (
        "the body exceeds its byte limit, or the batch holds more than max_batch_request "
        "transactions: split it"
        if batch
        else "the body exceeds its byte limit"
    )
    return {
        400: {
            "model": ErrorResponse,
            "description": "the body is not JSON, is empty, or is not sent as "
            "'Content-Type: application/json'",
        },
        408: {
            "model": ErrorResponse,
            "description": "the body did not arrive within body_timeout_s of the headers",
        },
        413: {"model": ErrorResponse, "description": too_large},
        422: {
            "model": ValidationErrorResponse,
            "description": "the body is JSON but not a valid request: every invalid field "
            "with the reason (the input is never echoed back)",
        },
        500: {
            "model": ErrorResponse,
            "description": "scoring the batch this request was part of failed (or an internal "
            "error): retry; the detail is in the server log under request_id",
        },
        503: {
            "model": ErrorResponse,
            "description": "not ready yet (loading, start-up being retried, the feature store "
            "cannot be read), shutting down, or overloaded (queue full): retry after "
            "Retry-After seconds",
            "headers": retry_after_header(),
        },
    }


def document_scoring_routes(app: FastAPI) -> None:
    """Put the two Starlette scoring routes into the OpenAPI document with their schemas."""
    from fastapi.openapi.utils import get_openapi
    from fastapi.routing import APIRoute

    async def predict(transaction: Transaction) -> Prediction:  # pragma: no cover - schema only
        """Score one transaction."""
        raise NotImplementedError

    async def predict_batch(body: BatchRequest) -> BatchResponse:  # pragma: no cover
        """Score many transactions; each is scored exactly as if sent alone."""
        raise NotImplementedError

    documented = [
        APIRoute(
            "/predict",
            predict,
            methods=["POST"],
            response_model=Prediction,
            responses=_scoring_error_responses(batch=False),
        ),
        APIRoute(
            "/predict/batch",
            predict_batch,
            methods=["POST"],
            response_model=BatchResponse,
            responses=_scoring_error_responses(batch=True),
        ),
    ]

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = get_openapi(
                title=app.title, version=app.version, routes=[*documented, *app.routes]
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def add_docs_page(app: FastAPI) -> None:
    """``GET /docs``: the routes, one line each, and where the OpenAPI document is."""
    import html

    from fastapi.responses import HTMLResponse

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    async def docs() -> HTMLResponse:
        paths = app.openapi()["paths"]
        items = "".join(
            f"<li><code>{method.upper()} {html.escape(path)}</code>: "
            f"{html.escape(op.get('summary') or op.get('description') or '')}</li>"
            for path, operations in paths.items()
            for method, op in operations.items()
        )
        return HTMLResponse(
            f"<!doctype html><meta charset=utf-8><title>{html.escape(app.title)}</title>"
            f"<h1>{html.escape(app.title)}</h1><ul>{items}</ul>"
            '<p>The OpenAPI document is at <a href="/openapi.json">/openapi.json</a>: load it '
            "into any OpenAPI viewer. (The interactive Swagger UI page is not served: it loads "
            "its scripts from a CDN, which this server does not depend on.)</p>"
        )
