"""ASGI middleware that counts every HTTP request by path and status and times it to the last
byte sent (``mlref_requests_total``, ``mlref_request_latency_seconds``)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

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
