"""Decision threshold, business cost and test-window metrics (overall and per slice).

Every ranking/probability metric comes from ``mlgates.metrics``: the figures a training run
reports are computed by the same code the CI gates and the promotion step use.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlref.train.config import LABEL_COL, TIME_COL, DecisionPolicy

log = logging.getLogger(__name__)

MERCHANT_SLICE_COLUMNS = ("merchant_category", "merchant_category_code")
USER_TENURE = "user_tenure"


@dataclass(frozen=True)
class Threshold:
    """The chosen decision threshold (alert when ``score >= value``) and what it achieved on
    the window it was chosen on."""

    value: float
    kind: str
    precision: float | None
    recall: float
    alert_rate: float
    expected_cost: float
    policy_met: bool
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Evaluation:
    """Metrics of one window at one threshold; ``slices[column][value]`` holds the same rows
    per slice (``None`` where a metric is undefined, e.g. a slice with one class)."""

    n: int
    positives: int
    threshold: float
    metrics: dict[str, float | None]
    slices: dict[str, dict[str, dict[str, float | int | None]]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "positives": self.positives,
            "threshold": self.threshold,
            "metrics": dict(self.metrics),
            "slices": {k: dict(v) for k, v in self.slices.items()},
        }


def fraud_amounts(frame: pd.DataFrame, policy: DecisionPolicy) -> np.ndarray:
    """What each transaction is worth if it is fraud and missed.

    ``amount`` when the frame has it; otherwise ``expm1(log_amount)`` (the model feature is
    ``log1p(amount)``); otherwise ``policy.default_fraud_amount`` for every row.
    """
    if "amount" in frame.columns:
        return frame["amount"].to_numpy(dtype=np.float64)
    if "log_amount" in frame.columns:
        return np.expm1(frame["log_amount"].to_numpy(dtype=np.float64))
    return np.full(len(frame), policy.default_fraud_amount, dtype=np.float64)


def _as_arrays(y: Any, scores: Any, amounts: Any | None) -> tuple[np.ndarray, ...]:
    y_arr = np.asarray(y, dtype=np.float64)
    s_arr = np.asarray(scores, dtype=np.float64)
    if y_arr.ndim != 1 or y_arr.shape != s_arr.shape:
        raise ValueError(
            f"labels and scores must be 1-d and equally long, got {y_arr.shape} / {s_arr.shape}"
        )
    if y_arr.size == 0:
        raise ValueError("no rows to evaluate")
    if not np.isin(y_arr, (0.0, 1.0)).all():
        raise ValueError("labels must be 0/1 without missing values")
    if not np.isfinite(s_arr).all():
        raise ValueError("scores contain NaN or inf; the model output is broken")
    a_arr = np.ones_like(s_arr) if amounts is None else np.asarray(amounts, dtype=np.float64)
    if a_arr.shape != s_arr.shape:
        raise ValueError(f"amounts must match the scores, got {a_arr.shape} / {s_arr.shape}")
    return y_arr, s_arr, a_arr


def business_cost(
    y: Any, scores: Any, amounts: Any, threshold: float, policy: DecisionPolicy
) -> float:
    """Expected cost at ``threshold``: missed fraud amount (times ``missed_fraud_share``) plus
    ``review_cost`` per false alarm."""
    y_arr, s_arr, a_arr = _as_arrays(y, scores, amounts)
    alert = s_arr >= threshold
    missed = float(a_arr[(y_arr == 1) & ~alert].sum())
    false_alarms = int(((y_arr == 0) & alert).sum())
    return policy.missed_fraud_share * missed + policy.review_cost * false_alarms


def _curve(
    y: np.ndarray, s: np.ndarray, a: np.ndarray, policy: DecisionPolicy
) -> dict[str, np.ndarray]:
    """Confusion counts and cost for every candidate threshold (each distinct score, plus one
    above the top score: no alerts)."""
    order = np.argsort(-s, kind="stable")
    s_sorted, y_sorted, a_sorted = s[order], y[order], a[order]
    tp = np.cumsum(y_sorted)
    fp = np.cumsum(1.0 - y_sorted)
    caught = np.cumsum(a_sorted * y_sorted)
    # the last row of each run of equal scores: "score >= s" alerts on the whole run
    ends = np.flatnonzero(np.r_[s_sorted[1:] != s_sorted[:-1], True])
    thresholds = np.r_[np.nextafter(s_sorted[0], np.inf), s_sorted[ends]]
    tp = np.r_[0.0, tp[ends]]
    fp = np.r_[0.0, fp[ends]]
    caught = np.r_[0.0, caught[ends]]
    total_fraud_amount = float((a * y).sum())
    positives = float(y.sum())
    alerts = tp + fp
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(alerts > 0, tp / alerts, np.nan)
    recall = tp / positives if positives else np.zeros_like(tp)
    cost = policy.missed_fraud_share * (total_fraud_amount - caught) + policy.review_cost * fp
    return {
        "threshold": thresholds,
        "precision": precision,
        "recall": recall,
        "alerts": alerts,
        "cost": cost,
    }


def choose_threshold(
    y: Any, scores: Any, policy: DecisionPolicy, amounts: Any | None = None
) -> Threshold:
    """Pick the decision threshold on a (validation) window according to ``policy``.

    cost: the threshold with the lowest expected cost (ties: the higher threshold, fewer
    alerts). precision: the lowest threshold whose precision reaches the target, i.e. the
    most recall at that precision; when no threshold reaches it, the most precise one, with
    ``policy_met=False`` and a note.
    """
    y_arr, s_arr, a_arr = _as_arrays(y, scores, amounts)
    curve = _curve(y_arr, s_arr, a_arr, policy)
    met, note = True, ""
    if policy.kind == "cost":
        # argmin takes the first minimum = the highest threshold among equal costs
        k = int(np.argmin(curve["cost"]))
    else:
        ok = np.flatnonzero(np.nan_to_num(curve["precision"], nan=-1.0) >= policy.target_precision)
        if ok.size:
            k = int(ok[-1])
        else:
            best = np.nanmax(curve["precision"])
            k = int(np.flatnonzero(curve["precision"] == best)[-1])
            met = False
            note = (
                f"no threshold reaches precision {policy.target_precision}; the most precise "
                f"one reaches {best:.3f}"
            )
            log.warning("choose_threshold: %s", note)
    precision = curve["precision"][k]
    return Threshold(
        value=float(curve["threshold"][k]),
        kind=policy.kind,
        precision=None if math.isnan(precision) else float(precision),
        recall=float(curve["recall"][k]),
        alert_rate=float(curve["alerts"][k] / y_arr.size),
        expected_cost=float(curve["cost"][k]),
        policy_met=met,
        note=note,
    )


def _safe(fn: Any, *args: Any, **kwargs: Any) -> float | None:
    """A metric, or None where it is undefined (one class in the window)."""
    try:
        value = float(fn(*args, **kwargs))
    except ValueError:  # GateInputError is a ValueError
        return None
    return value if math.isfinite(value) else None


def window_metrics(
    y: np.ndarray,
    s: np.ndarray,
    a: np.ndarray,
    threshold: float,
    policy: DecisionPolicy,
) -> dict[str, float | None]:
    from mlgates import metrics as m

    two_classes = 0 < y.sum() < y.size
    alert = s >= threshold
    tp = float((alert & (y == 1)).sum())
    fp = float((alert & (y == 0)).sum())
    positives = float(y.sum())
    cost = business_cost(y, s, a, threshold, policy)
    no_model_cost = policy.missed_fraud_share * float((a * y).sum())
    out: dict[str, float | None] = {
        "roc_auc": _safe(m.roc_auc, y, s) if two_classes else None,
        "pr_auc": _safe(m.pr_auc, y, s) if two_classes else None,
        "log_loss": _safe(m.log_loss, y, s),
        "brier": _safe(m.brier, y, s),
        f"recall_at_precision_{policy.target_precision:g}": (
            _safe(m.recall_at_precision, y, s, precision=policy.target_precision)
            if two_classes
            else None
        ),
        "precision_at_threshold": tp / (tp + fp) if tp + fp else None,
        "recall_at_threshold": tp / positives if positives else None,
        "alert_rate": float(alert.mean()),
        "expected_cost": cost,
        "expected_cost_per_1k": 1000.0 * cost / y.size,
        "cost_without_model": no_model_cost,
    }
    return out


def user_tenure(frame: pd.DataFrame, new_user_days: int) -> pd.Series:
    """``"new"`` for a user's first ``new_user_days`` after their first event in ``frame``,
    ``"established"`` after; aligned to ``frame.index``."""
    first = frame.groupby("user_id")[TIME_COL].transform("min")
    is_new = (frame[TIME_COL] - first) < pd.Timedelta(days=new_user_days)
    return pd.Series(np.where(is_new, "new", "established"), index=frame.index, name=USER_TENURE)


def slice_columns(frame: pd.DataFrame, window: pd.DataFrame, new_user_days: int) -> dict[str, Any]:
    """Slice labels for the rows of ``window`` (a subset of ``frame``): merchant category and
    new vs established users (tenure measured over the whole ``frame``)."""
    out: dict[str, Any] = {}
    for col in MERCHANT_SLICE_COLUMNS:
        if col in window.columns:
            out[col] = window[col].astype(str).to_numpy()
            break
    if "user_id" in frame.columns:
        out[USER_TENURE] = user_tenure(frame, new_user_days).loc[window.index].to_numpy()
    return out


def evaluate(
    y: Any,
    scores: Any,
    *,
    threshold: float,
    policy: DecisionPolicy,
    amounts: Any | None = None,
    slices: Mapping[str, Any] | None = None,
    min_slice_rows: int = 1,
) -> Evaluation:
    """Metrics of ``scores`` against ``y`` at ``threshold``, overall and per slice value."""
    y_arr, s_arr, a_arr = _as_arrays(y, scores, amounts)
    overall = window_metrics(y_arr, s_arr, a_arr, threshold, policy)
    per_slice: dict[str, dict[str, dict[str, float | int | None]]] = {}
    for column, labels in (slices or {}).items():
        values = np.asarray(labels)
        if values.shape != y_arr.shape:
            raise ValueError(f"slice {column!r} has {values.shape[0]} labels for {y_arr.size} rows")
        rows: dict[str, dict[str, float | int | None]] = {}
        for value in sorted(set(values.tolist()), key=str):
            mask = values == value
            if mask.sum() < min_slice_rows:
                continue
            sub = window_metrics(y_arr[mask], s_arr[mask], a_arr[mask], threshold, policy)
            rows[str(value)] = {"n": int(mask.sum()), "positives": int(y_arr[mask].sum()), **sub}
        per_slice[column] = rows
    return Evaluation(
        n=int(y_arr.size),
        positives=int(y_arr.sum()),
        threshold=float(threshold),
        metrics=overall,
        slices=per_slice,
    )


def labels_of(frame: pd.DataFrame) -> np.ndarray:
    return frame[LABEL_COL].to_numpy(dtype=np.float64)
