"""Measured capacity: the highest throughput at which the p99 latency budget still holds.

``search_capacity(url, env, out_dir, p99_budget_ms=50)`` offers a geometric ladder of open-loop
rates (``start_rps``, x ``factor``, ... up to ``max_rps``) to a running server on 127.0.0.1,
each point a short phase of ``python -m mlref.load.loadgen`` in its own process (``run_point``;
Poisson arrivals, latency from the scheduled send time, a warm-up first). Each point is long
enough for ``min_requests`` requests, so the p99 has a distribution-free upper bound
(``mlgates.stats.quantile_bounds``: 299 requests for p99 at 95%). A point:

- **held**: no failed request (error or timeout) and the p99's upper bound is within the budget;
- **broke**: a request failed, or the p99's *lower* bound is over the budget (evidence, not
  noise);
- **unclear**: neither (the bounds straddle the budget); the ladder goes on;
- **starved**: not held, and the load generator fell behind its own schedule by more than
  ``max_lag_ms`` at p99: the machine kept a process that only sleeps and sends waiting for a
  core that long, and it keeps the server waiting alike, so the break measured the machine,
  not the server. (A point that held under such lag stays held: waiting for a core only adds
  latency.) Re-measured once; starved twice ends the ladder (capacity at least ``low_rps``,
  upper end unknown).

The re-measure of a starved phase is ``run_point_retrying``, shared with the gate suite's load
phase (``tests/gates/conftest.py``): one rule for when a measurement is taken again.

The ladder stops at the first point that broke, at ``max_rps``, when the next point would pass
``max_seconds``, or on a starved point. Capacity then lies in ``[low_rps, high_rps)``:
``low_rps`` is the highest throughput completed at a held point (0 when none held) and
``high_rps`` the offered rate of the point that broke (None when none broke: the capacity is at
least ``low_rps``). It assumes p99 does not fall as the load rises. Loopback only; every
subprocess is bounded by a timeout.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

import numpy as np

Outcome = Literal["held", "broke", "unclear", "starved"]
Judged = TypeVar("Judged")

#: a load generator later than this share of the p99 budget at p99 was starved of CPU. It
#: sleeps between sends, so its lateness is how long a waking process waits for a core; the
#: server waits that long several times per request (event loop, batcher, model thread). On
#: a shared 2-core machine: 1.6-8 ms when only other jobs ran, 10-78 ms beside two CPU-bound
#: processes (``nox -s noisy``), where a clean server's p99 at 50 req/s read 70-190 ms.
STARVED_LAG_SHARE = 0.15


@dataclass(frozen=True)
class PointResult:
    """One open-loop phase: latencies (ms) of the answered requests and of the unanswered ones
    at their censored latency, the count of failed requests, and the generator's summary."""

    offered_rps: float
    duration_s: float
    latencies_ms: np.ndarray
    ok_latencies_ms: np.ndarray
    statuses: tuple[int, ...]
    achieved_rps: float
    generator_lag_p99_ms: float
    summary: dict[str, object] = field(repr=False)

    @property
    def requests(self) -> int:
        return len(self.statuses)

    @property
    def failed(self) -> int:
        return sum(1 for s in self.statuses if s != 200)


# Same parameters as ``loadgen.run`` (``duplicates`` pairs them): they are its command line,
# passed across the process boundary that keeps the generator out of this interpreter.
def run_point(
    url: str,
    env: dict[str, str],
    out_dir: Path,
    *,
    rate: float,
    duration_s: float,
    warmup_s: float = 1.0,
    seed: int = 0,
    connections: int = 32,
    drain_s: float = 5.0,
) -> PointResult:
    """One ``mlref.load.loadgen`` phase against ``url`` (loopback only) in its own process;
    ``env`` is the traffic environment (``mlref.load.runner.traffic_env``)."""
    from mlref.load.loadgen import TIMEOUT_EXCEPTION
    from mlref.load.rawlog import read_raw

    if not url.startswith("http://127.0.0.1"):
        raise ValueError(f"load goes to loopback only, not {url}")
    out_dir.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "mlref.load.loadgen", "--url", url, "--rate", f"{rate:g}",
        "--duration", f"{duration_s:g}", "--warmup", f"{warmup_s:g}", "--seed", str(seed),
        "--connections", str(connections), "--drain", f"{drain_s:g}", "--out", str(out_dir),
    ]  # fmt: skip
    done = subprocess.run(
        command,
        env=env,
        capture_output=True,
        text=True,
        timeout=duration_s + warmup_s + drain_s + 120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed ({done.returncode}):\n{done.stderr[-2000:]}")
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    raw = read_raw(out_dir)
    ok = (raw["status"] == 200) & (raw["exception"] == "")
    # the unanswered requests stay in the tail at their censored latency (>= the drain
    # deadline): dropping the slowest would make an overloaded server's p99 read low
    tail = ok | (raw["exception"] == TIMEOUT_EXCEPTION)
    return PointResult(
        offered_rps=rate,
        duration_s=duration_s,
        latencies_ms=raw.loc[tail, "latency_ms"].to_numpy(dtype=np.float64),
        ok_latencies_ms=raw.loc[ok, "latency_ms"].to_numpy(dtype=np.float64),
        statuses=tuple(
            int(s) if e == "" else -1 for s, e in zip(raw["status"], raw["exception"], strict=True)
        ),
        achieved_rps=float(summary["achieved_rps"]),
        generator_lag_p99_ms=float(summary["generator_lag_p99_ms"]),
        summary=summary,
    )


# Same leading parameters as ``run_point`` and ``search_capacity`` (``duplicates`` pairs
# them): a phase's knobs, handed down unchanged from the ladder to the phase.
def run_point_retrying(
    url: str,
    env: dict[str, str],
    out_dir: Path,
    *,
    name: str,
    rate: float,
    duration_s: float,
    warmup_s: float = 1.0,
    seed: int = 0,
    judge: Callable[[PointResult, int], Judged],
    starved: Callable[[Judged], bool],
    pause_s: float = 3.0,
) -> list[Judged]:
    """One ``run_point`` phase, judged, and measured once more when the judgement is
    ``starved``: the generator fell behind its own schedule, so the machine, not the server,
    set the pace; after ``pause_s`` a burst of other work may have passed. Attempt ``k``
    (1 or 2) writes to ``out_dir / f"{name}-{k}"`` with seed ``seed + k - 1`` and is judged
    by ``judge(point, k)``. Returns the judged attempts in order; the last one is the verdict
    (still starved after two: the caller says so, never a verdict by luck)."""
    attempts: list[Judged] = []
    for attempt in (1, 2):
        point = run_point(
            url,
            env,
            out_dir / f"{name}-{attempt}",
            rate=rate,
            duration_s=duration_s,
            warmup_s=warmup_s,
            seed=seed + attempt - 1,
        )
        attempts.append(judge(point, attempt))
        if not starved(attempts[-1]):
            break
        if attempt == 1:
            time.sleep(pause_s)
    return attempts


@dataclass(frozen=True)
class CapacityPoint:
    """One rung of the ladder as judged: its outcome and the p99 bounds behind it."""

    offered_rps: float
    achieved_rps: float
    requests: int
    failed: int
    p99_ms: float
    p99_low_ms: float
    p99_high_ms: float
    generator_lag_p99_ms: float
    outcome: Outcome
    attempt: int

    def describe(self) -> str:
        return (
            f"{self.offered_rps:g} req/s: {self.outcome} (p99 {self.p99_ms:.1f} ms, bounds "
            f"[{self.p99_low_ms:.1f}, {self.p99_high_ms:.1f}], {self.failed} of "
            f"{self.requests} failed, achieved {self.achieved_rps:.0f} req/s, generator lag "
            f"p99 {self.generator_lag_p99_ms:.1f} ms)"
        )


@dataclass(frozen=True)
class CapacityResult:
    """The ladder and the capacity interval it supports (see the module docstring)."""

    points: tuple[CapacityPoint, ...]
    p99_budget_ms: float
    confidence: float
    low_rps: float
    high_rps: float | None
    stopped: str
    elapsed_s: float

    @property
    def interval(self) -> tuple[float, float | None]:
        """``(low_rps, high_rps)``, the input of ``mlgates.cost_budget(capacity_rps=...)``."""
        return (self.low_rps, self.high_rps)

    @property
    def starved(self) -> bool:
        return any(p.outcome == "starved" for p in self.points)

    def describe(self) -> str:
        high = "?" if self.high_rps is None else f"{self.high_rps:g}"
        ladder = "; ".join(p.describe() for p in self.points)
        return (
            f"capacity at p99 <= {self.p99_budget_ms:g} ms in [{self.low_rps:.0f}, {high}) "
            f"req/s, stopped: {self.stopped}, {self.elapsed_s:.0f} s ({ladder})"
        )


def judge_point(
    point: PointResult, p99_budget_ms: float, confidence: float, max_lag_ms: float, attempt: int
) -> CapacityPoint:
    """Held, broke, unclear or starved (see the module docstring)."""
    from mlgates import stats

    lat = point.latencies_ms
    if lat.size:
        bounds = stats.quantile_bounds(lat, 0.99, confidence)
        p99, low, high = float(np.percentile(lat, 99)), bounds.low, bounds.high
    else:
        p99, low, high = float("nan"), float("nan"), float("inf")
    outcome: Outcome
    if point.failed or low > p99_budget_ms:
        outcome = "broke"
    elif high <= p99_budget_ms:
        outcome = "held"
    else:
        outcome = "unclear"
    if outcome != "held" and point.generator_lag_p99_ms > max_lag_ms:
        # a machine that kept the generator waiting that long keeps the server waiting too
        # (both wait for a core): a break measured the machine. A hold stands: waiting for
        # a core only ever adds latency, so the quiet server holds the budget too.
        outcome = "starved"
    return CapacityPoint(
        offered_rps=point.offered_rps,
        achieved_rps=point.achieved_rps,
        requests=point.requests,
        failed=point.failed,
        p99_ms=p99,
        p99_low_ms=low,
        p99_high_ms=high,
        generator_lag_p99_ms=point.generator_lag_p99_ms,
        outcome=outcome,
        attempt=attempt,
    )


def search_capacity(
    url: str,
    env: dict[str, str],
    out_dir: Path,
    *,
    p99_budget_ms: float,
    confidence: float = 0.95,
    start_rps: float = 25.0,
    factor: float = 2.0,
    max_rps: float = 1600.0,
    max_seconds: float = 90.0,
    min_requests: int = 320,
    min_point_s: float = 2.0,
    warmup_s: float = 1.0,
    max_lag_ms: float | None = None,
    pause_s: float = 3.0,
    seed: int = 0,
) -> CapacityResult:
    """Climb the ladder against ``url`` and return the capacity interval (module docstring).

    ``min_requests`` per point (at least what an upper bound of p99 needs at ``confidence``);
    ``max_lag_ms`` defaults to ``STARVED_LAG_SHARE`` of the budget (7.5 ms of 50 ms). A
    starved point is re-measured after ``pause_s`` (a burst of other work may pass).
    """
    from mlgates import stats

    if not (0 < start_rps <= max_rps <= 20_000 and factor > 1 and 0 < max_seconds <= 600):
        raise ValueError("need 0 < start_rps <= max_rps <= 20000, factor > 1, max_seconds <= 600")
    min_requests = max(min_requests, stats.quantile_upper_bound_min_samples(0.99, confidence))
    lag_limit = STARVED_LAG_SHARE * p99_budget_ms if max_lag_ms is None else max_lag_ms
    started = time.monotonic()
    points: list[CapacityPoint] = []
    low, high, stopped = 0.0, None, "rate cap"
    rate = start_rps
    while rate <= max_rps:
        duration = max(min_point_s, min_requests / rate)
        # a point costs its warm-up, its measured phase and a few seconds of start-up/drain
        if time.monotonic() - started + duration + warmup_s + 3.0 > max_seconds:
            stopped = "time cap"
            break
        attempts = run_point_retrying(
            url,
            env,
            out_dir,
            name=f"{rate:g}rps",
            rate=rate,
            duration_s=duration,
            warmup_s=warmup_s,
            seed=seed,
            judge=lambda point, attempt: judge_point(
                point, p99_budget_ms, confidence, lag_limit, attempt
            ),
            starved=lambda judged: judged.outcome == "starved",
            pause_s=pause_s,
        )
        points.extend(attempts)
        judged = attempts[-1]
        if judged.outcome == "held":
            low = max(low, min(judged.achieved_rps, judged.offered_rps))
        elif judged.outcome == "broke":
            high, stopped = rate, "broke"
            break
        elif judged.outcome == "starved":
            stopped = "starved: the load generator fell behind its schedule twice"
            break
        rate *= factor
    return CapacityResult(
        points=tuple(points),
        p99_budget_ms=p99_budget_ms,
        confidence=confidence,
        low_rps=low,
        high_rps=high,
        stopped=stopped,
        elapsed_s=time.monotonic() - started,
    )
