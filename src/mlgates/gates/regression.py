"""``no_worse``: never deploy a model that is worse than the one in production.

Both models score the same rows. The paired bootstrap gives a confidence interval of
``candidate - champion`` (oriented so positive = candidate better, also for log loss
and Brier). With ``m = margin``:

- pass: the whole interval lies above ``-m`` (candidate not worse by more than m);
- fail: the whole interval lies below ``-m`` (candidate worse by more than m);
- inconclusive: the interval straddles ``-m``; the result reports the minimum detectable
  effect and roughly how many rows would settle it.

For ``roc_auc`` DeLong's test is reported alongside (details.delong). With ``slices``
every slice is tested the same way; one-sided bootstrap p-values are Holm-corrected
over slices, and a slice that is significantly worse fails the gate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from mlgates import stats
from mlgates.gates._common import fmt
from mlgates.metrics import Metric, as_scores, binary_labels, get_metric
from mlgates.result import GateInputError, GateResult

POWER = 0.8


def _slice_masks(slices: Any, n: int) -> dict[str, np.ndarray]:
    if isinstance(slices, Mapping):
        masks = {}
        for name, mask in slices.items():
            m = np.asarray(mask, dtype=bool)
            if m.shape != (n,):
                raise GateInputError(
                    f"slice {name!r} mask has shape {m.shape}, expected ({n},) like y_true"
                )
            masks[str(name)] = m
        return masks
    labels = np.asarray(slices, dtype=object)
    if labels.shape != (n,):
        raise GateInputError(
            f"slices has shape {labels.shape}; pass one label per row ({n}) or a mapping "
            "name -> boolean mask"
        )
    keys = [str(v) for v in labels]
    names = sorted(set(keys))
    arr = np.asarray(keys, dtype=object)
    return {name: arr == name for name in names}


def _settle(
    low: float, high: float, estimate: float, std: float, confidence: float, n: int, margin: float
) -> tuple[float, int | None]:
    """Minimum detectable effect (80% power) and rows needed to settle the verdict."""
    alpha = 1.0 - confidence
    z = stats.normal_quantile(1 - alpha / 2)
    mde = (z + stats.normal_quantile(POWER)) * std
    half = (high - low) / 2
    distance = abs(estimate + margin)
    if distance <= 1e-12:
        return mde, None
    return mde, math.ceil(n * (half / distance) ** 2)


def hanley_mcneil_se(auc: float, n_pos: int, n_neg: int) -> float:
    """Hanley & McNeil (1982) standard error of one AUC from its value and class counts."""
    a = min(max(auc, 0.0), 1.0)
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    var = (a * (1 - a) + (n_pos - 1) * (q1 - a * a) + (n_neg - 1) * (q2 - a * a)) / (n_pos * n_neg)
    return math.sqrt(max(var, 0.0))


def degenerate_auc_half_width(
    auc_a: float, auc_b: float, n_pos: int, n_neg: int, confidence: float
) -> float:
    """Floor on the CI half-width of an AUC difference whose bootstrap is degenerate.

    When every resample gives the same difference (typically both models separate a small
    sample perfectly, so there is no discordant pair to resample), the bootstrap says
    nothing about how the models would differ on new rows. The floor is
    ``z * sqrt(2) * SE_HM(A)``: the Hanley-McNeil SE of one AUC evaluated at
    ``A = min(auc_a, auc_b, 1 - 3 / (n_pos * n_neg))`` (the rule of three: with zero
    discordant pairs observed, up to ``3 / (n_pos * n_neg)`` of them are still plausible at
    95%), combined for two models as if independent (conservative).
    """
    z = stats.normal_quantile(1 - (1 - confidence) / 2)
    a = min(auc_a, auc_b, 1.0 - 3.0 / (n_pos * n_neg))
    return z * math.sqrt(2.0) * hanley_mcneil_se(a, n_pos, n_neg)


def no_worse(
    y_true: ArrayLike,
    champion_scores: ArrayLike | None,
    candidate_scores: ArrayLike,
    metric: str | Metric = "roc_auc",
    margin: float = 0.005,
    confidence: float = 0.95,
    slices: Any = None,
    n_resamples: int = 1000,
    seed: int = 0,
    min_slice_rows: int = 30,
    min_class_rows: int = 30,
) -> GateResult:
    """Is the candidate no worse than the champion (by more than ``margin``) on ``metric``?

    ``slices``: one label per row, or a mapping name -> boolean mask. Slices with fewer
    than ``min_slice_rows`` rows (or a single class, for rank metrics) are skipped and
    listed. Measured is the lower bound of the CI of candidate - champion that the verdict
    used (``details.ci_low``: the widened bound when the bootstrap is degenerate); the
    threshold is ``-margin``. ``champion_scores=None`` (first deploy) passes with a note.

    Small samples: with fewer than ``min_class_rows`` rows of either class the gate does
    not pass (a would-be pass becomes inconclusive; a clear fail stays a fail): a bootstrap
    over a handful of positives can be degenerate (e.g. both models separate 6 positives
    perfectly, every resample differs by exactly 0, CI [0, 0]) and cannot resolve a
    ``margin`` of 0.005. When the bootstrap is degenerate (every resample gives the same
    difference although the models rank the rows differently) the CI is widened: for
    ``roc_auc`` to at least ``degenerate_auc_half_width`` (Hanley-McNeil SE at the
    rule-of-three AUC) on each side, and the widened CI decides; for other metrics a
    would-be pass becomes inconclusive. The message says how many rows (and
    positives) would settle it. Labels of a single class raise ``GateInputError`` for every
    metric (no sample at that class rate could ever settle the comparison).
    """
    m = get_metric(metric)
    if margin < 0:
        raise GateInputError(f"margin must be >= 0, got {margin}")
    if min_class_rows < 1:
        raise GateInputError(f"min_class_rows must be >= 1, got {min_class_rows}")
    y = binary_labels(y_true)
    n = y.size
    cand = as_scores(candidate_scores, n, "candidate_scores")
    rubric: tuple[str, ...] = ("infra-4", "monitor-7") + (
        ("model-6",) if slices is not None else ()
    )
    if champion_scores is None:
        # Nothing to compare against: a note, not a pass. It does not block the first
        # deploy, but it tested no regression, so it claims no ML Test Score item.
        value = m(y, cand)
        return GateResult(
            name="no_worse",
            verdict="note",
            measured=value,
            threshold=None,
            message=(
                f"first deploy: no champion to compare against, so no regression was tested; "
                f"candidate {m.name} {fmt(value)} on {n} rows. Later candidates will be held "
                "to this model"
            ),
            hint="",
            details={"first_deploy": True, "metric": m.name, "candidate": value, "rows": n},
            rubric=(),
        )
    champ = as_scores(champion_scores, n, "champion_scores")
    n_pos = int(y.sum())
    n_neg = n - n_pos
    if n_pos == 0 or n_neg == 0:
        # rank metrics refuse this in Metric.validate; probability metrics would compute,
        # but no number of rows at this class rate could meet min_class_rows
        only = "negative" if n_pos == 0 else "positive"
        raise GateInputError(
            f"y_true has one class only (all {n} labels are {only}): comparing {m.name} "
            f"needs both classes (at least {min_class_rows} of each); evaluate on a window "
            "whose labels have matured, or check the label join (unlabelled rows filled "
            "with 0?)"
        )
    boot = stats.paired_bootstrap(y, champ, cand, m, n_resamples, confidence, seed)
    bound = -margin
    minority = min(n_pos, n_neg)
    low, high, std = boot.low, boot.high, boot.std
    # the same ranking (rank metrics) or the same scores give the same value on any rows
    same = (
        np.array_equal(stats.midrank(champ), stats.midrank(cand))
        if m.kind == "rank"
        else np.array_equal(champ, cand)
    )
    degenerate = bool(np.ptp(boot.diffs) == 0) and not same
    floor = 0.0
    if degenerate and m.name == "roc_auc":
        floor = degenerate_auc_half_width(boot.value_a, boot.value_b, n_pos, n_neg, confidence)
        low, high = min(low, boot.estimate - floor), max(high, boot.estimate + floor)
        std = max(std, floor / stats.normal_quantile(1 - (1 - confidence) / 2))
    overall = "pass" if low > bound else "fail" if high < bound else "inconclusive"
    small_reasons: list[str] = []
    if minority < min_class_rows:
        small_reasons.append(
            f"too few rows of one class: {n_pos} positive(s) and {n_neg} negative(s), "
            f"min_class_rows is {min_class_rows}"
        )
    if degenerate:
        small_reasons.append(
            f"the bootstrap is degenerate (all {boot.diffs.size} resamples give the same "
            f"difference {fmt(boot.estimate)}: no resample shows the models disagree)"
            + (f"; CI widened to +-{fmt(floor)} (Hanley-McNeil SE)" if floor else "")
        )
    blocking = minority < min_class_rows or (degenerate and floor == 0.0)
    if blocking and overall == "pass":
        overall = "inconclusive"
    level = f"{round(100 * confidence)}%"
    head = (
        f"{m.name}: champion {fmt(boot.value_a)}, candidate {fmt(boot.value_b)}, "
        f"difference {fmt(boot.estimate)} ({level} CI [{fmt(low)}, {fmt(high)}], "
        f"margin {fmt(margin)}, {n} rows, {n_pos} positives"
        + (f", {boot.n_invalid} degenerate resamples dropped" if boot.n_invalid else "")
        + ")"
    )
    details: dict[str, Any] = {
        "metric": m.name,
        "higher_is_better": m.higher_is_better,
        "rows": n,
        "positives": n_pos,
        "negatives": n_neg,
        "min_class_rows": min_class_rows,
        "degenerate_bootstrap": degenerate,
        "ci_floor_half_width": floor,
        "bootstrap_ci_low": boot.low,
        "bootstrap_ci_high": boot.high,
        "champion": boot.value_a,
        "candidate": boot.value_b,
        "difference": boot.estimate,
        "ci_low": low,
        "ci_high": high,
        "bootstrap_std": boot.std,
        "confidence": confidence,
        "margin": margin,
        "n_resamples": n_resamples,
        "seed": seed,
        "overall_verdict": overall,
    }
    delong_note = ""
    if m.name == "roc_auc":
        d = stats.delong(y, champ, cand)
        details["delong"] = {
            "auc_champion": d.auc_a,
            "auc_candidate": d.auc_b,
            "difference": d.diff,
            "se": d.se,
            "z": d.z,
            "pvalue_two_sided": d.pvalue,
            "pvalue_noninferiority": d.pvalue_noninferior(margin),
        }
        delong_note = (
            f"; DeLong z={d.z:.2f}, p={d.pvalue:.3g} (two-sided), non-inferiority "
            f"p={d.pvalue_noninferior(margin):.3g}"
        )

    slice_failures: list[str] = []
    slice_inconclusive: list[str] = []
    if slices is not None:
        rows, slice_failures, slice_inconclusive = _slices(
            y, champ, cand, m, slices, margin, confidence, n_resamples, seed, min_slice_rows
        )
        details["slices"] = rows

    verdict = "fail" if overall == "fail" or slice_failures else overall
    parts = []
    if overall == "pass":
        parts.append(f"candidate is not worse than the champion: {head}")
        if small_reasons:
            parts.append("note: " + "; ".join(small_reasons))
    elif overall == "fail":
        parts.append(f"candidate is worse than the champion by more than the margin: {head}")
        if small_reasons:
            parts.append("note: small sample (" + "; ".join(small_reasons) + ")")
    else:
        mde, needed = _settle(low, high, boot.estimate, std, confidence, n, margin)
        for_classes = None
        if minority < min_class_rows:
            for_classes = math.ceil(min_class_rows * n / minority)
            needed = for_classes if needed is None else max(needed, for_classes)
        details["minimum_detectable_effect"] = mde
        details["rows_to_settle"] = needed
        if needed is not None:
            rows_txt = (
                f"about {needed} rows (now {n}), i.e. about "
                f"{math.ceil(needed * n_pos / n)} positives at the current rate (now {n_pos}),"
                " would settle it"
            )
            if for_classes is not None:
                rows_txt += f" (at least {min_class_rows} of each class: {for_classes} rows)"
        else:
            rows_txt = "the estimate sits on the margin, so more rows alone will not settle it"
        causes = list(small_reasons)
        if low <= bound <= high:
            causes.append(f"the CI straddles -margin ({fmt(bound)})")
        why = "; ".join(causes)
        parts.append(
            f"inconclusive: {why}: {head}. Minimum "
            f"detectable effect at this size (80% power) is {fmt(mde)}; {rows_txt}"
        )
    parts[0] += delong_note
    if slice_failures:
        parts.append("worse on slice(s): " + "; ".join(slice_failures))
    if slice_inconclusive:
        parts.append(f"undecided slice(s): {', '.join(slice_inconclusive)}")
    hints = {
        "fail": "keep the champion; look at the slices/rows where the candidate loses "
        "(details) and at training-data or feature changes since the champion",
        "inconclusive": "evaluate on more labelled rows (see details.rows_to_settle) or "
        "accept a larger margin explicitly; do not promote on a coin flip",
        "pass": "",
    }
    return GateResult(
        name="no_worse",
        verdict=verdict,  # type: ignore[arg-type]
        measured=low,  # the bound the verdict used (widened when the bootstrap is degenerate)
        threshold=bound,
        direction="min",
        message=". ".join(parts),
        hint=hints[verdict],
        details=details,
        rubric=rubric,
    )


def _slices(
    y: np.ndarray,
    champ: np.ndarray,
    cand: np.ndarray,
    m: Metric,
    slices: Any,
    margin: float,
    confidence: float,
    n_resamples: int,
    seed: int,
    min_slice_rows: int,
) -> tuple[dict[str, dict[str, Any]], list[str], list[str]]:
    masks = _slice_masks(slices, y.size)
    rows: dict[str, dict[str, Any]] = {}
    tested: list[tuple[str, stats.BootstrapResult]] = []
    for i, (name, mask) in enumerate(masks.items()):
        ys = y[mask]
        size = int(mask.sum())
        if size < min_slice_rows:
            rows[name] = {"rows": size, "verdict": "skipped", "reason": f"< {min_slice_rows} rows"}
            continue
        if m.kind == "rank" and (ys.all() or not ys.any()):
            rows[name] = {"rows": size, "verdict": "skipped", "reason": "single class"}
            continue
        try:
            b = stats.paired_bootstrap(
                ys, champ[mask], cand[mask], m, n_resamples, confidence, seed + 1 + i
            )
        except GateInputError as exc:
            rows[name] = {"rows": size, "verdict": "skipped", "reason": str(exc)}
            continue
        tested.append((name, b))
        rows[name] = {
            "rows": size,
            "positives": int(ys.sum()),
            "champion": b.value_a,
            "candidate": b.value_b,
            "difference": b.estimate,
            "ci_low": b.low,
            "ci_high": b.high,
        }
    alpha = (1.0 - confidence) / 2  # one side of the two-sided interval
    p_worse = stats.holm([b.pvalue_below(-margin) for _, b in tested])
    p_ok = stats.holm([b.pvalue_above(-margin) for _, b in tested])
    failures, undecided = [], []
    for (name, b), pw, po in zip(tested, p_worse, p_ok, strict=True):
        verdict = "fail" if pw < alpha else "pass" if po < alpha else "inconclusive"
        rows[name].update(
            verdict=verdict, pvalue_worse_holm=float(pw), pvalue_not_worse_holm=float(po)
        )
        if verdict == "fail":
            failures.append(
                f"{name!r} difference {fmt(b.estimate)} (CI [{fmt(b.low)}, {fmt(b.high)}], "
                f"Holm p={pw:.3g}, {rows[name]['rows']} rows)"
            )
        elif verdict == "inconclusive":
            undecided.append(name)
    return rows, failures, undecided
