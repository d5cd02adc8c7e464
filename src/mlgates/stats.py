"""The statistics behind the gates: PSI, KS, paired bootstrap, DeLong, percentiles.

There is ONE implementation of each; the reference system's production monitoring
imports these so CI and monitoring compute the same numbers.

PSI binning: interior edges are the reference quantiles, deduplicated (heavy ties
collapse bins instead of creating empty ones); the outer bins are open-ended, so values
beyond the reference range still land in a bin. Bins are left-closed, ``[e_i, e_{i+1})``.
NaN gets its own bucket. Empty bins are floored at ``eps`` (a share, default 1e-4) so a
bin seen on one side only contributes a large but finite term.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mlgates.metrics import Metric, as_scores, binary_labels, get_metric
from mlgates.result import GateInputError

FloatArray = NDArray[np.float64]

DEFAULT_EPS = 1e-4
#: Cells in one bootstrap chunk (resamples x rows); bounds memory at ~100 MB.
CHUNK_CELLS = 4_000_000


# --------------------------------------------------------------------------- PSI


def quantile_bins(values: ArrayLike, n_bins: int = 10) -> FloatArray:
    """Interior bin edges at the reference quantiles ``1/n_bins .. (n_bins-1)/n_bins``.

    Same values as ``np.quantile(..., method="linear")`` but from one sort (faster than
    numpy's multi-quantile partition). NaN and infinities are ignored when placing
    edges; duplicate edges (heavy ties) are dropped, so a constant column has no edges.
    """
    if n_bins < 2:
        raise GateInputError(f"n_bins must be >= 2, got {n_bins}")
    x = np.asarray(values, dtype=np.float64)
    xs = np.sort(x[np.isfinite(x)])
    if xs.size == 0:
        return np.empty(0)
    h = (xs.size - 1) * np.linspace(0.0, 1.0, n_bins + 1)[1:-1]
    lo = np.floor(h).astype(np.intp)
    hi = np.minimum(lo + 1, xs.size - 1)
    return np.unique(xs[lo] + (h - lo) * (xs[hi] - xs[lo]))


def bin_counts(values: ArrayLike, edges: ArrayLike) -> NDArray[np.int64]:
    """Counts per bin: ``len(edges) + 1`` left-closed bins, then one NaN bucket.

    With few edges, counting ``x >= edge`` per edge beats ``searchsorted`` + ``bincount``
    by ~8x (no per-element binary search, no index array).
    """
    x = np.ascontiguousarray(values, dtype=np.float64)  # strided frame columns are ~30x slower
    e = np.asarray(edges, dtype=np.float64)
    n_nan = int(np.count_nonzero(np.isnan(x)))
    if e.size > 32:
        idx = np.searchsorted(e, x, side="right")
        idx[np.isnan(x)] = e.size + 1
        return np.bincount(idx, minlength=e.size + 2).astype(np.int64)
    at_or_above = np.array([np.count_nonzero(x >= v) for v in e], dtype=np.int64)
    bounds = np.r_[x.size - n_nan, at_or_above, 0]
    return np.r_[bounds[:-1] - bounds[1:], n_nan].astype(np.int64)


def bin_labels(edges: ArrayLike) -> list[str]:
    """Human-readable labels matching ``bin_counts``' layout."""
    e = [float(v) for v in np.asarray(edges, dtype=np.float64).ravel()]
    if not e:
        return ["(-inf, inf)", "__nan__"]
    labels = [f"(-inf, {e[0]:.6g})"]
    labels += [f"[{lo:.6g}, {hi:.6g})" for lo, hi in itertools.pairwise(e)]
    labels += [f"[{e[-1]:.6g}, inf)", "__nan__"]
    return labels


def psi_terms(
    reference_counts: ArrayLike, current_counts: ArrayLike, eps: float = DEFAULT_EPS
) -> FloatArray:
    """Per-bin PSI contributions ``(c - r) * ln(c / r)`` on shares floored at ``eps``.

    Every term is >= 0 (both factors share a sign), so PSI >= 0 and PSI(x, x) = 0.
    """
    r = np.asarray(reference_counts, dtype=np.float64)
    c = np.asarray(current_counts, dtype=np.float64)
    if r.shape != c.shape:
        raise GateInputError(f"bin count shapes differ: {r.shape} vs {c.shape}")
    if r.sum() <= 0 or c.sum() <= 0:
        raise GateInputError("PSI needs at least one row on each side")
    rp = np.maximum(r / r.sum(), eps)
    cp = np.maximum(c / c.sum(), eps)
    return (cp - rp) * np.log(cp / rp)


def psi(
    reference: ArrayLike,
    current: ArrayLike,
    bins: int | ArrayLike = 10,
    eps: float = DEFAULT_EPS,
) -> float:
    """Population stability index of a numeric variable.

    ``bins`` is a bin count (edges from the reference quantiles) or explicit interior
    edges (e.g. frozen ones).
    """
    ref = np.asarray(reference, dtype=np.float64)
    edges = quantile_bins(ref, bins) if isinstance(bins, int) else np.asarray(bins, float)
    return float(psi_terms(bin_counts(ref, edges), bin_counts(current, edges), eps).sum())


# --------------------------------------------------------------------------- KS


@dataclass(frozen=True)
class KSResult:
    statistic: float
    pvalue: float
    n_reference: int
    n_current: int


def ks_2samp(reference: ArrayLike, current: ArrayLike) -> KSResult:
    """Two-sample Kolmogorov-Smirnov test (two-sided), NaN dropped.

    The statistic is exact (ECDFs compared at every observed value, ties included);
    the p-value is the asymptotic one (Kolmogorov distribution at ``n = m n / (m + n)``),
    as ``scipy.stats.ks_2samp(method="asymp")`` computes it.
    """
    from scipy.stats import kstwo

    a = np.sort(np.asarray(reference, dtype=np.float64))
    b = np.sort(np.asarray(current, dtype=np.float64))
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if a.size == 0 or b.size == 0:
        raise GateInputError("KS needs at least one non-NaN value on each side")
    grid = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, grid, side="right") / a.size
    cdf_b = np.searchsorted(b, grid, side="right") / b.size
    d = float(np.max(np.abs(cdf_a - cdf_b)))
    en = a.size * b.size / (a.size + b.size)
    p = float(np.clip(kstwo.sf(d, np.round(en)), 0.0, 1.0))
    return KSResult(d, p, int(a.size), int(b.size))


# --------------------------------------------------------------------------- multiplicity


def holm(pvalues: ArrayLike) -> FloatArray:
    """Holm step-down adjusted p-values (monotone, capped at 1)."""
    p = np.asarray(pvalues, dtype=np.float64)
    m = p.size
    if m == 0:
        return p
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(stepped, 1.0)
    return out


def bonferroni(pvalues: ArrayLike) -> FloatArray:
    """Bonferroni adjusted p-values (capped at 1)."""
    p = np.asarray(pvalues, dtype=np.float64)
    return np.minimum(p * p.size, 1.0)


# --------------------------------------------------------------------------- bootstrap


def bootstrap_weights(
    n: int, n_resamples: int, rng: np.random.Generator, chunk_cells: int = CHUNK_CELLS
) -> Iterator[FloatArray]:
    """Yield resample count matrices ``(k, n)`` in chunks (row j: times each row is drawn).

    Counting draws instead of gathering rows lets the metrics reuse one sort of the
    scores for every resample (see ``mlgates.metrics``).
    """
    per_chunk = max(1, chunk_cells // max(n, 1))
    done = 0
    while done < n_resamples:
        k = min(per_chunk, n_resamples - done)
        idx = rng.integers(0, n, size=(k, n))
        idx += (np.arange(k) * n)[:, None]
        yield np.bincount(idx.ravel(), minlength=k * n).reshape(k, n).astype(np.float64)
        done += k


@dataclass(frozen=True)
class BootstrapResult:
    """Paired bootstrap of ``metric(b) - metric(a)``, oriented so positive = b is better."""

    metric: str
    value_a: float
    value_b: float
    estimate: float
    low: float
    high: float
    std: float
    confidence: float
    n_resamples: int
    n_invalid: int
    diffs: FloatArray

    def pvalue_below(self, bound: float) -> float:
        """One-sided bootstrap p-value for H0: difference >= ``bound``."""
        return float((np.sum(self.diffs >= bound) + 1) / (self.diffs.size + 1))

    def pvalue_above(self, bound: float) -> float:
        """One-sided bootstrap p-value for H0: difference <= ``bound``."""
        return float((np.sum(self.diffs <= bound) + 1) / (self.diffs.size + 1))


def paired_bootstrap(
    y_true: ArrayLike,
    scores_a: ArrayLike,
    scores_b: ArrayLike,
    metric: str | Metric = "roc_auc",
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> BootstrapResult:
    """Percentile CI of ``metric(b) - metric(a)`` on the same resampled rows.

    Both models see the identical resample (paired), which cancels the row-sampling
    noise they share. Lower-is-better metrics are sign-flipped so a positive difference
    always means ``b`` is better. Resamples where the metric is undefined (one class
    only) are dropped and counted in ``n_invalid``.
    """
    m = get_metric(metric)
    if n_resamples < 10:
        raise GateInputError(f"n_resamples must be >= 10, got {n_resamples}")
    if not 0.5 <= confidence < 1.0:
        raise GateInputError(f"confidence must be in [0.5, 1), got {confidence}")
    batch_a = m.prepare(y_true, scores_a)
    batch_b = m.prepare(y_true, scores_b)
    n = np.asarray(y_true).shape[0]
    sign = 1.0 if m.higher_is_better else -1.0
    ones = np.ones((1, n))
    value_a, value_b = float(batch_a(ones)[0]), float(batch_b(ones)[0])
    rng = np.random.default_rng(seed)
    chunks = [sign * (batch_b(w) - batch_a(w)) for w in bootstrap_weights(n, n_resamples, rng)]
    diffs = np.concatenate(chunks)
    valid = np.isfinite(diffs)
    diffs = diffs[valid]
    if diffs.size < 10:
        raise GateInputError(
            f"{m.name} was undefined in {int((~valid).sum())} of {n_resamples} resamples "
            "(too few rows of one class): add rows"
        )
    alpha = 1.0 - confidence
    low, high = np.quantile(diffs, [alpha / 2, 1 - alpha / 2])
    return BootstrapResult(
        metric=m.name,
        value_a=value_a,
        value_b=value_b,
        estimate=sign * (value_b - value_a),
        low=float(low),
        high=float(high),
        std=float(diffs.std(ddof=1)),
        confidence=confidence,
        n_resamples=n_resamples,
        n_invalid=int((~valid).sum()),
        diffs=diffs,
    )


# --------------------------------------------------------------------------- DeLong


@dataclass(frozen=True)
class DeLongResult:
    """DeLong's test of two correlated AUCs: ``diff = auc_b - auc_a``."""

    auc_a: float
    auc_b: float
    diff: float
    se: float
    z: float
    pvalue: float

    def pvalue_noninferior(self, margin: float) -> float:
        """One-sided p-value for H0: ``auc_b - auc_a <= -margin`` (b worse by the margin)."""
        if self.se == 0:
            return 0.0 if self.diff > -margin else 1.0
        return 1.0 - NormalDist().cdf((self.diff + margin) / self.se)


def midrank(x: ArrayLike) -> FloatArray:
    """1-based ranks with ties given their average rank, O(n log n)."""
    v = np.asarray(x, dtype=np.float64)
    order = np.argsort(v, kind="mergesort")
    vs = v[order]
    starts = np.flatnonzero(np.r_[True, vs[1:] != vs[:-1]])
    ends = np.r_[starts[1:], v.size]
    ranks = np.empty(v.size)
    ranks[order] = np.repeat((starts + 1 + ends) / 2.0, ends - starts)
    return ranks


def delong(y_true: ArrayLike, scores_a: ArrayLike, scores_b: ArrayLike) -> DeLongResult:
    """DeLong, DeLong & Clarke-Pearson (1988) in the O(n log n) midrank form (Sun & Xu 2014)."""
    auc = get_metric("roc_auc")
    y, a = auc.validate(y_true, scores_a)
    _, b = auc.validate(y_true, scores_b)
    m, n = int(y.sum()), int((~y).sum())
    v10, v01, aucs = [], [], []
    for s in (a, b):
        pos, neg = s[y], s[~y]
        tx, ty, tz = midrank(pos), midrank(neg), midrank(np.concatenate([pos, neg]))
        aucs.append((tz[:m].sum() - m * (m + 1) / 2) / (m * n))
        v10.append((tz[:m] - tx) / n)
        v01.append(1.0 - (tz[m:] - ty) / m)
    s10 = np.cov(np.vstack(v10)) if m > 1 else np.zeros((2, 2))
    s01 = np.cov(np.vstack(v01)) if n > 1 else np.zeros((2, 2))
    cov = s10 / m + s01 / n
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    diff = float(aucs[1] - aucs[0])
    se = math.sqrt(max(var, 0.0))
    if se > 0:
        z = diff / se
        p = 2.0 * (1.0 - NormalDist().cdf(abs(z)))
    else:
        z = 0.0 if diff == 0 else math.copysign(math.inf, diff)
        p = 1.0 if diff == 0 else 0.0
    return DeLongResult(float(aucs[0]), float(aucs[1]), diff, se, float(z), float(p))


# --------------------------------------------------------------------------- percentiles


def percentiles(values: ArrayLike, qs: Sequence[float] = (50, 95, 99)) -> dict[str, float]:
    """``{"p50": ..., "p95": ..., "p99": ...}`` (linear interpolation, NaN rejected)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        raise GateInputError("no values to take percentiles of")
    if np.isnan(v).any():
        raise GateInputError(f"{int(np.isnan(v).sum())} NaN value(s): drop or fix them first")
    out = np.percentile(v, list(qs))
    return {f"p{q:g}": float(x) for q, x in zip(qs, out, strict=True)}


def quantile_bootstrap_ci(
    values: ArrayLike,
    q: float,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile-bootstrap CI of the ``q`` quantile (0 < q < 1, linear interpolation).

    Vectorised: sorting the sample once makes a resample's order statistics the values at
    its order-statistic *indices*, found with one ``np.partition`` per chunk.
    """
    v = np.sort(np.asarray(values, dtype=np.float64))
    n = v.size
    if n < 2:
        raise GateInputError("a quantile CI needs at least 2 values")
    h = (n - 1) * q
    lo = math.floor(h)
    hi = min(lo + 1, n - 1)
    frac = h - lo
    rng = np.random.default_rng(seed)
    per_chunk = max(1, CHUNK_CELLS // n)
    stats_: list[FloatArray] = []
    done = 0
    while done < n_resamples:
        k = min(per_chunk, n_resamples - done)
        idx = rng.integers(0, n, size=(k, n))
        part = np.partition(idx, sorted({lo, hi}), axis=1)
        stats_.append(v[part[:, lo]] + frac * (v[part[:, hi]] - v[part[:, lo]]))
        done += k
    boot = np.concatenate(stats_)
    alpha = 1.0 - confidence
    low, high = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def normal_quantile(p: float) -> float:
    """Standard normal quantile (stdlib; keeps scipy out of the hot imports)."""
    return NormalDist().inv_cdf(p)


def labels_and_scores(
    y_true: ArrayLike, scores: ArrayLike, what: str = "scores"
) -> tuple[NDArray[np.bool_], FloatArray]:
    """Validated labels and one score vector of the same length."""
    y = binary_labels(y_true)
    return y, as_scores(scores, y.shape[0], what)
