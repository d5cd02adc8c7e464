"""ASGI middleware: ``MetricsMiddleware`` counts every HTTP request by path and status and
times it to the last byte sent (``mlref_requests_total``, ``mlref_request_latency_seconds``);
``RequestGuardMiddleware`` gives each request an id and bounds the time its body may take;
``InFlightAdmission`` refuses a scoring request (503) before its body is read when the server
already works on as many as it can answer within the budget (``mlref.serve.admission``)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from mlref.serve.batching import PredictorClosed
from mlref.serve.body import BodyTimeout
from mlref.serve.errors import REQUEST_ID_KEY

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from mlref.serve.admission import InFlightLimit
    from mlref.serve.body import BodyReads
    from mlref.serve.metrics import ServingMetrics

# paths counted under their own label; anything else is "other", so a scanner probing random
# URLs cannot grow the label set without bound
KNOWN_PATHS = ("/predict", "/predict/batch", "/healthz", "/readyz", "/metrics")


class MetricsMiddleware:
    """Count every HTTP request by path and status; time it to the last byte sent."""

    def __init__(self, app: ASGIApp, metrics: ServingMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"] if scope["path"] in KNOWN_PATHS else "other"
        started = time.perf_counter()
        status = 500
        observed = False

        async def send_and_observe(message: Message) -> None:
            nonlocal status, observed
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)
            last = message["type"] == "http.response.body" and not message.get("more_body")
            if last and not observed:
                observed = True
                self.metrics.observe_request(path, status, time.perf_counter() - started)

        try:
            await self.app(scope, receive, send_and_observe)
        finally:
            if not observed:
                observed = True
                self.metrics.observe_request(path, status, time.perf_counter() - started)


class RequestGuardMiddleware:
    """Give every HTTP request an id (``X-Request-ID`` on the answer; the key
    ``REQUEST_ID_KEY`` in the scope for the error handlers and the log) and bound the time its
    body may take to arrive: past ``body_timeout_s`` after the headers, reading it raises
    ``BodyTimeout`` (408); once the server drains (``BodyReads.drain``), ``PredictorClosed``
    (503). Reading after the body (Starlette waiting for a disconnect) is not bounded."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        request_ids: Callable[[], str],
        body_timeout_s: float,
        body_reads: BodyReads,
    ) -> None:
        self.app = app
        self.request_ids = request_ids
        self.body_timeout_s = body_timeout_s
        self.body_reads = body_reads

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = self.request_ids()
        scope[REQUEST_ID_KEY] = rid
        header = (b"x-request-id", rid.encode())
        reads = self.body_reads
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.body_timeout_s
        body_done = False

        async def bounded_receive() -> Message:
            nonlocal body_done
            if body_done:
                return await receive()
            if reads.draining:
                raise PredictorClosed("the server is shutting down")
            timeout = asyncio.timeout_at(deadline)
            reads.active.add(timeout)
            try:
                async with timeout:
                    message = await receive()
            except TimeoutError:
                if reads.draining:
                    raise PredictorClosed("the server is shutting down") from None
                raise BodyTimeout(
                    f"the request body did not arrive within {self.body_timeout_s:g} s of its "
                    "headers; send it at once"
                ) from None
            finally:
                reads.active.discard(timeout)
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        await self.app(scope, bounded_receive, send_with_id)


# the paths whose requests the in-flight limit holds: the scoring work; probes and /metrics
# must answer under overload (a load balancer asks /readyz exactly then)
SCORING_PATHS = frozenset({"/predict", "/predict/batch"})


class InFlightAdmission:
    """Hold the scoring requests in the app to ``limit`` (``InFlightLimit``): past it, answer
    503 + ``Retry-After`` at once, without reading the body, and count it
    (``mlref_requests_shed_total{reason="in_flight"}``). Every admitted ``/predict`` reports
    its time in the app (to its last byte sent) back to the limit, which learns from it; a
    ``/predict/batch`` call counts as one in flight but teaches nothing (its time grows with
    its size). Placed inside ``MetricsMiddleware`` and ``RequestGuardMiddleware``, so its
    503s are counted by path and status and carry a request id like every answer."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        limit: InFlightLimit,
        metrics: ServingMetrics,
        retry_after_s: int,
    ) -> None:
        self.app = app
        self.limit = limit
        self.metrics = metrics
        self.retry_after = str(max(1, retry_after_s)).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in SCORING_PATHS:
            await self.app(scope, receive, send)
            return
        limit = self.limit
        if not limit.try_acquire():
            await self._refuse(scope, send)
            return
        if scope["path"] != "/predict":
            try:
                await self.app(scope, receive, send)
            finally:
                limit.release(None)
            return
        loop = asyncio.get_running_loop()
        started = loop.time()
        released = False

        # released and timed at the last byte sent, as the client sees it: the response's
        # background task (the prediction log's hand-off, the shadow model) runs after that,
        # off the clock and outside the limit
        async def send_and_release(message: Message) -> None:
            nonlocal released
            await send(message)
            last = message["type"] == "http.response.body" and not message.get("more_body")
            if last and not released:
                released = True
                limit.release(loop.time() - started)

        try:
            await self.app(scope, receive, send_and_release)
        finally:
            if not released:
                released = True
                limit.release(None)  # no answer sent: nothing to learn

    async def _refuse(self, scope: Scope, send: Send) -> None:
        self.metrics.count_shed(reason="in_flight")
        body = json.dumps(
            {"detail": str(self.limit.refused()), "request_id": scope.get(REQUEST_ID_KEY, "-")}
        ).encode()
        # the body is never read: uvicorn discards it, and the connection stays usable (the
        # parser skips the rest of this request), so the client need not reconnect to retry
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", self.retry_after),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
