"""Shared bits of the benchmark scripts: timing, the system under test, the JSON shape.

Every figure a benchmark reports is paired with its comparison measured in the same run, and
the headline is the ratio: absolute times on a shared 2-core machine move with the load, the
ratio of two things measured side by side moves far less.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_WORKDIR = ROOT / ".mlref-perf"


def time_call(fn: Callable[[], Any], *, min_time_s: float = 0.2, repeats: int = 5) -> float:
    """Median seconds per call: each repeat runs ``fn`` enough times to last ``min_time_s``."""
    fn()  # warm-up (first-call allocations, lazy initialisation)
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-7)
    loops = max(1, int(min_time_s / once))
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(loops):
            fn()
        samples.append((time.perf_counter() - start) / loops)
    return statistics.median(samples)


def machine() -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for package in ("numpy", "xgboost", "onnxruntime", "feast", "fastapi", "uvicorn", "locust"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = None
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "versions": versions,
    }


def small_system(workdir: Path, *, rebuild: bool = False) -> Any:
    """The system under test: reuse ``workdir`` when it holds one, else build it (quick mode:
    real Feast store, small XGBoost model exported to ONNX)."""
    import json
    import shutil

    from mlref.load.system import SmallSystem, build_small_system
    from mlref.settings import make_settings

    settings = make_settings(workdir, n_users=300, days=30, fraud_rate=0.03, seed=11)
    marker = workdir / "perf-system.json"
    model = settings.artifacts_dir / "model.onnx"
    if not rebuild and marker.exists() and model.exists() and settings.feature_repo.exists():
        info = json.loads(marker.read_text())
        info["native_path"] = Path(info["native_path"])
        return SmallSystem(settings=settings, model_path=model, **info)
    if workdir.exists():
        shutil.rmtree(workdir)
    import contextlib

    with contextlib.redirect_stdout(sys.stderr):  # Feast prints materialize progress
        built = build_small_system(settings, quick=True)
    info = {
        "native_path": str(built.native_path),
        "n_events": built.n_events,
        "n_users": built.n_users,
        "train_rows": built.train_rows,
        "fit_seconds": built.fit_seconds,
        "timings": built.timings,
    }
    marker.write_text(json.dumps(info))
    return built


def progress(message: str) -> None:
    print(f"[perf {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
