"""Budget gates: tail latency with its uncertainty, and serving cost per million requests.

``latency_budget`` verdicts, from the bootstrap CI of p99 (default 95%):

======================  ===============  ==============================================
CI vs budget            point p99        verdict
======================  ===============  ==============================================
upper <= budget         (below)          pass
lower > budget          (above)          fail
straddles the budget    <= budget        warn ("within noise", probably fine)
straddles the budget    > budget         inconclusive ("within noise", probably over)
fewer than min_samples  any              inconclusive, says how many samples are needed
======================  ===============  ==============================================

Cost model (the design seed's):

- serving, measured throughput: ``USD/request = hourly_usd / (3600 * throughput_rps)``;
- serving on an accelerator: ``USD/request = (hourly_usd / 3600) * latency_s / batch_size``
  ($3.50/h, 20 ms, batch 16 -> ~$1.2 per million);
- training sweep: ``hours = rows / rows_per_s * epochs * trials / 3600``
  (10M rows, 50k rows/s, 10 epochs, 20 trials at $3.50/h -> ~$39).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from mlgates import stats
from mlgates.gates._common import as_1d, fmt
from mlgates.result import GateInputError, GateResult


def _positive(value: float, what: str) -> float:
    v = float(value)
    if not math.isfinite(v) or v <= 0:
        raise GateInputError(f"{what} must be a positive number, got {value!r}")
    return v


def _integer(value: object, what: str, minimum: int, example: str) -> int:
    if not stats.is_integer(value):
        raise GateInputError(f"{what} must be an integer >= {minimum}, got {value!r}")
    n = int(value)  # type: ignore[call-overload]
    if n < minimum:
        raise GateInputError(f"{what} must be >= {minimum}, got {n} ({example})")
    return n


def latency_budget(
    samples_ms: ArrayLike,
    p99_ms: float = 50.0,
    confidence: float = 0.95,
    seed: int = 0,
    n_resamples: int = 1000,
    min_samples: int = 100,
) -> GateResult:
    """p50/p95/p99 of request latencies, p99 held to ``p99_ms`` with a bootstrap CI.

    ``confidence`` is a fraction in (0, 1) (0.95, not 95); ``n_resamples`` an integer
    >= 10; ``min_samples`` an integer >= 2. Bad values raise ``GateInputError`` up front.
    """
    budget = _positive(p99_ms, "p99_ms")
    if not 0.0 < stats.as_real(confidence, "confidence") < 1.0:
        raise GateInputError(
            f"confidence must be a fraction in (0, 1), e.g. 0.95 for a 95% CI "
            f"(not 95), got {confidence!r}"
        )
    n_resamples = _integer(n_resamples, "n_resamples", 10, "1000 is the default")
    min_samples = _integer(min_samples, "min_samples", 2, "100 is the default")
    seed = _integer(seed, "seed", 0, "any non-negative integer")
    v = as_1d(samples_ms, "samples_ms")
    bad = ~np.isfinite(v) | (v < 0)
    if bad.any():
        raise GateInputError(
            f"samples_ms has {int(bad.sum())} NaN/inf/negative value(s), e.g. at rows "
            f"{np.flatnonzero(bad)[:5].tolist()}: record failed requests separately"
        )
    pct = stats.percentiles(v, (50, 95, 99))
    p99 = pct["p99"]
    details = {
        **pct,
        "max": float(v.max()),
        "samples": int(v.size),
        "over_budget": int((v > budget).sum()),
        "budget_ms": budget,
        "confidence": confidence,
    }
    summary = f"p50 {fmt(pct['p50'])} ms, p95 {fmt(pct['p95'])} ms, p99 {fmt(p99)} ms"
    if v.size < min_samples:
        return GateResult(
            name="latency_budget",
            verdict="inconclusive",
            measured=p99,
            threshold=budget,
            direction="max",
            unit=" ms",
            message=(
                f"only {v.size} latency samples; a p99 needs at least {min_samples} "
                f"({min_samples - v.size} more) to be more than the maximum: {summary}"
            ),
            hint=f"collect at least {min_samples} requests (a short load test) and re-run",
            details=details,
            rubric=("monitor-6",),
        )
    low, high = stats.quantile_bootstrap_ci(v, 0.99, confidence, n_resamples, seed)
    details.update(p99_ci_low=low, p99_ci_high=high)
    ci = f"{round(100 * confidence)}% CI of p99 [{fmt(low)}, {fmt(high)}] ms"
    if high <= budget:
        verdict, what = "pass", f"p99 within budget {fmt(budget)} ms"
    elif low > budget:
        verdict, what = "fail", f"p99 over budget {fmt(budget)} ms by {fmt(p99 - budget)} ms"
    elif p99 <= budget:
        verdict, what = "warn", f"p99 within noise of the budget {fmt(budget)} ms (probably fine)"
    else:
        verdict, what = (
            "inconclusive",
            f"p99 within noise of the budget {fmt(budget)} ms (probably over)",
        )
    return GateResult(
        name="latency_budget",
        verdict=verdict,  # type: ignore[arg-type]
        measured=p99,
        threshold=budget,
        direction="max",
        unit=" ms",
        message=(
            f"{what}: {summary} ({ci}; {details['over_budget']} of {v.size} requests over budget)"
        ),
        hint=(
            "profile the slow requests (feature lookups, batching wait, model size); for a "
            "noisy result collect more samples so the CI separates from the budget"
        ),
        details=details,
        rubric=("monitor-6",),
    )


def cost_per_request(throughput_rps: float, hourly_usd: float) -> float:
    """USD per request for an instance costing ``hourly_usd`` serving ``throughput_rps``."""
    return _nonneg(hourly_usd, "hourly_usd") / (
        3600.0 * _positive(throughput_rps, "throughput_rps")
    )


def accelerator_cost_per_request(hourly_usd: float, latency_s: float, batch_size: int) -> float:
    """USD per request on an accelerator kept busy with full batches (the seed's formula)."""
    return (
        _nonneg(hourly_usd, "hourly_usd")
        / 3600.0
        * _positive(latency_s, "latency_s")
        / _positive(batch_size, "batch_size")
    )


def training_sweep_cost(
    rows: float, rows_per_s: float, epochs: int, trials: int, hourly_usd: float
) -> float:
    """USD for a hyper-parameter sweep: ``rows / rows_per_s * epochs * trials`` seconds."""
    seconds = (
        _positive(rows, "rows")
        / _positive(rows_per_s, "rows_per_s")
        * _positive(epochs, "epochs")
        * _positive(trials, "trials")
    )
    return seconds / 3600.0 * _nonneg(hourly_usd, "hourly_usd")


def _nonneg(value: float, what: str) -> float:
    v = float(value)
    if not math.isfinite(v) or v < 0:
        raise GateInputError(f"{what} must be a non-negative number, got {value!r}")
    return v


def cost_budget(
    throughput_rps: float | None,
    hourly_usd: float,
    max_usd_per_million: float = 1.0,
    latency_s: float | None = None,
    batch_size: int | None = None,
) -> GateResult:
    """Serving cost per million requests held to ``max_usd_per_million``.

    With ``latency_s`` and ``batch_size`` the accelerator formula is computed too and the
    larger of the two estimates is measured (the formula assumes a device always busy
    with full batches; a lower measured throughput means it is not).
    """
    limit = _positive(max_usd_per_million, "max_usd_per_million")
    estimates: dict[str, float] = {}
    if throughput_rps is not None:
        estimates["throughput"] = cost_per_request(throughput_rps, hourly_usd) * 1e6
    if (latency_s is None) != (batch_size is None):
        raise GateInputError("pass both latency_s and batch_size for the accelerator formula")
    if latency_s is not None and batch_size is not None:
        estimates["accelerator"] = (
            accelerator_cost_per_request(hourly_usd, latency_s, batch_size) * 1e6
        )
    if not estimates:
        raise GateInputError("pass throughput_rps, or latency_s and batch_size")
    basis = max(estimates, key=lambda k: estimates[k])
    measured = estimates[basis]
    how = {
        "throughput": f"${fmt(hourly_usd)}/h at {fmt(throughput_rps or 0)} req/s",
        "accelerator": (
            f"${fmt(hourly_usd)}/h x {fmt((latency_s or 0) * 1000)} ms / batch {batch_size}"
        ),
    }[basis]
    ok = measured <= limit
    message = (
        f"${fmt(measured)} per million requests ({how}) "
        + ("within" if ok else f"over by ${fmt(measured - limit)};")
        + f" budget ${fmt(limit)} per million"
    )
    return GateResult(
        name="cost_budget",
        verdict="pass" if ok else "fail",
        measured=measured,
        threshold=limit,
        direction="max",
        unit=" USD/1M",
        message=message,
        hint=(
            "raise sustained throughput (batching, a smaller model, CPU instead of GPU for "
            "tabular models) or pick a cheaper instance"
        ),
        details={
            "usd_per_million": estimates,
            "basis": basis,
            "hourly_usd": hourly_usd,
            "throughput_rps": throughput_rps,
            "latency_s": latency_s,
            "batch_size": batch_size,
        },
        rubric=("monitor-6",),
    )
