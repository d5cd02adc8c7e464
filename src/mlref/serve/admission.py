"""Admission by deadline: refuse at once what the batcher could not answer within the budget.

Without it the server refused work only when its queue (``max_queue``, 1,024) was full: under
a burst every accepted request waited behind a thousand others (answers 5-10 s late, clients
timing out, goodput falling from ~1,450 to ~200 req/s at 2,000 connections). Two rules now
keep the queue no longer than the budget allows (``ServeConfig.p99_budget_ms``, by default the
p99 budget the latency gate holds, ``Settings.p99_budget_ms``):

1. **At admission** (``Admission.check``): the request's completion time is predicted from
   where it would stand in the queue and the measured cost of a batch; when the prediction is
   over the budget it is refused at once (``Overloaded``, reason ``deadline``: 503 +
   ``Retry-After``) instead of being queued to be answered late.
2. **When a batch is formed** (``Admission.late_before``): a single request that already waited
   in the queue longer than the budget is answered 503 (reason ``late``) instead of being
   scored (a batch call's transactions wait behind each other by design: they are not): its
   answer would be late anyway, and scoring it delays every request behind it. This is the
   backstop for what the prediction cannot see (a stall of the machine, a model call slower
   than measured, the first batches before anything was measured).

Which estimator, and why. Read before choosing:

- Triton's queue policy: a per-request timeout in the scheduling queue with
  ``timeout_action: REJECT`` plus ``max_queue_size``. It rejects only once the time is spent,
  so a caller learns after the full budget that it will not be served: that is rule 2 here,
  not enough alone (every refused caller would still wait the budget out).
- BentoML's adaptive batching (the CORK dispatcher): regresses the recent batches' processing
  time on their size and refuses (503, ``ServiceUnavailable``) a request whose wait plus the
  estimated time would exceed ``max_latency_ms``. This predicts, so it answers at once.
- CoDel (Nichols and Jacobson, 2012): drops when the *minimum* sojourn time over an interval
  (100 ms) stays above a target (5 ms). Built for router queues where the service rate is
  unknown and varies with the link; it reacts only after an interval of standing queue and
  drops at dequeue, so the refused request has already waited.

Chosen: BentoML's kind, queue position over the measured service cost, because this server
knows both exactly (its own queue; one model thread, so the drain rate is the batch cost) and
because only a prediction can answer the excess *at once* (the brief of issue #21: the 503
must be quick, so the client can retry elsewhere). The cost of a batch of ``n`` is fitted as
``fixed + per_item * n`` by exponentially weighted least squares over the recent batches
(``_DECAY``, about the last 20), since a batch's cost is far from proportional to its size
(the feature lookup and the model call have a fixed part); with too little spread in the sizes
seen, the mean cost is used for every size. Triton's reject-on-timeout is kept as rule 2.

A request that joins the next batch (queue depth below ``max_batch_size``) is always admitted:
refusing it shortens no queue, it only shrinks the batch, and full batches are what keeps the
goodput up when each batch costs nearly the budget (see ``check``).

The hot path: ``safe_depth`` (recomputed once per batch) is the queue depth below which every
position is surely within the budget, so an unloaded server pays one integer comparison per
request (``BatchingPredictor._enqueue``); the prediction runs only above it. Until a batch has
been measured nothing is refused by prediction (rule 2 still applies).

Times are the event loop's clock (``loop.time()``), passed in: the estimator reads no clock of
its own, so tests drive it with made-up times.
"""

from __future__ import annotations

import math

# weight kept by the older batches each time one is measured (memory of ~1/(1-0.95) = 20)
_DECAY = 0.95
# below this weighted variance of the batch sizes seen, the slope cannot be fitted
_MIN_SIZE_VARIANCE = 0.25

REASONS = ("queue_full", "deadline", "late", "in_flight")


class Overloaded(RuntimeError):
    """The request cannot be answered within the budget: answer 503 + ``Retry-After`` now.

    ``reason`` is ``deadline`` (refused at admission, predicted late) or ``late`` (it already
    waited past the budget when its batch was formed); ``in_flight`` is used by the HTTP
    layer's limit (``InFlightLimit``), which answers before the app runs; ``retry_after_s`` a whole number of
    seconds, at least 1 (the ``Retry-After`` header)."""

    def __init__(self, reason: str, detail: str, *, retry_after_s: int = 1) -> None:
        if reason not in REASONS:
            raise ValueError(f"reason must be one of {REASONS}, got {reason!r}")
        self.reason = reason
        self.retry_after_s = max(1, int(retry_after_s))
        super().__init__(detail)


class Admission:
    """Predicts each request's completion time from the queue and the measured batch cost.

    ``budget_ms``: answers later than this are not worth giving (default in ``ServeConfig``:
    the p99 budget). ``max_batch_size`` and ``max_wait_ms`` are the batcher's.
    """

    def __init__(self, budget_ms: float, max_batch_size: int, max_wait_ms: float = 0.0) -> None:
        if not (math.isfinite(budget_ms) and budget_ms > 0):
            raise ValueError(f"budget_ms must be a finite number > 0, got {budget_ms!r}")
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
        if not (math.isfinite(max_wait_ms) and max_wait_ms >= 0):
            raise ValueError(f"max_wait_ms must be a finite number >= 0, got {max_wait_ms!r}")
        self.budget_s = budget_ms / 1000.0
        self.max_batch_size = int(max_batch_size)
        self.max_wait_s = max_wait_ms / 1000.0
        # exponentially weighted sums of the batches seen: weight, size, cost, size^2, size*cost
        self._w = self._x = self._y = self._xx = self._xy = 0.0
        self._fixed_s = 0.0
        self._per_item_s = 0.0
        self.batches_seen = 0
        # queue depths below this are admitted without a prediction (nothing measured: all)
        self.safe_depth: float = math.inf

    # -- learning the cost ---------------------------------------------------------------------
    def observe(self, size: int, duration_s: float) -> None:
        """One batch of ``size`` requests took ``duration_s`` in ``process``."""
        if size < 1 or not (math.isfinite(duration_s) and duration_s >= 0):
            return  # nothing to learn from (a failed or empty batch)
        x, y = float(size), float(duration_s)
        d = _DECAY
        self._w = d * self._w + 1.0
        self._x = d * self._x + x
        self._y = d * self._y + y
        self._xx = d * self._xx + x * x
        self._xy = d * self._xy + x * y
        self.batches_seen += 1
        mean_x, mean_y = self._x / self._w, self._y / self._w
        var_x = self._xx / self._w - mean_x * mean_x
        slope = 0.0
        if var_x > _MIN_SIZE_VARIANCE:
            slope = max(0.0, (self._xy / self._w - mean_x * mean_y) / var_x)
        # a negative fixed part is noise of the fit: clamp, and keep the mean cost right
        fixed = max(0.0, mean_y - slope * mean_x)
        self._fixed_s, self._per_item_s = fixed, slope
        full = self.batch_seconds(self.max_batch_size)
        # worst case for a position in the k-th batch ahead: a full batch just started, k full
        # batches, then its own (full) batch, plus the batching wait: (k + 2) full batches
        batches = math.floor((self.budget_s - self.max_wait_s) / full) if full > 0 else math.inf
        self.safe_depth = max(float(self.max_batch_size), (batches - 1) * self.max_batch_size)

    def batch_seconds(self, size: int) -> float:
        """Predicted time in ``process`` for a batch of ``size`` (0 before any batch)."""
        return self._fixed_s + self._per_item_s * size

    # -- deciding ------------------------------------------------------------------------------
    def completion_s(
        self, now: float, position: int, depth: int, running_since: float | None, running: int
    ) -> float:
        """Predicted seconds from ``now`` until the request at queue ``position`` (0 = first to
        go) is scored, with ``depth`` requests queued in all (itself included) and a batch of
        ``running`` requests in ``process`` since ``running_since`` (None: the worker is idle).
        """
        b = self.max_batch_size
        remaining = 0.0
        if running_since is not None and running > 0:
            remaining = max(0.0, self.batch_seconds(running) - (now - running_since))
        ahead = position // b  # whole batches dispatched before the one it joins
        # its own batch as queued now. Arrivals until it goes out may grow it (a little more
        # cost: the late rule covers that); counting it full instead extrapolated the cost fit
        # to 64 from small batches and refused requests at twice a load that was served fine
        # (nox -s overload, 2x: 49 refused at a p50 of 11 ms)
        own = min(b, max(1, depth - ahead * b))
        wait = self.max_wait_s if own < b else 0.0  # a batch that is not full may wait to fill
        return remaining + ahead * self.batch_seconds(b) + wait + self.batch_seconds(own)

    def check(
        self, now: float, depth: int, n: int, running_since: float | None, running: int
    ) -> None:
        """Raise ``Overloaded`` (reason ``deadline``) when the last of ``n`` requests joining a
        queue of ``depth`` would be scored later than the budget; return otherwise.

        Callers skip this while ``depth + n <= safe_depth`` (surely in time)."""
        if self.batches_seen == 0:
            return  # nothing measured yet: no prediction (the late rule still holds)
        total = depth + n
        if depth < self.max_batch_size:
            # it joins the next batch (a batch call: its first transaction does): refusing it
            # shortens no queue, it only makes that batch smaller. /predict/batch with 1,000
            # transactions must not be refused by an idle server for its own size. A model slower than the budget alone would otherwise refuse everything,
            # and under CPU contention (a batch's wall time inflated towards the budget) only
            # batches of a few requests were admitted: goodput at 10x fell to a fifth of the
            # queue-only server's (nox -s overload). The late rule still sheds its requests if
            # the batch ahead of them runs past the budget.
            return
        eta = self.completion_s(now, total - 1, total, running_since, running)
        if eta <= self.budget_s:
            return
        # the queue drains at one full batch per batch_seconds(b): by then the same request
        # would fit; HTTP's Retry-After takes whole seconds
        retry = math.ceil(eta - self.budget_s)
        raise Overloaded(
            "deadline",
            f"overloaded: {depth} requests queued, this one would be answered in about "
            f"{eta * 1000:.0f} ms, over the {self.budget_s * 1000:.0f} ms budget; retry later",
            retry_after_s=retry,
        )

    def late_before(self, now: float) -> float:
        """Requests queued before this time (event-loop clock) have waited past the budget."""
        return now - self.budget_s

    def late(self, waited_s: float) -> Overloaded:
        """The error for a request that waited ``waited_s`` in the queue, past the budget."""
        return Overloaded(
            "late",
            f"overloaded: this request waited {waited_s * 1000:.0f} ms in the queue, past the "
            f"{self.budget_s * 1000:.0f} ms budget, so its answer would be late; retry later",
        )


class InFlightLimit:
    """An adaptive limit on the scoring requests in the app at once, held at the HTTP layer.

    Why a second layer: the batching queue is the only thing ``Admission`` sees, and with a
    fast model it is not where requests wait under overload. Parsing, reading and validating
    the body, building and writing the answer all run on the one event loop; far above
    capacity that loop saturates first, the batching queue stays shorter than one batch, and
    ``Admission`` refuses nothing while the answered requests are hundreds of ms late
    (``nox -s overload``, 10x: p99 650 ms). This limit is checked before the app reads the
    body (``mlref.serve.middleware.InFlightAdmission``): a refused request costs uvicorn's
    parse of its headers and a small 503, not its whole cost.

    The limit is AIMD on the measured time in the app (Netflix's concurrency-limits
    ``AIMDLimit``; Envoy's adaptive-concurrency filter is the gradient variant of the same
    idea): each admitted request reports how long it took from the limit's check to its last
    byte sent. Slower than ``target_s`` (half the budget by default: the other half is left
    for what the app cannot time, the wait in socket buffers and for the loop before the app
    runs, and the answer's way back), the limit shrinks by ``backoff``; within it, and while
    the limit was nearly used, it grows by one. So under overload the number of requests the
    loop works on at once, and with it their latency, settles near the target; the excess is
    refused at once. A static limit cannot do this: the right number is the service rate times
    the budget (Little's law), and the service rate moves with the machine's load and the
    batch sizes. uvicorn's ``--limit-concurrency`` is static and counts *connections* as well
    as tasks (``len(self.connections) >= limit``): with keep-alive clients holding more
    connections than the limit it refuses every request, and its 503 closes the connection
    and has no ``Retry-After`` (docs/overload.md).

    ``floor`` is the least the limit falls to (never refuse below it: a machine stall must not
    turn a normal load into refusals); ``ceiling`` the most; ``initial`` where it starts
    (default ``floor``; the app starts it at ``max_batch_size``). Starting at the ceiling
    (1,024) let a burst onto an idle server take hundreds of requests into the app before the
    first late answer came back, all of them then answered seconds late (measured in
    test_admission_in_flight_http.py: p90 3.4 s); from a start near the load it grows by one
    per answer in time, so a rising load lifts it within a fraction of a second. Times are
    passed in (the event loop's clock); the limit reads no clock, so tests drive it with
    made-up times.
    """

    def __init__(
        self,
        budget_ms: float,
        *,
        floor: int,
        ceiling: int,
        initial: int | None = None,
        target_share: float = 0.5,
        backoff: float = 0.9,
    ) -> None:
        if not (math.isfinite(budget_ms) and budget_ms > 0):
            raise ValueError(f"budget_ms must be a finite number > 0, got {budget_ms!r}")
        if not 1 <= floor <= ceiling:
            raise ValueError(f"need 1 <= floor <= ceiling, got floor={floor}, ceiling={ceiling}")
        if not 0 < target_share <= 1:
            raise ValueError(f"target_share must be in (0, 1], got {target_share!r}")
        if not 0 < backoff < 1:
            raise ValueError(f"backoff must be in (0, 1), got {backoff!r}")
        self.budget_s = budget_ms / 1000.0
        self.target_s = self.budget_s * target_share
        self.floor = int(floor)
        self.ceiling = int(ceiling)
        self.backoff = backoff
        start = floor if initial is None else initial
        if not floor <= start <= ceiling:
            raise ValueError(f"initial must be in [floor, ceiling], got {initial}")
        self.limit = float(start)
        self.in_flight = 0

    def try_acquire(self) -> bool:
        """Admit one more request (True) unless the limit is reached (False: answer 503)."""
        if self.in_flight >= self.limit:
            return False
        self.in_flight += 1
        return True

    def release(self, took_s: float | None) -> None:
        """An admitted request finished after ``took_s`` in the app; None: do not learn from it
        (a batch call, whose time grows with its size, or a request that failed)."""
        self.in_flight -= 1
        if took_s is None or not math.isfinite(took_s):
            return
        if took_s > self.target_s:
            # from what is in use, not from a limit far above it: after a quiet spell the limit
            # may have grown past the load; one late answer brings it down to the load at once
            used = min(self.limit, float(self.in_flight + 1))
            self.limit = max(float(self.floor), used * self.backoff)
        elif 2 * (self.in_flight + 1) >= self.limit:
            # grow only while the limit is being used: an idle server learns nothing about
            # how many requests it can take at once (Netflix's AIMD does the same)
            self.limit = min(float(self.ceiling), self.limit + 1.0)

    def refused(self) -> Overloaded:
        """The error for a request refused by the limit."""
        return Overloaded(
            "in_flight",
            f"overloaded: {self.in_flight} requests are being served, the most this server can "
            f"answer within the {self.budget_s * 1000:.0f} ms budget now; retry later",
        )
