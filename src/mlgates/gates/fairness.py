"""``group_parity`` (model-7, "the model has been tested for considerations of inclusion"):
the model's error rates across the groups of a sensitive attribute.

Equalised odds (Hardt, Price & Srebro 2016): the model's decisions should have the same
recall (true-positive rate) and the same false-positive rate in every group. The per-group
rates are counts (numpy), checked against fairlearn's ``MetricFrame`` and
``equalized_odds_difference`` in tests/mlgates/test_model_gates_fairness.py rather than
computed by it: a ``MetricFrame`` costs about 0.2 s per call (measured on the shared
2-core machine), which made the gate's 1600-call calibration simulation take five
minutes, and the gate needs the counts anyway for the intervals. What fairlearn does not
give, the interval of a difference, is Newcombe's hybrid score interval (Newcombe 1998,
method 10) built from the two groups' Wilson intervals: it stays inside [-1, 1] and keeps
its level with few positives per group, where the Wald interval of a difference of
proportions is too narrow.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from mlgates import stats
from mlgates.gates._common import check_confidence, fmt
from mlgates.metrics import binary_labels
from mlgates.result import GateInputError, GateResult

#: the two error rates equalised odds asks to match, with the label they are computed on
RATES: dict[str, tuple[str, int]] = {
    "recall": ("true-positive rate (recall), on fraud rows", 1),
    "false_positive_rate": ("false-positive rate, on legitimate rows", 0),
}


def wilson_interval(successes: int, n: int, z: float) -> tuple[float, float]:
    """Wilson's score interval of a proportion at normal quantile ``z``."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_interval(x1: int, n1: int, x2: int, n2: int, z: float) -> tuple[float, float]:
    """Newcombe's hybrid score interval (method 10) of ``x1/n1 - x2/n2``."""
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson_interval(x1, n1, z)
    l2, u2 = wilson_interval(x2, n2, z)
    d = p1 - p2
    low = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return low, high


def group_parity(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    groups: ArrayLike,
    max_gap: float = 0.1,
    max_fpr_gap: float = 0.02,
    confidence: float = 0.95,
    min_class_rows: int = 20,
) -> GateResult:
    """Do recall and false-positive rate differ between groups by more than they may?

    Recall gaps are held to ``max_gap``, false-positive-rate gaps to ``max_fpr_gap``: the
    false-positive rate of a fraud model is of the order of 1%, so a gap tolerance on the
    recall's scale would never bind on it.

    ``y_pred``: the model's decisions (0/1, e.g. scores above the alert threshold);
    ``groups``: one label per row of a sensitive attribute (not a model input).

    For each rate and each pair of groups (with at least ``min_class_rows`` rows of the
    class the rate is computed on: fraud rows for recall, legitimate rows for the
    false-positive rate), Newcombe's interval of the difference. A pair fails when its
    interval lies wholly beyond ``+-max_gap`` at the Bonferroni-adjusted level (``1 -
    (1 - confidence) / comparisons``: several pairs and two rates are tested, and a fail
    claims one of them); the gate passes when every interval at ``confidence`` lies inside
    ``(-max_gap, max_gap)`` (each pair must pass: no correction needed); otherwise it is
    inconclusive, naming the pairs it could not settle. Groups below ``min_class_rows`` are
    listed and hold the gate inconclusive: they were not tested.

    Measured: the largest recall gap between any two groups (fairlearn's
    ``true_positive_rate`` difference); threshold ``max_gap``. ``details`` also holds the
    largest false-positive-rate gap and fairlearn's equalised-odds difference.
    """
    if not 0 < max_gap < 1:
        raise GateInputError(f"max_gap must be in (0, 1), got {max_gap}")
    if not 0 < max_fpr_gap < 1:
        raise GateInputError(f"max_fpr_gap must be in (0, 1), got {max_fpr_gap}")
    limit = {"recall": max_gap, "false_positive_rate": max_fpr_gap}
    check_confidence(confidence)
    if min_class_rows < 1:
        raise GateInputError(f"min_class_rows must be >= 1, got {min_class_rows}")
    y = binary_labels(y_true)
    n = y.size
    pred_raw = np.asarray(y_pred)
    if pred_raw.shape != (n,):
        raise GateInputError(f"y_pred has shape {pred_raw.shape}; expected ({n},) like y_true")
    if not np.isin(pred_raw, (0, 1, True, False)).all():
        raise GateInputError(
            "y_pred must hold decisions 0/1 (threshold the scores at the alert threshold)"
        )
    pred = pred_raw.astype(bool)
    labels = pd.Series(np.asarray(groups, dtype=object), name="group")
    if labels.shape != (n,):
        raise GateInputError(f"groups has shape {labels.shape}; expected ({n},) like y_true")
    if labels.isna().any():
        raise GateInputError(f"groups has {int(labels.isna().sum())} missing label(s)")
    labels = labels.astype(str)
    names = sorted(labels.unique())
    if len(names) < 2:
        raise GateInputError(f"groups has a single group {names}: nothing to compare")
    per_group: dict[str, dict[str, Any]] = {}
    counts: dict[str, dict[str, tuple[int, int]]] = {"recall": {}, "false_positive_rate": {}}
    g = labels.to_numpy()
    for name in names:
        mask = g == name
        pos, neg = int((y & mask).sum()), int((~y & mask).sum())
        tp, fp = int((pred & y & mask).sum()), int((pred & ~y & mask).sum())
        counts["recall"][name] = (tp, pos)
        counts["false_positive_rate"][name] = (fp, neg)
        per_group[name] = {
            "rows": int(mask.sum()),
            "positives": pos,
            "negatives": neg,
            "recall": tp / pos if pos else None,
            "false_positive_rate": fp / neg if neg else None,
        }

    tested: dict[str, list[str]] = {
        rate: [k for k in names if counts[rate][k][1] >= min_class_rows] for rate in RATES
    }
    pairs = [(rate, a, b) for rate in RATES for a, b in itertools.combinations(tested[rate], 2)]
    alpha = 1.0 - confidence
    z = stats.normal_quantile(1 - alpha / 2)
    z_fail = stats.normal_quantile(1 - alpha / (2 * max(len(pairs), 1)))
    rows: list[dict[str, Any]] = []
    failed: list[str] = []
    undecided: list[str] = []
    for rate, a, b in pairs:
        (xa, na), (xb, nb) = counts[rate][a], counts[rate][b]
        low, high = newcombe_interval(xa, na, xb, nb, z)
        low_f, high_f = newcombe_interval(xa, na, xb, nb, z_fail)
        gap = xa / na - xb / nb
        bound = limit[rate]
        if low_f > bound or high_f < -bound:
            verdict = "fail"
        elif -bound < low and high < bound:
            verdict = "pass"
        else:
            verdict = "inconclusive"
        rows.append(
            {
                "rate": rate,
                "groups": [a, b],
                "gap": gap,
                "max_gap": bound,
                "ci_low": low,
                "ci_high": high,
                "ci_low_adjusted": low_f,
                "ci_high_adjusted": high_f,
                "verdict": verdict,
            }
        )
        text = (
            f"{rate} {a!r} {fmt(xa / na)} ({xa}/{na}) vs {b!r} {fmt(xb / nb)} ({xb}/{nb}): gap "
            f"{fmt(gap)}, {round(100 * confidence)}% CI [{fmt(low)}, {fmt(high)}]"
        )
        if verdict == "fail":
            failed.append(
                text + f" (Bonferroni-adjusted CI [{fmt(low_f)}, {fmt(high_f)}] beyond "
                f"+-{fmt(bound)})"
            )
        elif verdict == "inconclusive":
            undecided.append(text)
    untested = [
        f"{k!r} for {rate} ({counts[rate][k][1]} rows < min_class_rows {min_class_rows})"
        for rate in RATES
        for k in names
        if k not in tested[rate]
    ]
    # per rate, largest minus smallest group value over the groups where it is defined (as
    # fairlearn's difference(); their maximum is its equalized_odds_difference)
    spread: dict[str, float] = {}
    for rate in RATES:
        values = [x / m for x, m in counts[rate].values() if m]
        spread[rate] = max(values) - min(values) if values else 0.0
    eod = max(spread.values())
    verdict = "fail" if failed else "inconclusive" if (undecided or untested) else "pass"
    head = (
        f"equalised odds across {len(names)} groups ({n} rows, {int(y.sum())} positives): "
        f"largest recall gap {fmt(spread['recall'])} (max_gap {fmt(max_gap)}), largest "
        f"false-positive-rate gap {fmt(spread['false_positive_rate'])} (max_fpr_gap "
        f"{fmt(max_fpr_gap)})"
    )
    parts = [head]
    if failed:
        parts.append("gap beyond max_gap with confidence: " + "; ".join(failed))
    if undecided:
        parts.append("undecided: " + "; ".join(undecided))
    if untested:
        parts.append("not tested (too few rows): " + "; ".join(untested))
    if verdict == "pass":
        parts.append(f"every gap's {round(100 * confidence)}% CI lies within its bound")
    hints = {
        "fail": "the model errs more for one group: look at that group's features and "
        "training rows (details.pairs), reweight or recalibrate per group, and re-test",
        "inconclusive": "evaluate on more labelled rows of the named groups (a longer window) "
        "or widen max_gap explicitly; equal treatment is not shown",
        "pass": "",
    }
    return GateResult(
        name="group_parity",
        verdict=verdict,  # type: ignore[arg-type]
        measured=spread["recall"],
        threshold=max_gap,
        direction="max",
        message=". ".join(parts),
        hint=hints[verdict],
        details={
            "rows": n,
            "positives": int(y.sum()),
            "confidence": confidence,
            "max_gap": max_gap,
            "max_fpr_gap": max_fpr_gap,
            "recall_gap": spread["recall"],
            "false_positive_rate_gap": spread["false_positive_rate"],
            "equalized_odds_difference": eod,
            "min_class_rows": min_class_rows,
            "interval": "Newcombe hybrid score (method 10); fail at Bonferroni-adjusted level",
            "groups": per_group,
            "pairs": rows,
            "untested": untested,
        },
        rubric=("model-7",),
    )
