"""The HTTP layer's in-flight limit (``mlref.serve.admission.InFlightLimit``): its AIMD rule
with made-up times, and a discrete-event simulation of a saturated event loop (one server,
FIFO) under 0.5x, 2x and 10x its capacity. The middleware through a real uvicorn is
test_admission_in_flight_http.py."""

from __future__ import annotations

import heapq
import math
import random

import numpy as np
import pytest

from mlref.serve.admission import InFlightLimit, Overloaded


def test_bad_arguments_are_refused_with_the_reason() -> None:
    for bad in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="budget_ms"):
            InFlightLimit(bad, floor=1, ceiling=10)
    with pytest.raises(ValueError, match="floor"):
        InFlightLimit(50.0, floor=0, ceiling=10)
    with pytest.raises(ValueError, match="floor"):
        InFlightLimit(50.0, floor=11, ceiling=10)
    with pytest.raises(ValueError, match="target_share"):
        InFlightLimit(50.0, floor=1, ceiling=10, target_share=0.0)
    with pytest.raises(ValueError, match="backoff"):
        InFlightLimit(50.0, floor=1, ceiling=10, backoff=1.0)


def test_starts_where_told_and_refuses_only_past_the_limit() -> None:
    assert InFlightLimit(50.0, floor=2, ceiling=3).limit == 2.0  # default: the floor
    with pytest.raises(ValueError, match="initial"):
        InFlightLimit(50.0, floor=2, ceiling=3, initial=4)
    limit = InFlightLimit(50.0, floor=2, ceiling=3, initial=3)
    assert [limit.try_acquire() for _ in range(4)] == [True, True, True, False]
    assert limit.in_flight == 3
    limit.release(0.001)
    assert limit.try_acquire()
    error = limit.refused()
    assert isinstance(error, Overloaded)
    assert error.reason == "in_flight"
    assert error.retry_after_s >= 1
    assert "50 ms" in str(error)


def test_late_answers_shrink_the_limit_to_the_floor_and_no_further() -> None:
    limit = InFlightLimit(50.0, floor=4, ceiling=100, initial=100, backoff=0.5)
    for _ in range(20):
        assert limit.try_acquire()
    limit.release(0.030)  # over the target (half of 50 ms): from the 20 in use, not from 100
    assert limit.limit == pytest.approx(10.0)
    for _ in range(19):
        limit.release(0.030)
    assert limit.limit == 4.0
    assert limit.in_flight == 0


def test_answers_within_the_target_grow_the_limit_only_while_it_is_used() -> None:
    limit = InFlightLimit(50.0, floor=2, ceiling=20)
    limit.limit = 10.0
    for _ in range(3):  # an idle server (one request at a time) learns nothing
        limit.try_acquire()
        limit.release(0.001)
    assert limit.limit == 10.0
    for _ in range(8):
        limit.try_acquire()
    limit.release(0.001)  # 7 still in flight: the limit is being used
    assert limit.limit == 11.0
    for _ in range(100):
        limit.try_acquire()
        limit.release(0.001)
    assert limit.limit <= 20.0


def test_a_request_that_teaches_nothing_frees_its_place_only() -> None:
    limit = InFlightLimit(50.0, floor=2, ceiling=20)
    limit.limit = 5.0
    limit.try_acquire()
    limit.release(None)  # a batch call, or no answer sent
    limit.try_acquire()
    limit.release(math.nan)
    assert (limit.limit, limit.in_flight) == (5.0, 0)


def simulate(
    rate: float, service_s: float, budget_ms: float, seconds: float, seed: int = 7
) -> dict[str, float]:
    """A saturating event loop: one FIFO server, ``service_s`` per admitted request; each
    arrival asks the limit first (a refusal costs nothing here). Returns the refused share,
    the goodput and the p99 time in the app of the admitted."""
    rng = random.Random(seed)
    limit = InFlightLimit(budget_ms, floor=2, ceiling=1024)
    t, free_at = 0.0, 0.0
    done: list[tuple[float, float]] = []  # (finish time, started) of the admitted
    sojourns, refused, arrived = [], 0, 0
    while t < seconds:
        t += rng.expovariate(rate)
        while done and done[0][0] <= t:
            finish, started = heapq.heappop(done)
            limit.release(finish - started)
            sojourns.append(finish - started)
        arrived += 1
        if not limit.try_acquire():
            refused += 1
            continue
        free_at = max(free_at, t) + service_s
        heapq.heappush(done, (free_at, t))
    tail = sojourns[len(sojourns) // 5 :]  # after the limit has learned
    return {
        "refused_share": refused / arrived,
        "goodput_share": len(sojourns) / seconds * service_s,
        "p99_s": float(np.percentile(tail, 99)),
    }


def test_under_capacity_nothing_is_refused() -> None:
    out = simulate(rate=250.0, service_s=0.002, budget_ms=50.0, seconds=20.0)  # 0.5x
    assert out["refused_share"] == 0.0
    assert out["p99_s"] < 0.025


@pytest.mark.parametrize("factor", [2.0, 10.0])
def test_over_capacity_the_excess_is_refused_and_the_admitted_stay_in_the_budget(
    factor: float,
) -> None:
    service_s, budget_ms = 0.002, 50.0  # capacity 500 req/s
    out = simulate(rate=factor * 500.0, service_s=service_s, budget_ms=budget_ms, seconds=20.0)
    # without the limit every request is admitted and the queue grows for the whole run
    # (seconds of wait); with it the admitted stay within 1.5x the budget
    assert out["p99_s"] <= 1.5 * budget_ms / 1000.0, out
    assert out["goodput_share"] >= 0.9, out
    assert out["refused_share"] >= 1.0 - 1.0 / factor - 0.05, out


def test_the_simulation_is_overloaded_without_the_limit() -> None:
    """The same 2x run with a limit that never refuses: the admitted wait seconds (this is
    what the test above would measure if the limit did nothing)."""
    out = simulate_without_limit(rate=1000.0, service_s=0.002, seconds=5.0)
    assert out > 1.0


def simulate_without_limit(rate: float, service_s: float, seconds: float, seed: int = 7) -> float:
    rng = random.Random(seed)
    t, free_at, worst = 0.0, 0.0, 0.0
    while t < seconds:
        t += rng.expovariate(rate)
        free_at = max(free_at, t) + service_s
        worst = max(worst, free_at - t)
    return worst
