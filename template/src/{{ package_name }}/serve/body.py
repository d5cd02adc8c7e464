"""Reading a scoring request's body: byte limits (413), a time limit (408, with
``BodyReads``), JSON content type (400), and one pydantic-core pass that parses and validates
(422 with FastAPI's error locations)."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError


class BodyTooLarge(ValueError):
    """The body exceeds its byte limit (answered 413)."""


class BodyTimeout(TimeoutError):
    """The body did not arrive within ``body_timeout_s`` of the headers (answered 408)."""


class BodyReads:
    """The request bodies being read, each under its deadline (``asyncio.Timeout``); at
    shutdown :meth:`drain` expires them all, so a client trickling its body is answered at
    once instead of holding the server's shutdown until its graceful timeout."""

    def __init__(self) -> None:
        self.active: set[asyncio.Timeout] = set()
        self.draining = False

    def drain(self) -> None:
        self.draining = True
        loop = asyncio.get_running_loop()
        for deadline in self.active:
            deadline.reschedule(loop.time())


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
        errors = exc.errors()
        if _number_out_of_range(errors):
            # valid JSON holding an integer too long for the parser: a field error (422 on
            # that field), not "not JSON"
            errors = _errors_with_long_integers_clamped(model, body) or errors
        errors = [{**e, "loc": ("body", *e.get("loc", ()))} for e in errors]
        raise RequestValidationError(errors) from None


# pydantic-core's JSON parser refuses integers of more than ~4300 digits as "number out of
# range" (json_invalid), which the client would read as "your JSON is broken"
_OUT_OF_RANGE = re.compile(r"number out of range")
# any integer this long is far outside every integer field's bounds: it is replaced by one
# just as far out, with its sign, so the field's own bound check names the field
_LONG_INTEGER_DIGITS = 40
_FAR_OUT = 2**128


def _number_out_of_range(errors: list[Any]) -> bool:
    return any(
        e.get("type") == "json_invalid" and _OUT_OF_RANGE.search(str(e.get("ctx", {}).get("error")))
        for e in errors
    )


def _errors_with_long_integers_clamped(model: type[BaseModel], body: bytes) -> list[Any] | None:
    def parse_int(text: str) -> int:
        if len(text.lstrip("-")) > _LONG_INTEGER_DIGITS:
            return -_FAR_OUT if text.startswith("-") else _FAR_OUT
        return int(text)

    try:
        parsed = json.loads(body, parse_int=parse_int)
        model.model_validate_json(json.dumps(parsed))
    except ValidationError as exc:
        return list(exc.errors())
    except ValueError:  # not JSON after all (or a float Python cannot hold either)
        return None
    return None  # valid once clamped: cannot happen for bounded fields; keep the parser's error


def is_json(request: Request) -> bool:
    """Declared as JSON (``application/json`` or any ``+json`` type)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return content_type == "application/json" or content_type.endswith("+json")
