"""Reading a scoring request's body: byte limits (413), JSON content type (400), and one
pydantic-core pass that parses and validates (422 with FastAPI's error locations)."""

from __future__ import annotations

from typing import TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError


class BodyTooLarge(ValueError):
    """The body exceeds its byte limit (answered 413)."""


async def read_json_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 past ``limit`` bytes (before reading it all when
    Content-Length says so) and with 400 when it is not declared as JSON."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"request body of {declared} bytes exceeds the limit of {limit} bytes")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body:
        raise RequestValidationError(
            [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}]
        )
    if not is_json(request):
        raise RequestValidationError(
            [{"type": "content_type", "loc": ("body",), "msg": "not JSON", "input": None}]
        )
    return body


_Model = TypeVar("_Model", bound=BaseModel)


def validate(model: type[_Model], body: bytes) -> _Model:
    """Parse and validate in one pass (pydantic-core); errors go to the 400/422 handler with
    the same locations FastAPI would give them (under ``body``)."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e.get("loc", ()))} for e in exc.errors()]
        raise RequestValidationError(errors) from None


def is_json(request: Request) -> bool:
    """Declared as JSON (``application/json`` or any ``+json`` type)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return content_type == "application/json" or content_type.endswith("+json")
