"""Helpers of the gate suite: the load phase behind the latency gate, the capacity search
behind the cost gate, and the champion model.

The load generator is ``mlref.load.loadgen`` in its OWN process (never Locust in this one: it
monkey-patches the process with gevent): open loop, requests scheduled at seeded Poisson
arrivals for a fixed offered rate whatever the server does, each latency measured from its
*scheduled* send time to the last response byte, so queueing shows up as latency instead of
hiding as a lower request rate (no coordinated omission). A warm-up precedes the measured
phase. The server is the session's uvicorn on 127.0.0.1; this process only waits meanwhile.

Starvation: the generator reports how late it was behind its own schedule (its lag). A
generator late by a noticeable share of the budget means the machine, not the server, set the
pace (two CPU-bound neighbours on two cores do that: ``nox -s noisy``), and latencies measured
from the schedule would carry that delay. Such a phase is re-measured once unless it passed
(waiting for a core only adds latency, so a pass stands); starved twice, a verdict other than
pass is inconclusive with that reason, never a fail by luck.
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from mlgates.fixture import Gates
    from mlref.load.capacity import CapacityResult
    from mlref.pipeline import ReferenceSystem
    from mlref.registry import LoadedModel
    from mlref.settings import Settings


@dataclass(frozen=True)
class LoadResult:
    """One measured open-loop phase: raw latencies (ms) of the successful requests, every
    status, and how it was driven; ``attempts`` > 1 when a starved phase was re-measured."""

    latencies_ms: np.ndarray
    statuses: tuple[int, ...]
    offered_rps: float
    achieved_rps: float
    duration_s: float
    generator_lag_p99_ms: float
    attempts: int = 1
    starved_lag_ms: float = float("inf")

    @property
    def requests(self) -> int:
        return len(self.statuses)

    @property
    def errors(self) -> int:
        return sum(1 for s in self.statuses if s != 200)

    @property
    def starved(self) -> bool:
        """The generator fell behind its schedule by more than ``starved_lag_ms`` at p99."""
        return self.generator_lag_p99_ms > self.starved_lag_ms

    def describe(self) -> str:
        load = os.getloadavg()[0]
        return (
            f"{self.requests} requests offered at {self.offered_rps:.0f} req/s for "
            f"{self.duration_s:.0f}s (achieved {self.achieved_rps:.0f} req/s), "
            f"{self.errors} errors, generator lag p99 {self.generator_lag_p99_ms:.1f} ms, "
            f"attempt {self.attempts}; machine load average {load:.1f} on "
            f"{os.cpu_count() or 1} cores"
        )


def run_load(
    url: str,
    settings: Settings,
    out_dir: Path,
    *,
    rate: float,
    duration_s: float,
    warmup_s: float,
    seed: int = 0,
    starved_lag_ms: float = float("inf"),
    stands: Callable[[LoadResult], bool] = lambda result: False,
) -> LoadResult:
    """Run ``mlref.load.loadgen`` against ``url`` (loopback only) and read its raw records;
    a phase whose generator lagged more than ``starved_lag_ms`` at p99 is re-measured once
    (``mlref.load.capacity.run_point_retrying``, the capacity ladder's rule too), unless its
    verdict ``stands`` whatever the lag (a pass: waiting for a core only adds latency).

    Traffic: the reference data's users with their popularity and event times just after
    the data (``mlref.load.runner.traffic_env``), a small share of unknown users.
    """
    from mlref.load.capacity import PointResult, run_point_retrying
    from mlref.load.runner import traffic_env

    def judge(point: PointResult, attempt: int) -> LoadResult:
        return LoadResult(
            latencies_ms=point.ok_latencies_ms,
            statuses=point.statuses,
            offered_rps=rate,
            achieved_rps=point.achieved_rps,
            duration_s=duration_s,
            generator_lag_p99_ms=point.generator_lag_p99_ms,
            attempts=attempt,
            starved_lag_ms=starved_lag_ms,
        )

    out_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **traffic_env(settings, out_dir)}
    attempts = run_point_retrying(
        url,
        env,
        out_dir,
        name="raw",
        rate=rate,
        duration_s=duration_s,
        warmup_s=warmup_s,
        seed=seed,
        judge=judge,
        starved=lambda result: result.starved and not stands(result),
    )
    return attempts[-1]


@contextlib.contextmanager
def heap_frozen() -> Iterator[None]:
    """The session's server runs in a thread of this process, whose heap holds the whole test
    session: a full garbage collection over it stalls every request for 200+ ms (the server's
    own entry points freeze their start-up heap for that reason, ``ServeConfig.gc_freeze``).
    Measure as production serves: the heap so far out of the collector's view meanwhile."""
    if gc.get_freeze_count():  # somebody froze it already
        yield
        return
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def latency_budget_ms(mlgates: Gates) -> float:
    """The p99 budget the latency gate holds (``[tool.mlgates.latency_budget] p99_ms``)."""
    return float(mlgates.config.gate_defaults("latency_budget").get("p99_ms", 50.0))


@pytest.fixture(scope="session")
def _load_cache() -> dict[str, object]:
    return {}


@pytest.fixture
def load_result(
    mlgates: Gates,
    server_url: str,
    ref_settings: Settings,
    tmp_path_factory: pytest.TempPathFactory,
    _load_cache: dict[str, object],
) -> LoadResult:
    """The session's load phase against ``server_url`` (run once) for the latency gate. Size
    from ``[tool.mlgates.settings]``: ``load_rate`` (offered req/s), ``load_seconds``
    (measured), ``load_warmup_seconds``."""
    from mlgates.gates import latency_budget
    from mlref.load.capacity import STARVED_LAG_SHARE

    def passes(result: LoadResult) -> bool:
        kwargs, _ = mlgates.kwargs_for(latency_budget, result.latencies_ms)
        return latency_budget(result.latencies_ms, **kwargs).verdict == "pass"

    if "result" not in _load_cache:
        with heap_frozen():
            _load_cache["result"] = run_load(
                server_url,
                ref_settings,
                tmp_path_factory.mktemp("load"),
                rate=float(mlgates.setting("load_rate", 100)),
                duration_s=float(mlgates.setting("load_seconds", 10)),
                warmup_s=float(mlgates.setting("load_warmup_seconds", 2)),
                starved_lag_ms=STARVED_LAG_SHARE * latency_budget_ms(mlgates),
                stands=passes,
            )
    return _load_cache["result"]  # type: ignore[return-value]


@pytest.fixture
def capacity(
    mlgates: Gates,
    server_url: str,
    ref_settings: Settings,
    tmp_path_factory: pytest.TempPathFactory,
    _load_cache: dict[str, object],
) -> CapacityResult:
    """The session server's capacity at the p99 budget (run once): a bounded ladder of
    open-loop rates (``mlref.load.capacity.search_capacity``) from ``capacity_start_rps``
    doubling up to ``capacity_max_rps``, at most ``capacity_max_seconds`` in all
    (``[tool.mlgates.settings]``)."""
    from mlref.load.capacity import STARVED_LAG_SHARE, search_capacity
    from mlref.load.runner import traffic_env

    if "capacity" not in _load_cache:
        out = tmp_path_factory.mktemp("capacity")
        budget = latency_budget_ms(mlgates)
        with heap_frozen():
            _load_cache["capacity"] = search_capacity(
                server_url,
                {**os.environ, **traffic_env(ref_settings, out)},
                out,
                p99_budget_ms=budget,
                start_rps=float(mlgates.setting("capacity_start_rps", 25)),
                max_rps=float(mlgates.setting("capacity_max_rps", 1600)),
                max_seconds=float(mlgates.setting("capacity_max_seconds", 90)),
                max_lag_ms=STARVED_LAG_SHARE * budget,
            )
    return _load_cache["capacity"]  # type: ignore[return-value]


@pytest.fixture(scope="session")
def champion(ref_settings: Settings, reference_system: ReferenceSystem) -> LoadedModel:
    """The registry's ``champion`` (the reference system's first model), as served."""
    from mlref.registry import CHAMPION, Registry

    return Registry(ref_settings).load(CHAMPION)


@pytest.fixture(scope="session")
def onnx_scores(champion: LoadedModel) -> Callable[[pd.DataFrame], np.ndarray]:
    """``onnx_scores(frame)``: the champion's ONNX Runtime scores of a frame holding the
    model features (columns picked in the model card's order, as serving does)."""
    from mlref.export import OnnxScorer
    from mlref.train.fit import feature_matrix

    scorer = OnnxScorer(champion.onnx_path)
    names = list(champion.card["feature_names"])

    def score(frame: pd.DataFrame) -> np.ndarray:
        return scorer.score(feature_matrix(frame, names)).astype("float64")

    return score
