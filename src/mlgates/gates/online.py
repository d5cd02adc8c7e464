"""Online gates: what served traffic says about the model, against what was promised offline.

``offline_online_agreement`` (ML Test Score model-2): the champion's metric on its offline
test window against the same metric realised on served, labelled traffic. The two samples
are independent (different rows, different time), so the interval of
``offline - online`` (oriented so positive = offline looked better, for every metric) is:

- ``roc_auc``: Wald, from DeLong's variance of each AUC (``stats.delong``, the code path
  of ``no_worse``; a zero variance, a perfectly separated sample, floored as there) added,
  since independent samples have no covariance;
- any other metric of ``mlgates.metrics``: the percentile interval of independent bootstrap
  resamples of each sample (``stats.bootstrap_weights``, the metrics' weighted code path).

With ``t = tolerance``: fail when the whole interval lies beyond +t (offline optimistic:
the usual sign of leakage in the offline evaluation or training/serving skew) or beyond -t
(offline pessimistic: a harder test window, or a serving population that changed); pass
when it lies within [-t, t]; otherwise inconclusive, with how many labelled online rows
would settle it. A verdict is wrong in at most about ``(1 - confidence) / 2`` of samples.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from mlgates import stats
from mlgates.gates._common import fmt
from mlgates.metrics import Metric, get_metric
from mlgates.result import GateInputError, GateResult


def _auc_interval(
    y_off: np.ndarray, s_off: np.ndarray, y_on: np.ndarray, s_on: np.ndarray
) -> tuple[float, float, float, float]:
    """(offline AUC, online AUC, variance offline, variance online) by DeLong."""
    out = []
    for y, s in ((y_off, s_off), (y_on, s_on)):
        d = stats.delong(y, s, s)
        n_pos, n_neg = int(y.sum()), int((~y).sum())
        out.append((d.auc_a, stats._floored_auc_var(d.auc_a, d.var_a, n_pos, n_neg)))
    return out[0][0], out[1][0], out[0][1], out[1][1]


def _bootstrap(
    m: Metric, y: np.ndarray, s: np.ndarray, n_resamples: int, rng: np.random.Generator
) -> np.ndarray:
    batch = m.prepare(y, s)
    values = np.concatenate([batch(w) for w in stats.bootstrap_weights(y.size, n_resamples, rng)])
    return values[np.isfinite(values)]


def offline_online_agreement(
    y_offline: ArrayLike,
    scores_offline: ArrayLike,
    y_online: ArrayLike,
    scores_online: ArrayLike,
    metric: str = "roc_auc",
    tolerance: float = 0.02,
    confidence: float = 0.95,
    min_class_rows: int = 30,
    n_resamples: int = 1000,
    seed: int = 0,
) -> GateResult:
    """Does the champion's offline metric hold on served, labelled traffic?

    ``y_offline``/``scores_offline``: labels and scores of the offline test window (the
    evaluation the model was promoted on); ``y_online``/``scores_online``: the prediction
    log's scores joined with matured labels. ``metric``: any name in
    ``mlgates.metrics.METRICS``. Measured: the interval bound of ``offline - online``
    farthest from 0 that the data support (positive = offline optimistic), held to
    ``tolerance``; see the module docstring for the verdicts. Fewer than ``min_class_rows``
    positives or negatives in either sample: inconclusive.
    """
    m = get_metric(metric)
    tol = stats.as_real(tolerance, "tolerance")
    if not math.isfinite(tol) or tol < 0:
        raise GateInputError(f"tolerance must be a finite number >= 0, got {tolerance!r}")
    conf = stats.as_real(confidence, "confidence")
    if not 0.5 <= conf < 1.0:
        raise GateInputError(
            f"confidence must be a fraction in [0.5, 1) (0.95, not 95), got {confidence!r}"
        )
    if not stats.is_integer(min_class_rows) or int(min_class_rows) < 1:
        raise GateInputError(f"min_class_rows must be an integer >= 1, got {min_class_rows!r}")
    if not stats.is_integer(n_resamples) or int(n_resamples) < 100:
        raise GateInputError(f"n_resamples must be an integer >= 100, got {n_resamples!r}")
    samples = {}
    for where, y_raw, s_raw in (
        ("offline", y_offline, scores_offline),
        ("online", y_online, scores_online),
    ):
        try:
            samples[where] = m.validate(y_raw, s_raw)
        except GateInputError as exc:
            raise GateInputError(f"y_{where}/scores_{where}: {exc}") from None
    (y_off, s_off), (y_on, s_on) = samples["offline"], samples["online"]
    sign = 1.0 if m.higher_is_better else -1.0
    z = stats.normal_quantile(1 - (1 - conf) / 2)
    if m.name == "roc_auc":
        v_off, v_on, var_off, var_on = _auc_interval(y_off, s_off, y_on, s_on)
        estimate = v_off - v_on
        half = z * math.sqrt(var_off + var_on)
        low, high = estimate - half, estimate + half
        test = "DeLong variances of two independent AUCs (Wald)"
    else:
        rng = np.random.default_rng(seed)
        boot_off = _bootstrap(m, y_off, s_off, int(n_resamples), rng)
        boot_on = _bootstrap(m, y_on, s_on, int(n_resamples), rng)
        k = min(boot_off.size, boot_on.size)
        diffs = sign * (boot_off[:k] - boot_on[:k])
        v_off, v_on = float(m(y_off, s_off)), float(m(y_on, s_on))
        estimate = sign * (v_off - v_on)
        lo_q, hi_q = np.quantile(diffs, [(1 - conf) / 2, 1 - (1 - conf) / 2])
        low, high = float(lo_q), float(hi_q)
        var_off, var_on = float(boot_off.var(ddof=1)), float(boot_on.var(ddof=1))
        test = "independent bootstrap of each sample (percentile)"

    counts = {
        "offline_rows": int(y_off.size),
        "offline_positives": int(y_off.sum()),
        "online_rows": int(y_on.size),
        "online_positives": int(y_on.sum()),
    }
    details: dict[str, Any] = {
        "metric": m.name,
        "offline": v_off,
        "online": v_on,
        "difference": estimate,
        "ci_low": low,
        "ci_high": high,
        "confidence": conf,
        "tolerance": tol,
        "test": test,
        **counts,
    }
    pc = f"{fmt(100 * conf)}%"
    summary = (
        f"{m.name} offline {fmt(v_off)} vs online {fmt(v_on)} "
        f"({counts['online_rows']} labelled served rows): offline - online "
        f"{fmt(estimate)}, {pc} CI [{fmt(low)}, {fmt(high)}] ({test})"
    )

    def result(verdict: str, measured: float, message: str, hint: str) -> GateResult:
        return GateResult(
            name="offline_online_agreement",
            verdict=verdict,  # type: ignore[arg-type]
            measured=measured,
            threshold=tol,
            direction="max",
            message=message,
            hint=hint,
            details=details,
            rubric=("model-2",),
        )

    worst = high if abs(high) >= abs(low) else low
    few = min(
        counts["offline_positives"],
        counts["offline_rows"] - counts["offline_positives"],
        counts["online_positives"],
        counts["online_rows"] - counts["online_positives"],
    )
    if few < int(min_class_rows):
        return result(
            "inconclusive",
            worst,
            f"too few rows of a class (fewest: {few}, min_class_rows {min_class_rows}): {summary}",
            "wait for more served rows' labels to mature (or widen the offline window)",
        )
    if low > tol:
        return result(
            "fail",
            low,
            f"offline optimistic by more than {fmt(tol)}: {summary}",
            "the offline evaluation promised more than serving delivers: look for leakage "
            "in the offline window (features computed after the event, a random split) and "
            "for training/serving skew (feature_parity on logged requests)",
        )
    if high < -tol:
        return result(
            "fail",
            high,
            f"offline pessimistic by more than {fmt(tol)} (online better): {summary}",
            "the offline test window is not like served traffic (a harder period, a "
            "different population, labels not yet matured online): re-check the window "
            "and the label join",
        )
    if -tol <= low and high <= tol:
        return result("pass", worst, f"offline and online agree within {fmt(tol)}: {summary}", "")
    need = _online_rows_to_settle(estimate, var_off, var_on, tol, z, counts["online_rows"])
    details["online_rows_needed"] = need
    if need is None:
        more = (
            "no number of online rows would settle it alone: the offline window's own "
            "interval is too wide (or the difference sits at the tolerance)"
        )
    else:
        more = f"about {need:,} labelled served rows would settle it ({need - counts['online_rows']:,} more)"
    return result(
        "inconclusive",
        worst,
        f"the interval straddles the tolerance +-{fmt(tol)}: {summary}; {more}",
        "collect more labelled served traffic (or a larger offline window) and re-run",
    )


def _online_rows_to_settle(
    estimate: float, var_off: float, var_on: float, tol: float, z: float, n_on: int
) -> int | None:
    """Online rows at which the interval, centred on the estimate, would clear the
    tolerance (the online variance scaling as 1 / n), or None if none would."""
    gap = abs(abs(estimate) - tol)
    room = (gap / z) ** 2 - var_off
    if gap == 0 or room <= 0:
        return None
    return max(n_on + 1, math.ceil(n_on * var_on / room))


__all__ = ["offline_online_agreement"]
