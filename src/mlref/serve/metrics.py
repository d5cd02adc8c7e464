"""Prometheus text exposition written by hand (format 0.0.4); no client library needed.

Counters and histograms are updated on the event loop (middleware, batch listener), read by
``GET /metrics``. A lock keeps a scrape consistent if anything ever updates from a thread.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections import Counter
from collections.abc import Sequence

LATENCY_BUCKETS_S: tuple[float, ...] = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
BATCH_SIZE_BUCKETS: tuple[float, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
PREFIX = "mlref"


def _fmt(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


class Histogram:
    """Cumulative-bucket histogram (``le`` upper bounds, ``+Inf`` implied)."""

    def __init__(self, buckets: Sequence[float]) -> None:
        if list(buckets) != sorted(set(buckets)):
            raise ValueError(f"buckets must be strictly increasing, got {list(buckets)}")
        self.buckets = tuple(float(b) for b in buckets)
        self.counts = [0] * (len(self.buckets) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.sum += value
        self.count += 1

    def lines(self, name: str, labels: dict[str, str]) -> list[str]:
        out = []
        cumulative = 0
        for bound, n in zip((*self.buckets, math.inf), self.counts, strict=True):
            cumulative += n
            out.append(f"{name}_bucket{_labels({**labels, 'le': _fmt(bound)})} {cumulative}")
        out.append(f"{name}_sum{_labels(labels)} {_fmt(self.sum)}")
        out.append(f"{name}_count{_labels(labels)} {self.count}")
        return out


class ServingMetrics:
    """Everything ``/metrics`` reports."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[tuple[str, str]] = Counter()  # (path, status) -> count
        self.latency: dict[str, Histogram] = {}
        self.batch_size = Histogram(BATCH_SIZE_BUCKETS)
        self.batch_errors = 0
        self.shed = 0
        self.shadow_errors = 0

    def observe_request(self, path: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(path, str(status))] += 1
            hist = self.latency.get(path)
            if hist is None:
                hist = self.latency[path] = Histogram(LATENCY_BUCKETS_S)
            hist.observe(seconds)

    def observe_batch(self, size: int, failed: bool) -> None:
        with self._lock:
            self.batch_size.observe(size)
            self.batch_errors += int(failed)

    def count_shed(self, n: int = 1) -> None:
        with self._lock:
            self.shed += n

    def count_shadow_error(self) -> None:
        with self._lock:
            self.shadow_errors += 1

    def render(
        self,
        *,
        queue_depth: int,
        in_flight: int,
        ready: bool,
        model_version: str | None,
        shadow_version: str | None,
        log_pending: int,
        log_written: int = 0,
        log_dropped: int = 0,
    ) -> str:
        """The exposition text. ``log_written``/``log_dropped`` are the prediction log's
        counters (``PredictionLog.written``/``.dropped``), read at scrape time."""
        p = PREFIX
        with self._lock:
            lines = [
                f"# HELP {p}_requests_total HTTP requests by path and status code.",
                f"# TYPE {p}_requests_total counter",
            ]
            for (path, status), n in sorted(self.requests.items()):
                lines.append(f"{p}_requests_total{_labels({'path': path, 'status': status})} {n}")
            lines += [
                f"# HELP {p}_request_latency_seconds Time from request start to last byte sent.",
                f"# TYPE {p}_request_latency_seconds histogram",
            ]
            for path, hist in sorted(self.latency.items()):
                lines += hist.lines(f"{p}_request_latency_seconds", {"path": path})
            lines += [
                f"# HELP {p}_batch_size Requests per dispatched model batch.",
                f"# TYPE {p}_batch_size histogram",
                *self.batch_size.lines(f"{p}_batch_size", {}),
                f"# HELP {p}_batch_errors_total Batches whose lookup or inference raised.",
                f"# TYPE {p}_batch_errors_total counter",
                f"{p}_batch_errors_total {self.batch_errors}",
                f"# HELP {p}_shed_total Requests refused with 503 because the queue was full.",
                f"# TYPE {p}_shed_total counter",
                f"{p}_shed_total {self.shed}",
                f"# HELP {p}_shadow_errors_total Shadow scorings that failed (logged without).",
                f"# TYPE {p}_shadow_errors_total counter",
                f"{p}_shadow_errors_total {self.shadow_errors}",
            ]
        lines += [
            f"# HELP {p}_queue_depth Requests waiting for a batch.",
            f"# TYPE {p}_queue_depth gauge",
            f"{p}_queue_depth {queue_depth}",
            f"# HELP {p}_in_flight Requests in the batch being scored.",
            f"# TYPE {p}_in_flight gauge",
            f"{p}_in_flight {in_flight}",
            f"# HELP {p}_prediction_log_pending Record groups queued for the log writer.",
            f"# TYPE {p}_prediction_log_pending gauge",
            f"{p}_prediction_log_pending {log_pending}",
            f"# HELP {p}_prediction_log_rows_written_total Prediction log rows committed.",
            f"# TYPE {p}_prediction_log_rows_written_total counter",
            f"{p}_prediction_log_rows_written_total {log_written}",
            f"# HELP {p}_prediction_log_rows_dropped_total Prediction log rows lost: the "
            "insert failed after every retry, or the log was closed.",
            f"# TYPE {p}_prediction_log_rows_dropped_total counter",
            f"{p}_prediction_log_rows_dropped_total {log_dropped}",
            f"# HELP {p}_ready 1 when the model and the feature store are loaded, the batcher "
            "runs and the server is not shutting down.",
            f"# TYPE {p}_ready gauge",
            f"{p}_ready {int(ready)}",
        ]
        if model_version is not None:
            info = {"model_version": model_version, "shadow_version": shadow_version or ""}
            lines += [
                f"# HELP {p}_model_info Model versions being served.",
                f"# TYPE {p}_model_info gauge",
                f"{p}_model_info{_labels(info)} 1",
            ]
        return "\n".join(lines) + "\n"


def parse_metrics(text: str) -> dict[str, float]:
    """``{'name{labels}': value}`` from exposition text (for tests and quick checks)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        out[key] = float(value)
    return out
