"""The canary gate: promote / rollback / continue from an anytime-valid confidence sequence.

(The module is not named ``canary`` so that ``mlgates.gates.canary`` stays the function.)

A canary is looked at again and again while its outcomes arrive (every minute, every batch
of matured labels). A fixed-horizon test re-run at every look rejects a true null far more
often than its alpha (``tests/mlgates/test_canary_simulation.py`` measures it); a
*confidence sequence* covers the true mean at every sample size at once, so any number of
looks, and stopping at any of them, keeps the error at or below alpha.

The sequence: the predictable plug-in empirical-Bernstein confidence sequence (PrPl-EB) of
Waudby-Smith & Ramdas (2023), "Estimating means of bounded random variables by betting",
JRSS-B 86(1), Theorem 2, for observations in [0, 1] (a metric in ``bounds=(lo, hi)`` is
rescaled). For observations X_1, X_2, ... of one arm, i.i.d. or with a constant conditional
mean (the assumption: the arm's mean does not drift during the rollout), and c = 1/2::

    mu_t     = (1/2 + sum_{i<=t} X_i) / (t + 1)
    var_t    = (1/4 + sum_{i<=t} (X_i - mu_i)^2) / (t + 1)
    lambda_t = min(sqrt(2 log(2/a) / (var_{t-1} t log(1 + t))), c)
    v_t      = 4 (X_t - mu_{t-1})^2,   psi(l) = (-log(1 - l) - l) / 4
    C_t      = sum lambda_i X_i / sum lambda_i
               +- (log(2/a) + sum v_i psi(lambda_i)) / sum lambda_i

intersected over t (the running max of lower and min of upper bounds, still valid), so each
arm's interval only shrinks. Each arm's sequence gets ``a = alpha / (2 k)`` for k metrics
judged (the primary metric and each guardrail given), and a difference's interval is
[canary low - champion high, canary high - champion low]: by a union bound every interval
the gate reports holds at every look with probability >= 1 - alpha. Because the intervals
only shrink, a decision once reached stays.

Decisions, with ``worse`` = canary - champion (champion - canary when
``higher_is_better``) and ``margin`` the non-inferiority margin (0: promote only a canary
shown better):

================================================  ===========================================
interval of ``worse``                             verdict
================================================  ===========================================
fewer than ``min_samples`` in an arm              inconclusive (continue)
lower bound > ``margin`` (shown worse)            fail (rollback)
a guardrail's lower bound > its margin            fail (rollback), naming the guardrail
upper bound <= ``margin`` and every guardrail's   pass (promote)
upper bound <= its margin
otherwise                                         inconclusive (continue), with the interval
                                                  and about how many samples would settle it;
                                                  at ``max_samples`` per arm: stop, keep the
                                                  champion (``details["stop"]``)
================================================  ===========================================

Guardrails: the error rate (per-request 0/1 error indicators; margin in share of requests)
and tail latency. A p99 has no anytime-valid interval that decides at canary sample sizes
(a time-uniform DKW band needs ~10^5 requests to bound a p99 from above), so the latency
guardrail is the documented conservative dual: the share of requests slower than a fixed
``latency_threshold_ms`` chosen before the rollout (e.g. the champion's p99 or the p99
budget). An arm's p99 is at or below the threshold exactly when that share is at most 1%,
so holding the canary's share to the champion's + ``latency_margin`` holds its p99 at the
threshold whenever the champion's is. The share is a mean of 0/1 values: the same sequence.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mlgates import stats
from mlgates.gates._common import as_1d, fmt
from mlgates.result import GateInputError, GateResult

FloatArray = NDArray[np.float64]

# PrPl-EB's truncation of the bet (Waudby-Smith & Ramdas use 1/2 or 3/4)
_MAX_BET = 0.5


def confidence_sequence(x: ArrayLike, alpha: float) -> tuple[FloatArray, FloatArray]:
    """Running-intersected PrPl-EB confidence sequence for the mean of values in [0, 1].

    ``x`` has the observations on its last axis (any leading axes, e.g. seeds, are
    independent sequences, so a simulation runs vectorised). Returns ``(low, high)`` of
    ``x``'s shape: the two-sided (1 - ``alpha``) interval after each observation, valid at
    every sample size at once (Waudby-Smith & Ramdas 2023, Theorem 2; module docstring).
    """
    v = np.asarray(x, dtype=np.float64)
    if not 0.0 < alpha < 1.0:
        raise GateInputError(f"alpha must be a fraction in (0, 1), got {alpha!r}")
    n = v.shape[-1]
    t = np.arange(1, n + 1, dtype=np.float64)
    log_term = math.log(2.0 / alpha)
    mu = (0.5 + np.cumsum(v, axis=-1)) / (t + 1.0)  # mu_t, t = 1..n
    var = (0.25 + np.cumsum((v - mu) ** 2, axis=-1)) / (t + 1.0)  # var_t
    ones = np.ones((*v.shape[:-1], 1))
    mu_prev = np.concatenate([0.5 * ones, mu[..., :-1]], axis=-1)  # mu_{t-1}, mu_0 = 1/2
    var_prev = np.concatenate([0.25 * ones, var[..., :-1]], axis=-1)  # var_0 = 1/4
    bet = np.minimum(np.sqrt(2.0 * log_term / (var_prev * t * np.log1p(t))), _MAX_BET)
    psi = (-np.log1p(-bet) - bet) / 4.0
    penalty = 4.0 * (v - mu_prev) ** 2 * psi
    bets = np.cumsum(bet, axis=-1)
    centre = np.cumsum(bet * v, axis=-1) / bets
    radius = (log_term + np.cumsum(penalty, axis=-1)) / bets
    low = np.maximum.accumulate(np.clip(centre - radius, 0.0, 1.0), axis=-1)
    high = np.minimum.accumulate(np.clip(centre + radius, 0.0, 1.0), axis=-1)
    return low, high


@dataclass(frozen=True)
class ArmInterval:
    """One metric's difference (canary - champion, signed so positive = canary worse)."""

    metric: str
    low: float
    high: float
    estimate: float
    margin: float
    n_champion: int
    n_canary: int

    @property
    def shown_worse(self) -> bool:
        return self.low > self.margin

    @property
    def shown_within(self) -> bool:
        return self.high <= self.margin


def _stream(values: Any, what: str) -> tuple[FloatArray, list[int]]:
    """An arm's observations in arrival order and the batch ends (one look per batch)."""
    if isinstance(values, (list, tuple)) and values and not np.isscalar(values[0]):
        parts = [np.asarray(b, dtype=np.float64).ravel() for b in values]
        flat = np.concatenate(parts) if parts else np.empty(0)
        ends = np.cumsum([p.size for p in parts]).astype(int).tolist()
        return as_1d(flat, what), ends
    v = as_1d(values, what)
    return v, [int(v.size)]


def _check_bounds(bounds: Any, *arms: tuple[FloatArray, str]) -> tuple[float, float]:
    if bounds is None:
        lo, hi = 0.0, 1.0
        for v, what in arms:
            if v.min() < 0 or v.max() > 1:
                raise GateInputError(
                    f"{what} has values outside [0, 1] (min {fmt(float(v.min()))}, max "
                    f"{fmt(float(v.max()))}) and bounds is not given: the sequence needs a "
                    "bounded metric; pass bounds=(lo, hi), e.g. (0, largest cost per request)"
                )
        return lo, hi
    try:
        lo_raw, hi_raw = bounds
    except (TypeError, ValueError):
        raise GateInputError(f"bounds must be a pair (lo, hi), got {bounds!r}") from None
    lo, hi = stats.as_real(lo_raw, "bounds lo"), stats.as_real(hi_raw, "bounds hi")
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise GateInputError(f"bounds must be finite with lo < hi, got {bounds!r}")
    for v, what in arms:
        out = (v < lo) | (v > hi)
        if out.any():
            raise GateInputError(
                f"{what} has {int(out.sum())} value(s) outside bounds [{fmt(lo)}, {fmt(hi)}], "
                f"e.g. at rows {np.flatnonzero(out)[:5].tolist()}: widen bounds (a cap "
                "chosen after seeing the data is not a bound) or cap the metric by design"
            )
    return lo, hi


def _finite(v: FloatArray, what: str) -> None:
    bad = ~np.isfinite(v)
    if bad.any():
        raise GateInputError(
            f"{what} has {int(bad.sum())} NaN/inf value(s), e.g. at rows "
            f"{np.flatnonzero(bad)[:5].tolist()}: record failed requests in the error stream"
        )


def difference_interval(
    champion: FloatArray,
    canary: FloatArray,
    alpha_each: float,
    lo: float,
    hi: float,
    higher_is_better: bool = False,
) -> tuple[float, float, float]:
    """(low, high, estimate) of canary - champion (champion - canary when higher is better),
    each arm's sequence at ``alpha_each``, in the metric's units."""
    scale = hi - lo
    ch_low, ch_high = confidence_sequence((champion - lo) / scale, alpha_each)
    ca_low, ca_high = confidence_sequence((canary - lo) / scale, alpha_each)
    low = (float(ca_low[-1]) - float(ch_high[-1])) * scale
    high = (float(ca_high[-1]) - float(ch_low[-1])) * scale
    estimate = float(canary.mean() - champion.mean())
    if higher_is_better:
        low, high, estimate = -high, -low, -estimate
    return low, high, estimate


def _samples_to_settle(arm: ArmInterval, n_now: int) -> int | None:
    """About how many samples per arm would settle this interval, or None if none would
    (its estimate sits at the margin). The half-width of PrPl-EB shrinks about as
    sqrt(log(1 + n) / n); projected from the current one, holding the estimate."""
    gap = abs(arm.estimate - arm.margin)
    half = (arm.high - arm.low) / 2.0
    if gap <= 0 or half <= 0:
        return None
    n = max(n_now, 2)
    for _ in range(60):
        projected = half * math.sqrt(n_now / n * math.log1p(n) / math.log1p(n_now))
        if projected < gap:
            return n
        n = math.ceil(n * 1.25)
    return None


def canary(
    champion_values: ArrayLike | Sequence[ArrayLike],
    canary_values: ArrayLike | Sequence[ArrayLike],
    bounds: tuple[float, float] | None = None,
    higher_is_better: bool = False,
    margin: float = 0.0,
    alpha: float = 0.05,
    min_samples: int = 200,
    max_samples: int = 100_000,
    champion_errors: ArrayLike | Sequence[ArrayLike] | None = None,
    canary_errors: ArrayLike | Sequence[ArrayLike] | None = None,
    error_margin: float = 0.005,
    champion_latency_ms: ArrayLike | Sequence[ArrayLike] | None = None,
    canary_latency_ms: ArrayLike | Sequence[ArrayLike] | None = None,
    latency_threshold_ms: float | None = None,
    latency_margin: float = 0.01,
) -> GateResult:
    """Promote (pass), roll back (fail) or continue (inconclusive) a canary rollout.

    ``champion_values`` / ``canary_values``: each arm's per-request metric (business cost
    per transaction, a label-based outcome, ...) in arrival order, as one array or a list of
    batches (one look per batch; ``details["decided_at_batch"]`` says at which look the
    primary metric's interval first left its margin, None when it has not or the input is
    not batched alike for both arms). The metric must lie in ``bounds=(lo, hi)`` fixed before the
    rollout (default [0, 1]); lower is better unless ``higher_is_better``.

    The interval of the difference is an anytime-valid confidence sequence (PrPl-EB,
    Waudby-Smith & Ramdas 2023, Theorem 2; see the module docstring), so the gate may be
    called after every batch and its false promote-or-rollback rate stays at or below
    ``alpha`` over the whole rollout. ``margin`` (>= 0, the metric's units) is the
    non-inferiority margin: promote when the canary is shown worse by at most ``margin``,
    roll back when it is shown worse by more. Guardrails (each optional, both arms given):
    ``*_errors`` (0/1 per request; ``error_margin`` in share of requests) and
    ``*_latency_ms`` with ``latency_threshold_ms`` (the share of requests slower than it,
    ``latency_margin`` in share of requests: the p99 dual, see the module docstring).
    No decision before ``min_samples`` per arm; at ``max_samples`` per arm without one the
    gate stays inconclusive with ``details["stop"] = True`` (end the rollout, keep the
    champion).
    """
    a = stats.as_real(alpha, "alpha")
    if not 0.0 < a < 1.0:
        raise GateInputError(f"alpha must be a fraction in (0, 1) (0.05, not 5), got {alpha!r}")
    m = stats.as_real(margin, "margin")
    if not math.isfinite(m) or m < 0:
        raise GateInputError(f"margin must be a finite number >= 0, got {margin!r}")
    if not stats.is_integer(min_samples) or int(min_samples) < 1:
        raise GateInputError(f"min_samples must be an integer >= 1, got {min_samples!r}")
    if not stats.is_integer(max_samples) or int(max_samples) < int(min_samples):
        raise GateInputError(
            f"max_samples must be an integer >= min_samples ({min_samples}), got {max_samples!r}"
        )
    min_n, max_n = int(min_samples), int(max_samples)

    champ, champ_ends = _stream(champion_values, "champion_values")
    cand, cand_ends = _stream(canary_values, "canary_values")
    _finite(champ, "champion_values")
    _finite(cand, "canary_values")
    lo, hi = _check_bounds(bounds, (champ, "champion_values"), (cand, "canary_values"))
    batched = len(champ_ends) > 1 or len(cand_ends) > 1
    if batched and len(champ_ends) != len(cand_ends):
        raise GateInputError(
            f"champion_values has {len(champ_ends)} batches and canary_values "
            f"{len(cand_ends)}: pass one batch per look for both arms"
        )

    # (name, champion 0/1 or metric, canary, margin, bounds, higher_is_better)
    metrics: list[tuple[str, FloatArray, FloatArray, float, float, float, bool]] = [
        ("metric", champ, cand, m, lo, hi, bool(higher_is_better))
    ]
    if (champion_errors is None) != (canary_errors is None):
        raise GateInputError("pass both champion_errors and canary_errors, or neither")
    if champion_errors is not None and canary_errors is not None:
        err_m = stats.as_real(error_margin, "error_margin")
        if not 0.0 <= err_m < 1.0:
            raise GateInputError(f"error_margin must be a share in [0, 1), got {error_margin!r}")
        e_ch, _ = _stream(champion_errors, "champion_errors")
        e_ca, _ = _stream(canary_errors, "canary_errors")
        for v, what in ((e_ch, "champion_errors"), (e_ca, "canary_errors")):
            if not np.isin(v, (0.0, 1.0)).all():
                raise GateInputError(f"{what} must hold 0/1 error indicators per request")
        metrics.append(("error_rate", e_ch, e_ca, err_m, 0.0, 1.0, False))
    if (champion_latency_ms is None) != (canary_latency_ms is None):
        raise GateInputError("pass both champion_latency_ms and canary_latency_ms, or neither")
    if champion_latency_ms is not None and canary_latency_ms is not None:
        if latency_threshold_ms is None:
            raise GateInputError(
                "latency_threshold_ms is required with latencies: the fixed threshold (e.g. "
                "the champion's p99 or the p99 budget, chosen before the rollout) whose "
                "exceedance share is compared"
            )
        thr = stats.as_real(latency_threshold_ms, "latency_threshold_ms")
        lat_m = stats.as_real(latency_margin, "latency_margin")
        if not 0.0 <= lat_m < 1.0:
            raise GateInputError(
                f"latency_margin must be a share in [0, 1), got {latency_margin!r}"
            )
        l_ch, _ = _stream(champion_latency_ms, "champion_latency_ms")
        l_ca, _ = _stream(canary_latency_ms, "canary_latency_ms")
        _finite(l_ch, "champion_latency_ms")
        _finite(l_ca, "canary_latency_ms")
        metrics.append(
            (
                f"latency_over_{fmt(thr)}ms",
                (l_ch > thr).astype(np.float64),
                (l_ca > thr).astype(np.float64),
                lat_m,
                0.0,
                1.0,
                False,
            )
        )

    alpha_each = a / (2 * len(metrics))
    intervals: list[ArmInterval] = []
    for name, ch, ca, mar, b_lo, b_hi, better_high in metrics:
        low, high, est = difference_interval(ch, ca, alpha_each, b_lo, b_hi, better_high)
        intervals.append(ArmInterval(name, low, high, est, mar, int(ch.size), int(ca.size)))
    primary = intervals[0]
    n_min = min(champ.size, cand.size)
    decided_at = _first_decisive_batch(
        champ, cand, champ_ends, cand_ends, alpha_each, lo, hi, bool(higher_is_better), m, min_n
    )

    details: dict[str, Any] = {
        "sequence": "PrPl-EB confidence sequence (Waudby-Smith & Ramdas 2023, Thm 2)",
        "alpha": a,
        "alpha_per_arm_interval": alpha_each,
        "bounds": [lo, hi],
        "higher_is_better": bool(higher_is_better),
        "n_champion": int(champ.size),
        "n_canary": int(cand.size),
        "mean_champion": float(champ.mean()),
        "mean_canary": float(cand.mean()),
        "min_samples": min_n,
        "max_samples": max_n,
        "intervals": {
            iv.metric: {
                "low": iv.low,
                "high": iv.high,
                "estimate": iv.estimate,
                "margin": iv.margin,
                "n_champion": iv.n_champion,
                "n_canary": iv.n_canary,
            }
            for iv in intervals
        },
        "decided_at_batch": decided_at,
        "stop": False,
    }
    side = "higher" if higher_is_better else "lower"

    def show(iv: ArmInterval) -> str:
        units = "share " if iv.metric != "metric" else ""
        return (
            f"{iv.metric}: canary worse by {fmt(iv.estimate)} {units}"
            f"[{fmt(iv.low)}, {fmt(iv.high)}], margin {fmt(iv.margin)}"
        )

    def result(
        verdict: str, measured: float, message: str, hint: str, threshold: float = m
    ) -> GateResult:
        # measured: the bound that decides (the upper one of the primary metric, or the
        # lower one of the metric that was shown worse), against that metric's margin
        return GateResult(
            name="canary",
            verdict=verdict,  # type: ignore[arg-type]
            measured=measured,
            threshold=threshold,
            direction="max",
            message=message,
            hint=hint,
            details=details,
            rubric=("infra-6",),
        )

    level = f"{fmt(100 * (1 - a))}% anytime-valid"
    counts = f"{champ.size} champion / {cand.size} canary requests"
    if n_min < min_n:
        details["samples_needed"] = min_n
        return result(
            "inconclusive",
            primary.high,
            f"continue: {counts}, a decision needs {min_n} per arm ({show(primary)})",
            f"keep the rollout running until each arm has {min_n} outcomes",
        )
    worse = [iv for iv in intervals if iv.shown_worse]
    if worse:
        first = worse[0]
        what = "the canary" if first.metric == "metric" else f"guardrail {first.metric}"
        return result(
            "fail",
            first.low,
            f"rollback: {what} is worse than the champion by more than its margin "
            f"({level} interval above it; {counts}): " + "; ".join(show(iv) for iv in worse),
            "route all traffic back to the champion; compare the canary's offline "
            "evaluation, features and latency with the champion's on the same requests",
            threshold=first.margin,
        )
    undecided = [iv for iv in intervals if not iv.shown_within]
    if not undecided:
        return result(
            "pass",
            primary.high,
            f"promote: the canary is at most {fmt(m)} worse ({side} is better) with every "
            f"guardrail within its margin ({level}; {counts}): "
            + "; ".join(show(iv) for iv in intervals),
            "",
        )
    needed = [_samples_to_settle(iv, n_min) for iv in undecided]
    settle = None if any(n is None for n in needed) else max(n for n in needed if n)
    details["samples_needed"] = settle
    open_text = "; ".join(show(iv) for iv in undecided)
    if n_min >= max_n:
        details["stop"] = True
        return result(
            "inconclusive",
            primary.high,
            f"stop: {max_n} samples per arm reached without a decision ({open_text}); the "
            "difference is smaller than the interval can resolve",
            "end the rollout and keep the champion; a canary this close is not worth the "
            "switch, or raise max_samples if a smaller difference matters",
        )
    if settle is None:
        need = "the estimate sits at the margin: no sample size would settle it"
    elif settle > max_n:
        need = f"about {settle:,} per arm would, beyond max_samples {max_n:,}"
    else:
        need = f"about {settle:,} per arm would settle it ({settle - n_min:,} more)"
    return result(
        "inconclusive",
        primary.high,
        f"continue: {counts}, {level} intervals still straddle a margin ({open_text}); {need}",
        "keep the rollout running and call the gate again as outcomes mature",
    )


def _first_decisive_batch(
    champ: FloatArray,
    cand: FloatArray,
    champ_ends: list[int],
    cand_ends: list[int],
    alpha_each: float,
    lo: float,
    hi: float,
    higher_is_better: bool,
    margin: float,
    min_n: int,
) -> int | None:
    """The first look (1-based batch) at which the primary interval left the margin."""
    if len(champ_ends) != len(cand_ends):
        return None
    scale = hi - lo
    ch_low, ch_high = confidence_sequence((champ - lo) / scale, alpha_each)
    ca_low, ca_high = confidence_sequence((cand - lo) / scale, alpha_each)
    for k, (i, j) in enumerate(zip(champ_ends, cand_ends, strict=True), start=1):
        if min(i, j) < min_n or i == 0 or j == 0:
            continue
        low = (ca_low[j - 1] - ch_high[i - 1]) * scale
        high = (ca_high[j - 1] - ch_low[i - 1]) * scale
        if higher_is_better:
            low, high = -high, -low
        if low > margin or high <= margin:
            return k
    return None


__all__ = ["canary", "confidence_sequence", "difference_interval"]
