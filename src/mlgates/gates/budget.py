"""Budget gates: tail latency with its uncertainty, and serving cost per million requests.

``latency_budget`` verdicts, from distribution-free bounds of p99 (``stats.quantile_bounds``:
order statistics with exact binomial coverage, one-sided at ``confidence``, default 95%):

==========================================  ============================================
bounds vs budget                            verdict
==========================================  ============================================
lower bound > budget                        fail (over budget whatever the noise)
upper bound <= budget                       pass
no upper bound: n < ``n_for_high``          inconclusive, says how many samples are needed
                                            (299 for p99 at 95%: the maximum of 299
                                            values is the smallest sample's upper bound)
bounds straddle the budget                  inconclusive ("within noise", probably fine /
                                            probably over by the point p99)
fewer than ``min_samples``                  inconclusive, says how many are needed
==========================================  ============================================

So a pass is wrong (true p99 over budget) in at most ``1 - confidence`` of samples, and a fail
likewise; the percentile bootstrap used before covered the true p99 of a lognormal in only
80-91% of 200-400-sample runs at a nominal 97.5% (its resamples cannot reach past the maximum).

Cost model (the design seed's):

- serving, measured throughput: ``USD/request = hourly_usd / (3600 * throughput_rps)``; the
  throughput must be a capacity (the highest rate at which the p99 budget holds), not an
  offered rate below it. ``capacity_rps=(low, high)`` takes the interval a capacity search
  supports (``mlref.load.capacity``): held at ``low``, broke at ``high``; the verdict uses
  the pessimistic end and is inconclusive when the budget lies between the two costs;
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
    min_samples: int = 100,
) -> GateResult:
    """p50/p95/p99 of request latencies, p99 held to ``p99_ms`` with distribution-free bounds.

    The bounds of p99 are order statistics (``mlgates.stats.quantile_bounds``, exact
    binomial, one-sided at ``confidence`` each): pass needs the upper bound at or under the
    budget, fail the lower bound over it. When the sample is too small for an upper bound
    to exist (fewer than 299 samples for p99 at 95%) and the lower bound does not fail it,
    the verdict is inconclusive and says how many samples are needed.

    ``confidence`` is a fraction in (0, 1) (0.95, not 95); ``min_samples`` an integer >= 2
    below which no verdict but inconclusive is given. Bad values raise ``GateInputError``.
    """
    budget = _positive(p99_ms, "p99_ms")
    if not 0.0 < stats.as_real(confidence, "confidence") < 1.0:
        raise GateInputError(
            f"confidence must be a fraction in (0, 1), e.g. 0.95 for 95% bounds "
            f"(not 95), got {confidence!r}"
        )
    min_samples = _integer(min_samples, "min_samples", 2, "100 is the default")
    v = as_1d(samples_ms, "samples_ms")
    bad = ~np.isfinite(v) | (v < 0)
    if bad.any():
        raise GateInputError(
            f"samples_ms has {int(bad.sum())} NaN/inf/negative value(s), e.g. at rows "
            f"{np.flatnonzero(bad)[:5].tolist()}: record failed requests separately"
        )
    pct = stats.percentiles(v, (50, 95, 99))
    p99 = pct["p99"]
    bounds = stats.quantile_bounds(v, 0.99, confidence)
    needed = max(min_samples, bounds.n_for_high)
    details = {
        **pct,
        "max": float(v.max()),
        "samples": int(v.size),
        "over_budget": int((v > budget).sum()),
        "budget_ms": budget,
        "confidence": confidence,
        "interval": "order statistics (exact binomial, one-sided bounds)",
        "p99_ci_low": bounds.low,
        "p99_ci_high": bounds.high,
        "p99_low_rank": bounds.low_rank,
        "p99_high_rank": bounds.high_rank,
        "samples_for_upper_bound": bounds.n_for_high,
    }
    summary = f"p50 {fmt(pct['p50'])} ms, p95 {fmt(pct['p95'])} ms, p99 {fmt(p99)} ms"
    pc = f"{round(100 * confidence)}%"

    def result(verdict: str, message: str, hint: str) -> GateResult:
        return GateResult(
            name="latency_budget",
            verdict=verdict,  # type: ignore[arg-type]
            measured=p99,
            threshold=budget,
            direction="max",
            unit=" ms",
            message=message,
            hint=hint,
            details=details,
            rubric=("monitor-6",),
        )

    if v.size < min_samples:
        return result(
            "inconclusive",
            f"only {v.size} latency samples; a p99 verdict needs at least {needed} "
            f"({needed - v.size} more): {summary}",
            f"collect at least {needed} requests (a longer load phase) and re-run",
        )
    low = f"{pc} lower bound of p99 {fmt(bounds.low)} ms"
    high = f"{pc} upper bound {fmt(bounds.high)} ms"
    over = f"{details['over_budget']} of {v.size} requests over budget"
    if bounds.low > budget:
        return result(
            "fail",
            f"p99 over budget {fmt(budget)} ms by {fmt(p99 - budget)} ms: {summary} "
            f"({low}; {over})",
            "profile the slow requests (feature lookups, batching wait, model size, a "
            "saturated server)",
        )
    if bounds.high <= budget:
        return result(
            "pass",
            f"p99 within budget {fmt(budget)} ms: {summary} ({high}; {over})",
            "",
        )
    if not math.isfinite(bounds.high):
        return result(
            "inconclusive",
            f"only {v.size} latency samples: an upper {pc} bound of p99 needs at least "
            f"{bounds.n_for_high} ({bounds.n_for_high - v.size} more), so within budget "
            f"{fmt(budget)} ms cannot be shown: {summary} ({low}; {over})",
            f"collect at least {bounds.n_for_high} requests (a longer load phase) and re-run",
        )
    lean = "probably fine" if p99 <= budget else "probably over"
    return result(
        "inconclusive",
        f"p99 within noise of the budget {fmt(budget)} ms ({lean}): {summary} "
        f"({pc} bounds of p99 [{fmt(bounds.low)}, {fmt(bounds.high)}] ms; {over})",
        "collect more samples so the bounds separate from the budget, or measure on a "
        "quieter machine",
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


def _capacity_interval(capacity_rps: object) -> tuple[float, float | None]:
    low_raw: object
    high_raw: object
    try:
        low_raw, high_raw = capacity_rps  # type: ignore[misc]
    except (TypeError, ValueError):
        raise GateInputError(
            f"capacity_rps must be a pair (low, high) of req/s, high None when nothing broke; "
            f"got {capacity_rps!r}"
        ) from None
    low = _nonneg(stats.as_real(low_raw, "capacity_rps low"), "capacity_rps low")
    if high_raw is None:
        return low, None
    high = _positive(stats.as_real(high_raw, "capacity_rps high"), "capacity_rps high")
    if high < low:
        raise GateInputError(
            f"capacity_rps must be (low, high) with low <= high, got {capacity_rps!r}"
        )
    return low, high


def cost_budget(
    throughput_rps: float | None,
    hourly_usd: float,
    max_usd_per_million: float = 1.0,
    latency_s: float | None = None,
    batch_size: int | None = None,
    capacity_rps: tuple[float, float | None] | None = None,
) -> GateResult:
    """Serving cost per million requests held to ``max_usd_per_million``.

    ``capacity_rps=(low, high)`` is a measured capacity interval (``throughput_rps`` None):
    the server held the p99 budget at ``low`` req/s and broke it at ``high`` (None when the
    measurement never broke it), so its cost lies between ``cost(high)`` and ``cost(low)``.
    The pessimistic end is measured: pass when ``cost(low)`` is within budget, fail when even
    ``cost(high)`` is not (the capacity is below ``high``), inconclusive when the budget
    lies inside the interval (a finer ladder between low and high would settle it).
    ``throughput_rps`` is a single throughput you measured at saturation (at the p99 budget);
    an offered rate under the capacity is not one: it overstates the cost whatever the
    server can do.

    With ``latency_s`` and ``batch_size`` the accelerator formula is computed too and the
    larger of the estimates is measured (the formula assumes a device always busy with full
    batches; a lower measured throughput means it is not).
    """
    limit = _positive(max_usd_per_million, "max_usd_per_million")
    hourly = _nonneg(hourly_usd, "hourly_usd")
    estimates: dict[str, float] = {}
    optimistic: dict[str, float] = {}
    interval: tuple[float, float | None] | None = None
    if capacity_rps is not None:
        if throughput_rps is not None:
            raise GateInputError("pass throughput_rps or capacity_rps, not both")
        interval = _capacity_interval(capacity_rps)
        low, high = interval
        estimates["capacity"] = cost_per_request(low, hourly) * 1e6 if low > 0 else math.inf
        optimistic["capacity"] = cost_per_request(high, hourly) * 1e6 if high else 0.0
    if throughput_rps is not None:
        estimates["throughput"] = cost_per_request(throughput_rps, hourly) * 1e6
        optimistic["throughput"] = estimates["throughput"]
    if (latency_s is None) != (batch_size is None):
        raise GateInputError("pass both latency_s and batch_size for the accelerator formula")
    if latency_s is not None and batch_size is not None:
        estimates["accelerator"] = accelerator_cost_per_request(hourly, latency_s, batch_size) * 1e6
        optimistic["accelerator"] = estimates["accelerator"]
    if not estimates:
        raise GateInputError("pass throughput_rps, capacity_rps, or latency_s and batch_size")
    basis = max(estimates, key=lambda k: estimates[k])
    measured = estimates[basis]
    best_case = max(optimistic.values())

    def capacity_text() -> str:
        low, high = interval or (0.0, None)
        if high is None:
            return f"at least {fmt(low)} req/s (the measurement never broke the p99 budget)"
        if low == 0:
            return f"below {fmt(high)} req/s (no rate measured held the p99 budget)"
        return f"between {fmt(low)} and {fmt(high)} req/s"

    how = {
        "throughput": f"${fmt(hourly)}/h at {fmt(throughput_rps or 0)} req/s",
        "capacity": (f"${fmt(hourly)}/h at the measured capacity, {capacity_text()}"),
        "accelerator": (
            f"${fmt(hourly)}/h x {fmt((latency_s or 0) * 1000)} ms / batch {batch_size}"
        ),
    }[basis]
    cost = f"${fmt(measured)}" if math.isfinite(measured) else "unbounded cost"
    if measured <= limit:
        verdict = "pass"
        what = f"{cost} per million requests ({how}) within"
    elif best_case >= limit:
        # a capacity below ``high`` costs more than cost(high): over even at the best case
        verdict = "fail"
        at_least = " at least" if basis == "capacity" else ""
        what = f"{cost} per million requests ({how}) over by{at_least} ${fmt(best_case - limit)};"
    else:
        verdict = "inconclusive"
        what = (
            f"between ${fmt(best_case)} and {cost} per million requests ({how}): the budget "
            "lies inside the interval the capacity measurement supports;"
        )
    message = f"{what} budget ${fmt(limit)} per million"
    hint = (
        "raise sustained throughput at the p99 budget (batching, a smaller model, CPU instead "
        "of GPU for tabular models) or pick a cheaper instance"
    )
    if verdict == "inconclusive":
        hint = (
            "measure the capacity more finely between the rate that held and the one that "
            "broke (a smaller ladder factor), or start the ladder lower; " + hint
        )
    return GateResult(
        name="cost_budget",
        verdict=verdict,  # type: ignore[arg-type]
        measured=measured if math.isfinite(measured) else None,
        threshold=limit,
        direction="max",
        unit=" USD/1M",
        message=message,
        hint=hint,
        details={
            "usd_per_million": estimates,
            "usd_per_million_best_case": best_case,
            "basis": basis,
            "hourly_usd": hourly,
            "throughput_rps": throughput_rps,
            "capacity_rps": None if interval is None else list(interval),
            "latency_s": latency_s,
            "batch_size": batch_size,
        },
        rubric=("monitor-6",),
    )
