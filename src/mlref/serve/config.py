"""The serving knobs (``ServeConfig``) and the body limits derived from them."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlref.settings import Settings

# generous per-transaction byte budget for the batch body limit (a transaction is ~200 bytes)
BYTES_PER_TRANSACTION = 2048
# /predict's body limit: one transaction, with room for pretty-printed JSON
SINGLE_BODY_LIMIT = 8 * BYTES_PER_TRANSACTION


@dataclass(frozen=True)
class ServeConfig:
    """Serving knobs. ``from_settings`` takes every field ``Settings`` has, defaults the rest."""

    max_batch_size: int = 64
    max_wait_ms: float = 0.0  # opportunistic; see Settings.max_wait_ms
    max_queue: int = 1024
    batching: bool = True  # False: every request is scored alone (batch size 1), for benchmarks
    max_batch_request: int = 1000  # transactions per /predict/batch call; more -> 413
    retry_after_s: int = 1
    # admission by deadline (mlref.serve.admission): refuse at once (503) a request predicted
    # to be answered later than p99_budget_ms, and shed one that already waited that long in
    # the queue. The budget defaults to Settings.p99_budget_ms, the latency gate's. False:
    # refuse only when the queue is full (max_queue), as before issue #21
    admission: bool = True
    p99_budget_ms: float = 50.0
    # the HTTP layer's limit (mlref.serve.admission.InFlightLimit): scoring requests in the app
    # at once, adapted to keep their time in the app within half the budget; past it, 503
    # before the body is read (reason in_flight). The limit never falls below min_in_flight
    # and starts at max_batch_size. Off by default: measured (docs/overload.md) it holds the
    # answered latency where many clients each bring their own connection and the loop, not
    # the model, is the bottleneck, but on this project's fast model with a pooled client it
    # shed ~10% at 1x on a loaded machine and cut the goodput at 2x to about half. Only with
    # admission on
    in_flight_admission: bool = False
    min_in_flight: int = 32
    intra_op_threads: int = 1
    model_alias: str = "champion"
    shadow_alias: str | None = "challenger"  # scored in shadow when the registry has it
    model_path: Path | None = None  # serve this ONNX file instead of the registry's champion
    model_card_path: Path | None = None  # its card (JSON); default: <model>.card.json
    log_flush_rows: int = 256
    log_flush_interval_s: float = 0.5
    # a locked/busy prediction-log insert is retried this many times (backoff doubling from
    # log_retry_backoff_s), each attempt waiting up to log_busy_timeout_s for the lock;
    # then its rows are dropped and counted (mlref_prediction_log_rows_dropped_total)
    log_busy_timeout_s: float = 1.0
    log_write_retries: int = 4
    log_retry_backoff_s: float = 0.1
    # the writer's backlog bound (rows, and memory: ~690 B per record); past it rows are
    # dropped and counted (reason queue_full) instead of growing the server's memory
    log_max_pending_rows: int = 50_000
    log_max_pending_bytes: int = 32 * 2**20
    # retention: the oldest rows past log_max_rows (370-480 B each on disk, index included:
    # the default caps the file near 1 GB) or older than log_max_age_s are deleted
    # (mlref_prediction_log_rows_deleted_total); None: no cap
    log_max_rows: int | None = 2_000_000
    log_max_age_s: float | None = None
    # hard cap on the database file (PRAGMA max_page_count): inserts past it drop (disk_full)
    log_max_file_bytes: int | None = None
    # write each request's rows before answering it (docs/prediction-log.md): SIGKILL then
    # loses no answered row; off, up to log_flush_interval_s of answered rows can be lost
    log_sync: bool = False
    # bound on the shutdown drain (accepted requests, their log records and shadow scores);
    # past it, requests still waiting on a hung model/feature call are abandoned with 503
    graceful_timeout_s: float = 30.0
    # FastAPI's built-in OpenTelemetry spans/metrics/logs. Off by default: even with no OTel
    # provider configured FastAPI checks for one on every request; the server exports its own
    # Prometheus metrics at /metrics. Turn on when an OTel collector is wired up.
    otel: bool = False
    # After start-up, move every object loaded so far (Feast, ONNX Runtime, pandas, the
    # model) out of the garbage collector's view (gc.freeze): a full collection over them
    # stalled every request for ~210 ms, several times a minute under load (measured).
    # Process-wide, so off for an app embedded in another program (tests, the demo's thread);
    # the entry points that own their process (`serve`, `python -m mlref.load.server`) turn
    # it on.
    gc_freeze: bool = False
    # start-up that fails (a file missing, a store not yet there) is retried, the wait doubling
    # from load_retry_s up to load_retry_max_s; after load_give_up_s of failures the server gives
    # up: /healthz turns 503 (restart me) and `mlref serve` exits (docs/faults.md)
    load_retry_s: float = 0.5
    load_retry_max_s: float = 15.0
    load_give_up_s: float = 120.0
    # how often a healthy server reads the online store (one row, in the inference thread) so a
    # broken store turns readiness false without waiting for traffic; while it is broken the
    # probe runs with the load retry's backoff until a read succeeds again
    store_check_interval_s: float = 2.0
    # a request body must arrive within this long of the request's headers (else 408): a
    # client trickling its body must not hold a connection, or shutdown, for ever
    body_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if self.max_batch_request < 1:
            raise ValueError(f"max_batch_request must be >= 1, got {self.max_batch_request}")
        if self.max_batch_request > self.max_queue:
            raise ValueError(
                f"max_batch_request ({self.max_batch_request}) exceeds max_queue "
                f"({self.max_queue}): such a batch could never be admitted; lower it or raise "
                "max_queue"
            )
        if not (math.isfinite(self.p99_budget_ms) and self.p99_budget_ms > 0):
            raise ValueError(f"p99_budget_ms must be a finite number > 0, got {self.p99_budget_ms}")
        if self.min_in_flight < 1:  # above max_queue it is clamped to it (create_app)
            raise ValueError(f"min_in_flight must be >= 1, got {self.min_in_flight}")
        if self.retry_after_s < 0:
            raise ValueError(f"retry_after_s must be >= 0, got {self.retry_after_s}")
        if not self.graceful_timeout_s > 0:
            raise ValueError(f"graceful_timeout_s must be > 0, got {self.graceful_timeout_s}")
        for name in (
            "load_retry_s",
            "load_retry_max_s",
            "load_give_up_s",
            "store_check_interval_s",
            "body_timeout_s",
        ):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> ServeConfig:
        values = {
            f.name: getattr(settings, f.name) for f in fields(cls) if hasattr(settings, f.name)
        }
        values.update(overrides)
        for key in ("model_path", "model_card_path"):
            if values.get(key) is not None:
                values[key] = Path(values[key])
        return cls(**values)

    @property
    def batch_body_limit(self) -> int:
        """/predict/batch's body limit in bytes."""
        return self.max_batch_request * BYTES_PER_TRANSACTION
