"""Latency and cost of the running server under load.

One bounded open-loop phase (``load_result``: ``mlref.load.loadgen`` in its own process,
Poisson arrivals at ``load_rate`` req/s for ``load_seconds`` after a warm-up, to 127.0.0.1)
feeds both gates. Latencies run from each request's scheduled send time to its last byte,
so they include queueing, HTTP, JSON, the Feast online read, micro-batching and ONNX
Runtime. The latency verdict is decided on the bootstrap confidence interval of p99, so
machine noise shows as warn or inconclusive, not as a flaky fail.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.gates.conftest import LoadResult

    from mlgates.fixture import Gates


@pytest.mark.mlgate("latency_budget")
def test_p99_latency_within_budget(mlgates: Gates, load_result: LoadResult) -> None:
    """p99 of real /predict requests under concurrent load is within the budget
    ([tool.mlgates.latency_budget] p99_ms); every request succeeded."""
    from mlgates.gates import latency_budget

    assert load_result.errors == 0, f"requests failed under load: {load_result.describe()}"
    import os

    load_avg = os.getloadavg()[0]
    cores = os.cpu_count() or 1
    print(f"\nload: {load_result.describe()}; machine load average {load_avg:.1f} on {cores} cores")
    mlgates.run(latency_budget, load_result.latencies_ms)


@pytest.mark.mlgate("cost_budget")
def test_cost_per_million_requests_within_budget(mlgates: Gates, load_result: LoadResult) -> None:
    """Serving cost per million requests at the configured hourly price (``hourly_usd`` in
    [tool.mlgates.settings]) is within ``max_usd_per_million`` ([tool.mlgates.cost_budget]).

    The throughput is the rate one server process sustained within the latency budget in
    the load phase: at most its capacity, so the cost measured here is an upper bound."""
    from mlgates.gates import cost_budget

    assert load_result.errors == 0, f"requests failed under load: {load_result.describe()}"
    hourly = float(mlgates.setting("hourly_usd", 0.10))
    mlgates.run(cost_budget, load_result.achieved_rps, hourly)
