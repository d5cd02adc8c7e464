"""Locust traffic for the scoring server: single and batch predictions plus a few bad bodies.

Run it through ``mlref.load.runner`` (starts the server, writes the users file, evaluates the
budgets), or by hand against a running server::

    uv run locust -f src/mlref/load/locustfile.py --headless -u 20 -r 5 -t 30s \
        --host http://127.0.0.1:8000

Each simulated user picks, per task: an invalid body with probability
``MLREF_LOAD_INVALID_SHARE`` (default 0.03; named ``invalid (expected 422)`` and counted as a
success when the server answers 422, a failure otherwise, so bad input never inflates the
server error rate), a ``/predict/batch`` call of 2..``MLREF_LOAD_MAX_BATCH`` transactions
with probability ``MLREF_LOAD_BATCH_SHARE`` (default 0.10), else a single ``/predict``. Users
and event times come from ``mlref.load.traffic`` (popularity skew, unknown users). Think time
between tasks is uniform in ``MLREF_LOAD_WAIT_MS`` ("min,max" milliseconds, default "5,50").

Every request is also appended to a raw record (name, status, exact latency in ms,
exception, start, transactions) in ``MLREF_LOAD_RAW_DIR`` (default ``./locust-raw``), flushed
when the test stops: Locust's own statistics bucket latencies above 100 ms, the raw record
gives an exact p99.

This module imports Locust (which monkey-patches the standard library with gevent): import it
only in a Locust process, never in a test or server process.
"""

from __future__ import annotations

import itertools
import os
from typing import Any

from locust import FastHttpUser, between, events, task

from mlref.load.rawlog import RAW_DIR_ENV, RawWriter
from mlref.load.traffic import INVALID_NAME, Traffic

SINGLE_NAME = "/predict"
BATCH_NAME = "/predict/batch"


def _share(env: str, default: float) -> float:
    value = float(os.environ.get(env, default))
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{env} must be a share in [0, 1], got {value}")
    return value


def _wait_bounds() -> tuple[float, float]:
    text = os.environ.get("MLREF_LOAD_WAIT_MS", "5,50")
    try:
        low, high = (float(x) / 1000.0 for x in text.split(","))
    except ValueError:
        raise ValueError(
            f"MLREF_LOAD_WAIT_MS must be 'min,max' milliseconds, got {text!r}"
        ) from None
    if not 0 <= low <= high:
        raise ValueError(f"MLREF_LOAD_WAIT_MS needs 0 <= min <= max, got {text!r}")
    return low, high


INVALID_SHARE = _share("MLREF_LOAD_INVALID_SHARE", 0.03)
BATCH_SHARE = _share("MLREF_LOAD_BATCH_SHARE", 0.10)
MAX_BATCH = max(2, int(os.environ.get("MLREF_LOAD_MAX_BATCH", "32")))
WAIT = _wait_bounds()

_raw = RawWriter(os.environ.get(RAW_DIR_ENV, "locust-raw"))
_streams = itertools.count()


@events.request.add_listener
def _record(
    request_type: str,
    name: str,
    response_time: float,
    response_length: int,
    response: Any = None,
    context: dict[str, Any] | None = None,
    exception: BaseException | None = None,
    start_time: float | None = None,
    **_kwargs: Any,
) -> None:
    status = int(getattr(response, "status_code", 0) or 0)
    n = int((context or {}).get("n", 1))
    error = "" if exception is None else f"{type(exception).__name__}: {exception}"[:200]
    _raw.add(name, status, float(response_time), error.replace("\n", " "), start_time or 0.0, n)


@events.test_stop.add_listener
def _flush_on_stop(**_kwargs: Any) -> None:
    _raw.flush()


@events.quitting.add_listener
def _flush_on_quit(**_kwargs: Any) -> None:
    _raw.flush()


class ScoringUser(FastHttpUser):
    """A client of the scoring API."""

    wait_time = between(*WAIT)

    def on_start(self) -> None:
        runner = self.environment.runner
        worker = int(getattr(runner, "worker_index", 0) or 0)
        self.traffic = Traffic.from_env(stream=worker * 100_000 + next(_streams))

    @task
    def score(self) -> None:
        roll = self.traffic.rng.random()
        if roll < INVALID_SHARE:
            self._invalid()
        elif roll < INVALID_SHARE + BATCH_SHARE:
            size = self.traffic.rng.randint(2, MAX_BATCH)
            self.client.post(
                "/predict/batch",
                json=self.traffic.batch(size),
                name=BATCH_NAME,
                context={"n": size},
            )
        else:
            self.client.post(
                "/predict", json=self.traffic.transaction(), name=SINGLE_NAME, context={"n": 1}
            )

    def _invalid(self) -> None:
        kind, body = self.traffic.invalid()
        with self.client.post(
            "/predict",
            json=body,
            name=INVALID_NAME,
            context={"n": 1, "kind": kind},
            catch_response=True,
        ) as response:
            if response.status_code == 422:
                response.success()
            else:
                response.failure(f"{kind}: expected 422, got {response.status_code}")
