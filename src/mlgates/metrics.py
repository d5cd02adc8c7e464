"""Binary-classification metrics in numpy, computed for many row weightings at once.

Every metric is evaluated through one code path: a weight matrix ``W`` of shape
``(k, n)`` (row ``j`` = how many times each of the ``n`` rows is counted in weighting
``j``). A plain call uses one row of ones; a bootstrap passes resample counts, so a
resample never needs its own sort: the scores are sorted once (and, for the precision
curves, tied scores grouped once), then each weighting is a few cumulative sums.

Definitions follow scikit-learn (checked against it in the tests):

- ``roc_auc``: Mann-Whitney AUC, ties count one half.
- ``pr_auc``: average precision, ``sum_n (R_n - R_{n-1}) P_n`` over distinct thresholds.
- ``log_loss``: mean negative log-likelihood, probabilities clipped to [1e-15, 1 - 1e-15].
- ``brier``: mean squared error of the probability.
- ``recall_at_precision``: the largest recall among thresholds whose precision is at
  least ``precision`` (0 when none reaches it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mlgates.result import GateInputError

FloatArray = NDArray[np.float64]
Batch = Callable[[FloatArray], FloatArray]

_CLIP = 1e-15


def binary_labels(y_true: ArrayLike, what: str = "y_true") -> NDArray[np.bool_]:
    """Validate 0/1 (or boolean) labels without NaN and return them as booleans."""
    y = np.asarray(y_true)
    if y.ndim != 1:
        raise GateInputError(f"{what} must be one-dimensional, got shape {y.shape}")
    if y.size == 0:
        raise GateInputError(f"{what} is empty: nothing to measure")
    if y.dtype == bool:
        return y
    try:
        yf = y.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise GateInputError(f"{what} must be 0/1 labels, got dtype {y.dtype}") from exc
    n_nan = int(np.isnan(yf).sum())
    if n_nan:
        raise GateInputError(
            f"{what} has {n_nan} NaN label(s): drop unlabelled rows before measuring"
        )
    bad = ~np.isin(yf, (0.0, 1.0))
    if bad.any():
        examples = np.unique(yf[bad])[:5].tolist()
        raise GateInputError(f"{what} must contain only 0/1 labels, found {examples}")
    return yf == 1.0


def as_scores(scores: ArrayLike, n: int, what: str = "scores") -> FloatArray:
    """Validate a finite 1-d float score vector of length ``n``."""
    try:
        s = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise GateInputError(f"{what} must be numeric") from exc
    if s.ndim != 1:
        raise GateInputError(f"{what} must be one-dimensional, got shape {s.shape}")
    if s.shape[0] != n:
        raise GateInputError(f"{what} has {s.shape[0]} values but the labels have {n}")
    bad = ~np.isfinite(s)
    if bad.any():
        first = np.flatnonzero(bad)[:5].tolist()
        raise GateInputError(
            f"{what} has {int(bad.sum())} non-finite value(s) (NaN/inf), e.g. at rows {first}"
        )
    return s


@dataclass(frozen=True)
class _Sorted:
    """Scores sorted descending with tied scores grouped (shared by the rank metrics)."""

    order: NDArray[np.intp]
    positive: FloatArray  # 1.0 where the sorted row is a positive
    starts: NDArray[np.intp]  # first sorted position of each tie group

    @classmethod
    def of(cls, y: NDArray[np.bool_], s: FloatArray) -> _Sorted:
        order = np.argsort(-s, kind="stable")
        ss = s[order]
        starts = np.flatnonzero(np.r_[True, ss[1:] != ss[:-1]])
        return cls(order=order, positive=y[order].astype(np.float64), starts=starts)

    def _per_group(self, values: FloatArray) -> FloatArray:
        if self.starts.size == self.order.size:  # no ties: every row is its own group
            return values
        # group sums from a running sum (``np.add.reduceat`` along axis 1 is ~10x slower)
        ends = np.r_[self.starts[1:], self.order.size] - 1
        return np.diff(np.cumsum(values, axis=1)[:, ends], axis=1, prepend=0.0)

    def group_counts(self, weights: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Weighted positives and negatives per tie group (highest score first)."""
        w = weights[:, self.order]
        wp = w * self.positive
        pos = self._per_group(wp)
        neg = self._per_group(w - wp)
        return pos, neg


def _auc_batch(y: NDArray[np.bool_], s: FloatArray) -> Batch:
    """Weighted Mann-Whitney AUC: ``sum_i w_i (W_neg below s_i + W_neg tied with s_i / 2)``
    over positives ``i``, divided by ``W_pos * W_neg``.

    Only positive-negative pairs count, so the negatives are sorted once (ascending) and
    each positive's place among them is found once (``searchsorted`` left/right: the
    negatives strictly below, and at or below, its score). A weighting then costs one
    gather of the negatives' weights, one running sum over them, and a gather of that sum
    at each positive's place: about half the passes of grouping every row by tie
    (``_Sorted``), which dominated the bootstrap. With integer weights (resample counts)
    every sum is an exact integer or half-integer in float64, so the AUC is the exact ratio
    rounded once.
    """
    pos_rows = np.flatnonzero(y)
    neg_rows = np.flatnonzero(~y)
    neg_order = neg_rows[np.argsort(s[neg_rows], kind="stable")]
    neg_sorted = s[neg_order]
    pos_scores = s[pos_rows]
    below = np.searchsorted(neg_sorted, pos_scores, side="left")
    at_or_below = np.searchsorted(neg_sorted, pos_scores, side="right")
    tied = bool((at_or_below != below).any())

    def batch(weights: FloatArray) -> FloatArray:
        w = np.asarray(weights, dtype=np.float64)
        # running[:, j] = weight of the j lowest-scored negatives (running[:, 0] = 0)
        running = np.empty((w.shape[0], neg_order.size + 1))
        running[:, 0] = 0.0
        np.cumsum(np.take(w, neg_order, axis=1), axis=1, out=running[:, 1:])
        beaten = np.take(running, below, axis=1)
        if tied:  # a tie counts one half: the mean of "strictly below" and "at or below"
            beaten += np.take(running, at_or_below, axis=1)
            beaten *= 0.5
        w_pos = np.take(w, pos_rows, axis=1)
        wins = np.einsum("ij,ij->i", w_pos, beaten)
        with np.errstate(invalid="ignore", divide="ignore"):
            return wins / (w_pos.sum(axis=1) * running[:, -1])

    return batch


def _precision_curve(
    srt: _Sorted, weights: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    pos, neg = srt.group_counts(weights)
    tp, fp = np.cumsum(pos, axis=1), np.cumsum(neg, axis=1)
    predicted = tp + fp
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    return pos, tp, precision, pos.sum(axis=1)


def _ap_batch(y: NDArray[np.bool_], s: FloatArray) -> Batch:
    srt = _Sorted.of(y, s)

    def batch(weights: FloatArray) -> FloatArray:
        pos, _tp, precision, n_pos = _precision_curve(srt, weights)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (pos * precision).sum(axis=1) / n_pos

    return batch


def _rap_batch(target: float) -> Callable[[NDArray[np.bool_], FloatArray], Batch]:
    def prepare(y: NDArray[np.bool_], s: FloatArray) -> Batch:
        srt = _Sorted.of(y, s)

        def batch(weights: FloatArray) -> FloatArray:
            _pos, tp, precision, n_pos = _precision_curve(srt, weights)
            with np.errstate(invalid="ignore", divide="ignore"):
                recall = tp / n_pos[:, None]
            ok = precision >= target - 1e-12
            best = np.where(ok, recall, 0.0).max(axis=1)
            return np.where(n_pos > 0, best, np.nan)

        return batch

    return prepare


def _pointwise(
    loss: Callable[[NDArray[np.bool_], FloatArray], FloatArray],
) -> Callable[[NDArray[np.bool_], FloatArray], Batch]:
    def prepare(y: NDArray[np.bool_], s: FloatArray) -> Batch:
        per_row = loss(y, s)

        def batch(weights: FloatArray) -> FloatArray:
            return (weights @ per_row) / weights.sum(axis=1)

        return batch

    return prepare


def _log_loss_rows(y: NDArray[np.bool_], p: FloatArray) -> FloatArray:
    p = np.clip(p, _CLIP, 1.0 - _CLIP)
    return -np.where(y, np.log(p), np.log1p(-p))


def _brier_rows(y: NDArray[np.bool_], p: FloatArray) -> FloatArray:
    return (p - y) ** 2


@dataclass(frozen=True)
class Metric:
    """A named metric: ``metric(y, s)`` for one value, ``metric.prepare(y, s)(W)`` for many.

    ``kind`` is "rank" (needs both classes; any real-valued score) or "probability"
    (scores must lie in [0, 1]).
    """

    name: str
    higher_is_better: bool
    kind: Literal["rank", "probability"]
    _prepare: Callable[[NDArray[np.bool_], FloatArray], Batch] = field(repr=False)
    params: dict[str, Any] = field(default_factory=dict)

    def validate(
        self, y_true: ArrayLike, scores: ArrayLike
    ) -> tuple[NDArray[np.bool_], FloatArray]:
        y = binary_labels(y_true)
        s = as_scores(scores, y.shape[0])
        if self.kind == "rank" and (y.all() or not y.any()):
            only = "positive" if y.all() else "negative"
            raise GateInputError(
                f"{self.name} needs both classes but every label is {only} "
                f"({y.shape[0]} rows): use a sample that contains positives and negatives"
            )
        if self.kind == "probability" and ((s < 0).any() or (s > 1).any()):
            raise GateInputError(
                f"{self.name} needs probabilities in [0, 1]; scores range "
                f"[{s.min():.4g}, {s.max():.4g}]: calibrate or apply a sigmoid first"
            )
        return y, s

    def prepare(self, y_true: ArrayLike, scores: ArrayLike) -> Batch:
        """Validate once, sort once; return ``weights (k, n) -> values (k,)``."""
        y, s = self.validate(y_true, scores)
        return self._prepare(y, s)

    def __call__(self, y_true: ArrayLike, scores: ArrayLike) -> float:
        batch = self.prepare(y_true, scores)
        n = np.asarray(y_true).shape[0]
        return float(batch(np.ones((1, n)))[0])


def recall_at_precision_metric(precision: float = 0.9) -> Metric:
    """The ``recall_at_precision`` metric for another precision target."""
    if not 0.0 < precision <= 1.0:
        raise GateInputError(f"precision target must be in (0, 1], got {precision}")
    return Metric(
        "recall_at_precision", True, "rank", _rap_batch(precision), {"precision": precision}
    )


METRICS: dict[str, Metric] = {
    "roc_auc": Metric("roc_auc", True, "rank", _auc_batch),
    "pr_auc": Metric("pr_auc", True, "rank", _ap_batch),
    "log_loss": Metric("log_loss", False, "probability", _pointwise(_log_loss_rows)),
    "brier": Metric("brier", False, "probability", _pointwise(_brier_rows)),
    "recall_at_precision": recall_at_precision_metric(0.9),
}


def get_metric(metric: str | Metric) -> Metric:
    """Look a metric up by name (or pass a ``Metric`` through)."""
    if isinstance(metric, Metric):
        return metric
    try:
        return METRICS[metric]
    except KeyError:
        raise GateInputError(
            f"unknown metric {metric!r}; choose one of {sorted(METRICS)}"
        ) from None


def roc_auc(y_true: ArrayLike, scores: ArrayLike) -> float:
    """Area under the ROC curve (ties count one half)."""
    return METRICS["roc_auc"](y_true, scores)


def pr_auc(y_true: ArrayLike, scores: ArrayLike) -> float:
    """Average precision (scikit-learn's ``average_precision_score``)."""
    return METRICS["pr_auc"](y_true, scores)


def log_loss(y_true: ArrayLike, probabilities: ArrayLike) -> float:
    """Mean negative log-likelihood of the labels under the probabilities."""
    return METRICS["log_loss"](y_true, probabilities)


def brier(y_true: ArrayLike, probabilities: ArrayLike) -> float:
    """Mean squared difference between probability and label."""
    return METRICS["brier"](y_true, probabilities)


def recall_at_precision(y_true: ArrayLike, scores: ArrayLike, precision: float = 0.9) -> float:
    """Largest recall at any threshold whose precision is >= ``precision``."""
    return recall_at_precision_metric(precision)(y_true, scores)
