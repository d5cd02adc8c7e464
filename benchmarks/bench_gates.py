"""Time PSI at 1M x 20 and the paired bootstrap at 100k rows x 1000 resamples.

A plain script (no assertions): prints one JSON document with wall-clock seconds of the
vectorised implementations in ``mlgates.stats`` and of straightforward references
(per-bin masks / a Python loop for PSI, one sort per resample for the bootstrap). Slow
references run on a fraction of the work and are extrapolated; the JSON says which.

    uv run python benchmarks/bench_gates.py [--rows 1000000] [--features 20]
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from mlgates import FrozenBins, psi_drift, stats
from mlgates.metrics import roc_auc


def _best_of(fn: Callable[[], Any], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _psi_masks(ref: np.ndarray, cur: np.ndarray, n_bins: int = 10) -> float:
    """The textbook version: quantile edges, one boolean mask per bin."""
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, n_bins + 1)[1:-1]))
    bounds = np.r_[-np.inf, edges, np.inf]
    total = 0.0
    for lo, hi in itertools.pairwise(bounds):
        r = max(((ref >= lo) & (ref < hi)).mean(), 1e-4)
        c = max(((cur >= lo) & (cur < hi)).mean(), 1e-4)
        total += (c - r) * np.log(c / r)
    return total


def _psi_python_loop(ref: np.ndarray, cur: np.ndarray, edges: list[float]) -> float:
    """Row-by-row Python counting, as in a naive monitoring job."""
    k = len(edges) + 1
    rc, cc = [0] * k, [0] * k
    for counts, values in ((rc, ref), (cc, cur)):
        for v in values.tolist():
            i = 0
            while i < len(edges) and v >= edges[i]:
                i += 1
            counts[i] += 1
    rs, cs = sum(rc), sum(cc)
    total = 0.0
    for r_, c_ in zip(rc, cc, strict=True):
        r, c = max(r_ / rs, 1e-4), max(c_ / cs, 1e-4)
        total += (c - r) * float(np.log(c / r))
    return total


def bench_psi(rows: int, features: int, repeat: int) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    names = [f"f{i}" for i in range(features)]
    ref = pd.DataFrame({n: rng.normal(size=rows) for n in names})
    cur = pd.DataFrame({n: rng.normal(0.05, 1.0, size=rows) for n in names})
    frozen = FrozenBins.fit(ref)
    out: dict[str, Any] = {"rows": rows, "features": features}
    out["psi_drift_fit_bins_s"] = _best_of(lambda: psi_drift(ref, cur), repeat)
    out["psi_drift_frozen_bins_s"] = _best_of(lambda: psi_drift(ref, cur, bins=frozen), repeat)
    out["psi_drift_frozen_counts_only_s"] = _best_of(
        lambda: psi_drift(None, cur, bins=frozen), repeat
    )
    ref_np = {n: ref[n].to_numpy() for n in names}
    cur_np = {n: cur[n].to_numpy() for n in names}
    out["reference_per_bin_masks_s"] = _best_of(
        lambda: [_psi_masks(ref_np[n], cur_np[n]) for n in names], 1
    )
    frac = 0.01
    sub = max(1, int(rows * frac))
    edges = list(frozen.features[names[0]].edges)
    start = time.perf_counter()
    _psi_python_loop(ref_np[names[0]][:sub], cur_np[names[0]][:sub], edges)
    loop = time.perf_counter() - start
    out["reference_python_loop_s_extrapolated"] = loop / frac * features
    out["reference_python_loop_measured_on"] = f"{sub} rows x 1 feature"
    out["speedup_vs_masks"] = out["reference_per_bin_masks_s"] / out["psi_drift_fit_bins_s"]
    return out


def bench_bootstrap(rows: int, resamples: int, naive_resamples: int) -> dict[str, Any]:
    rng = np.random.default_rng(1)
    y = (rng.random(rows) < 0.1).astype(int)
    latent = rng.normal(size=rows)
    a = 1.2 * y + latent
    b = 1.3 * y + latent + 0.2 * rng.normal(size=rows)
    out: dict[str, Any] = {"rows": rows, "resamples": resamples}
    for metric in ("roc_auc", "log_loss"):
        sa = a if metric == "roc_auc" else 1 / (1 + np.exp(-a))
        sb = b if metric == "roc_auc" else 1 / (1 + np.exp(-b))
        start = time.perf_counter()
        r = stats.paired_bootstrap(y, sa, sb, metric, n_resamples=resamples, seed=0)
        out[f"paired_bootstrap_{metric}_s"] = time.perf_counter() - start
        out[f"paired_bootstrap_{metric}_ci"] = [r.low, r.high]

    # reference: draw indices, re-sort, recompute AUC for each resample (no sklearn)
    rng2 = np.random.default_rng(0)
    start = time.perf_counter()
    diffs = []
    for _ in range(naive_resamples):
        idx = rng2.integers(0, rows, rows)
        yi = y[idx]
        if 0 < yi.sum() < rows:
            diffs.append(roc_auc(yi, b[idx]) - roc_auc(yi, a[idx]))
    naive = time.perf_counter() - start
    out["reference_loop_roc_auc_s_extrapolated"] = naive / naive_resamples * resamples
    out["reference_loop_measured_resamples"] = naive_resamples
    out["speedup_vs_loop"] = (
        out["reference_loop_roc_auc_s_extrapolated"] / out["paired_bootstrap_roc_auc_s"]
    )
    start = time.perf_counter()
    d = stats.delong(y, a, b)
    out["delong_s"] = time.perf_counter() - start
    out["delong_se_vs_bootstrap_std"] = [d.se, float(np.std(diffs, ddof=1))]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="PSI rows")
    parser.add_argument("--features", type=int, default=20, help="PSI features")
    parser.add_argument("--boot-rows", type=int, default=100_000)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--naive-resamples", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3, help="best of N for the fast paths")
    args = parser.parse_args()
    result = {
        "machine": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "processor": platform.processor() or platform.machine(),
        },
        "psi": bench_psi(args.rows, args.features, args.repeat),
        "bootstrap": bench_bootstrap(args.boot_rows, args.resamples, args.naive_resamples),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
