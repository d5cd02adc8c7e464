"""Helpers of the gate suite: the load phase behind the latency and cost gates, and the
champion model.

The load generator is ``mlref.load.loadgen`` in its OWN process (never Locust in this one: it
monkey-patches the process with gevent): open loop, requests scheduled at seeded Poisson
arrivals for a fixed offered rate whatever the server does, each latency measured from its
*scheduled* send time to the last response byte, so queueing shows up as latency instead of
hiding as a lower request rate (no coordinated omission). A warm-up precedes the measured
phase. The server is the session's uvicorn on 127.0.0.1; this process only waits meanwhile.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from mlgates.fixture import Gates
    from mlref.pipeline import ReferenceSystem
    from mlref.registry import LoadedModel
    from mlref.settings import Settings


@dataclass(frozen=True)
class LoadResult:
    """One measured open-loop phase: raw latencies (ms) of the successful requests, every
    status, and how it was driven."""

    latencies_ms: np.ndarray
    statuses: tuple[int, ...]
    offered_rps: float
    achieved_rps: float
    duration_s: float
    generator_lag_p99_ms: float

    @property
    def requests(self) -> int:
        return len(self.statuses)

    @property
    def errors(self) -> int:
        return sum(1 for s in self.statuses if s != 200)

    def describe(self) -> str:
        return (
            f"{self.requests} requests offered at {self.offered_rps:.0f} req/s for "
            f"{self.duration_s:.0f}s (achieved {self.achieved_rps:.0f} req/s), "
            f"{self.errors} errors, generator lag p99 {self.generator_lag_p99_ms:.1f} ms"
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
) -> LoadResult:
    """Run ``mlref.load.loadgen`` against ``url`` (loopback only) and read its raw records.

    Traffic: the reference data's users with their popularity and event times just after
    the data (``mlref.load.runner.traffic_env``), a small share of unknown users.
    """
    import numpy as np

    from mlref.load.rawlog import read_raw
    from mlref.load.runner import traffic_env

    if not url.startswith("http://127.0.0.1"):
        raise ValueError(f"load goes to loopback only, not {url}")
    out_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **traffic_env(settings, out_dir)}
    command = [
        sys.executable, "-m", "mlref.load.loadgen", "--url", url, "--rate", str(rate),
        "--duration", str(duration_s), "--warmup", str(warmup_s), "--seed", str(seed),
        "--connections", "32", "--out", str(out_dir / "raw"),
    ]  # fmt: skip
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=duration_s + warmup_s + 120
    )
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed ({done.returncode}):\n{done.stderr[-2000:]}")
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    raw = read_raw(out_dir / "raw")
    ok = (raw["status"] == 200) & (raw["exception"] == "")
    return LoadResult(
        latencies_ms=raw.loc[ok, "latency_ms"].to_numpy(dtype=np.float64),
        statuses=tuple(
            int(s) if e == "" else -1 for s, e in zip(raw["status"], raw["exception"], strict=True)
        ),
        offered_rps=float(summary["offered_rps"]),
        achieved_rps=float(summary["achieved_rps"]),
        duration_s=duration_s,
        generator_lag_p99_ms=float(summary["generator_lag_p99_ms"]),
    )


@pytest.fixture(scope="session")
def _load_cache() -> dict[str, LoadResult]:
    return {}


@pytest.fixture
def load_result(
    mlgates: Gates,
    server_url: str,
    ref_settings: Settings,
    tmp_path_factory: pytest.TempPathFactory,
    _load_cache: dict[str, LoadResult],
) -> LoadResult:
    """The session's load phase against ``server_url`` (run once, shared by the latency and
    cost gates). Size from ``[tool.mlgates.settings]``: ``load_rate`` (offered req/s),
    ``load_seconds`` (measured), ``load_warmup_seconds``."""
    if "result" not in _load_cache:
        _load_cache["result"] = run_load(
            server_url,
            ref_settings,
            tmp_path_factory.mktemp("load"),
            rate=float(mlgates.setting("load_rate", 40)),
            duration_s=float(mlgates.setting("load_seconds", 10)),
            warmup_s=float(mlgates.setting("load_warmup_seconds", 2)),
        )
    return _load_cache["result"]


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
