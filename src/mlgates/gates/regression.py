"""``no_worse``: never deploy a model that is worse than the one in production.

Both models score the same rows. The gate builds a confidence interval of
``candidate - champion`` (oriented so positive = candidate better, also for log loss
and Brier). With ``m = margin``:

- pass: the whole interval lies above ``-m`` (candidate not worse by more than m);
- fail: the whole interval lies below ``-m`` (candidate worse by more than m);
- inconclusive: the interval straddles ``-m``; the result reports the minimum detectable
  effect and roughly how many rows would settle it.

Which test decides (``details.test``, and named in the message):

- ``roc_auc``: DeLong's paired test (DeLong, DeLong & Clarke-Pearson 1988) from DeLong's
  variances and covariance of the two correlated AUCs. The interval of the difference is
  the hull of the Wald interval ``diff +- z * SE`` and the logit-scale one
  (``stats.auc_difference_ci``: the differences that a delta-method z test of
  ``logit(auc_cand) - logit(auc_champ + delta)`` does not reject); a p-value is the larger
  of the two tests'. Near AUC 1 with few of a class the Wald interval alone is too narrow on
  the pass side, the logit one alone on the fail side. Analytic, so p-values are continuous
  (Holm over any number of slices can reach them) and no resampling is needed.
- every other metric: the paired bootstrap (percentile CI of the resampled differences).
  For slices the p-values are the normal ones from the bootstrap SE,
  ``Phi((difference + m) / SE)``: a resampled p-value cannot go below ``1 /
  (n_resamples + 1)``, which Holm over more than ~25 slices can never reach.

With ``slices`` every slice is compared the same way, with the same small-sample and
degenerate-variance guards as the whole set; one-sided p-values are Holm-corrected over the
tested slices. A slice that is significantly worse fails the gate; otherwise an undecided
slice makes the gate inconclusive.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from mlgates import stats
from mlgates.gates._common import both_classes, fmt
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


@dataclass(frozen=True)
class Comparison:
    """One champion-vs-candidate comparison (the whole set or one slice), before guards."""

    #: "delong" or "paired_bootstrap": the test that decided
    test: str
    champion: float
    candidate: float
    #: candidate - champion, oriented so positive = candidate better
    estimate: float
    low: float
    high: float
    #: standard error of the difference (DeLong's, or the bootstrap SD; floored if degenerate)
    se: float
    #: one-sided p-value of H0 "not worse by more than the margin" (small: fail)
    pvalue_worse: float
    #: one-sided p-value of H0 "worse by at least the margin" (small: pass)
    pvalue_not_worse: float
    #: the variance is zero although the models rank/score the rows differently
    degenerate: bool
    #: half-width the CI was widened to when degenerate (roc_auc only), else 0
    floor: float
    n_resamples: int = 0
    n_invalid: int = 0
    bootstrap: stats.BootstrapResult | None = None
    delong: stats.DeLongResult | None = None

    @property
    def test_name(self) -> str:
        if self.test == "delong":
            return "DeLong's paired test (Wald and logit-scale intervals)"
        return f"paired bootstrap ({self.n_resamples} resamples)"


def _normal_pvalues(estimate: float, se: float, margin: float) -> tuple[float, float]:
    """(p worse, p not worse) of ``estimate`` against ``-margin`` with a normal SE."""
    if se <= 0:
        return (0.0 if estimate < -margin else 1.0), (0.0 if estimate > -margin else 1.0)
    p = NormalDist().cdf((estimate + margin) / se)
    return p, 1.0 - p


def compare(
    y: np.ndarray,
    champ: np.ndarray,
    cand: np.ndarray,
    m: Metric,
    margin: float,
    confidence: float,
    n_resamples: int,
    seed: int,
) -> Comparison:
    """Compare two models on the same rows: DeLong for ``roc_auc``, else paired bootstrap.

    ``y`` must hold both classes. Raises ``GateInputError`` when the metric is undefined
    in too many resamples.
    """
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    z = stats.normal_quantile(1 - (1 - confidence) / 2)
    # the same ranking (rank metrics) or the same scores give the same value on any rows
    same = (
        np.array_equal(stats.midrank(champ), stats.midrank(cand))
        if m.kind == "rank"
        else np.array_equal(champ, cand)
    )
    if m.name == "roc_auc":
        d = stats.delong(y, champ, cand)
        degenerate = d.se == 0 and not same
        floor = 0.0
        if d.se == 0:
            se = 0.0
            if degenerate:
                # no discordant pair to learn the variance from (e.g. both models separate
                # a small sample perfectly): DeLong's SE of 0 says nothing about new rows
                floor = degenerate_auc_half_width(d.auc_a, d.auc_b, n_pos, n_neg, confidence)
                se = floor / z
            low, high = d.diff - z * se, d.diff + z * se
            p_worse, p_ok = _normal_pvalues(d.diff, se, margin)
        elif d.var_a == 0 or d.var_b == 0:
            # one model separates the sample perfectly: its AUC sits at the edge of the logit
            # scale, where the delta-method SE explodes (a perfect candidate against a 0.985
            # champion on 90 positives gave the CI [-0.985, 0.025]); Wald instead, with that
            # model's variance floored at the rule-of-three AUC (Hanley-McNeil)
            var = (
                stats._floored_auc_var(d.auc_a, d.var_a, n_pos, n_neg)
                + stats._floored_auc_var(d.auc_b, d.var_b, n_pos, n_neg)
                - 2 * d.cov_ab
            )
            se = max(math.sqrt(max(var, 0.0)), d.se)
            low, high = d.diff - z * se, d.diff + z * se
            p_worse, p_ok = _normal_pvalues(d.diff, se, margin)
        else:
            # the hull of DeLong's Wald interval and the logit-scale one: near AUC 1 with
            # few of a class the Wald interval alone is too narrow on the pass side, the
            # logit one alone on the fail side (tests/mlgates/test_no_worse_calibration.py)
            wald_low, wald_high = d.ci(confidence)
            logit_low, logit_high = stats.auc_difference_ci(d, n_pos, n_neg, z)
            low, high = min(wald_low, logit_low), max(wald_high, logit_high)
            wald_p = _normal_pvalues(d.diff, d.se, margin)
            logit_p = stats.auc_difference_pvalues(d, n_pos, n_neg, margin)
            p_worse, p_ok = max(wald_p[0], logit_p[0]), max(wald_p[1], logit_p[1])
            se = (high - low) / (2 * z)
        return Comparison(
            test="delong",
            champion=d.auc_a,
            candidate=d.auc_b,
            estimate=d.diff,
            low=low,
            high=high,
            se=se,
            pvalue_worse=p_worse,
            pvalue_not_worse=p_ok,
            degenerate=degenerate,
            floor=floor,
            delong=d,
        )
    boot = stats.paired_bootstrap(y, champ, cand, m, n_resamples, confidence, seed)
    p_worse, p_ok = _normal_pvalues(boot.estimate, boot.std, margin)
    return Comparison(
        test="paired_bootstrap",
        champion=boot.value_a,
        candidate=boot.value_b,
        estimate=boot.estimate,
        low=boot.low,
        high=boot.high,
        se=boot.std,
        pvalue_worse=p_worse,
        pvalue_not_worse=p_ok,
        degenerate=bool(np.ptp(boot.diffs) == 0) and not same,
        floor=0.0,
        n_resamples=n_resamples,
        n_invalid=boot.n_invalid,
        bootstrap=boot,
    )


def _guard(comp: Comparison, n_pos: int, n_neg: int, min_class_rows: int) -> tuple[bool, list[str]]:
    """(blocks a pass?, reasons): the small-sample and degenerate-variance guards."""
    reasons: list[str] = []
    if min(n_pos, n_neg) < min_class_rows:
        reasons.append(
            f"too few rows of one class: {n_pos} positive(s) and {n_neg} negative(s), "
            f"min_class_rows is {min_class_rows}"
        )
    if comp.degenerate:
        if comp.test == "delong":
            reasons.append(
                "DeLong's variance is degenerate (SE 0: no pair of rows that the models "
                "order differently shows how they would differ on new rows)"
                + (f"; CI widened to +-{fmt(comp.floor)} (Hanley-McNeil SE)" if comp.floor else "")
            )
        else:
            reasons.append(
                f"the bootstrap is degenerate (all {comp.n_resamples - comp.n_invalid} "
                f"resamples give the same difference {fmt(comp.estimate)}: no resample shows "
                "the models disagree)"
            )
    blocking = min(n_pos, n_neg) < min_class_rows or (comp.degenerate and comp.floor == 0.0)
    return blocking, reasons


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
    slice_margin: float | None = None,
) -> GateResult:
    """Is the candidate no worse than the champion (by more than ``margin``) on ``metric``?

    The test that decides (``details.test``, named in the message): for ``roc_auc``
    DeLong's paired test (the hull of DeLong's Wald interval of the difference and its
    logit-scale counterpart, see the module docstring; Wald with the Hanley-McNeil
    rule-of-three variance when a model separates the sample perfectly, where the logit
    scale breaks down); for other metrics the paired
    bootstrap
    (percentile CI over ``n_resamples`` resamples). Measured is the lower bound of the CI
    of candidate - champion that the verdict used (``details.ci_low``: the widened bound
    when the variance is degenerate); the threshold is ``-margin``.
    ``champion_scores=None`` (first deploy) passes with a note.

    ``slices``: one label per row, or a mapping name -> boolean mask. Slices with fewer
    than ``min_slice_rows`` rows, and (for rank metrics such as AUC, undefined on one class)
    slices holding a single class, are not judged and are listed. Every other slice is
    compared like the whole set, under the same guards (below): one with fewer than
    ``min_class_rows`` of a class, or one whose variance is degenerate cannot pass. Each
    slice is held to ``slice_margin`` (default: ``margin``): a slice is a fraction of the
    rows, so at the whole set's margin it is often undecided; a wider per-slice margin
    still fails a candidate that is clearly worse on one slice. One-sided p-values (DeLong's normal ones; for bootstrap metrics normal ones from
    the bootstrap SE, so that they are not floored at ``1 / (n_resamples + 1)``) are
    Holm-corrected over the compared slices. The gate fails if the whole set or any slice
    is worse by more than the margin; otherwise it is inconclusive if the whole set or any
    slice is undecided (each listed with why in the message and ``details.slices``).

    Small samples: with fewer than ``min_class_rows`` rows of either class the gate does
    not pass (a would-be pass becomes inconclusive; a clear fail stays a fail). When the
    variance is degenerate (DeLong's SE is 0, or every bootstrap resample gives the same
    difference, although the models rank the rows differently: typically both separate a
    handful of positives perfectly) the data say nothing about new rows: for ``roc_auc``
    the CI is widened to at least ``degenerate_auc_half_width`` (Hanley-McNeil SE at the
    rule-of-three AUC) on each side and the widened CI decides; for other metrics a would-be
    pass becomes inconclusive. The message says how many rows (and positives) would settle
    it. Labels of a single class raise ``GateInputError`` for every metric (no sample at
    that class rate could ever settle the comparison).

    Calibration (tests/mlgates/test_no_worse_calibration.py, 1000 seeds each): at AUC 0.83
    equal true AUCs fail in 1.8-2.2% of samples at ``margin=0`` (the one-sided level is
    2.5%) and a candidate worse by exactly the margin passes in 2.3-3.2%, down to 13
    positives. Near AUC 0.99 equal AUCs fail in 0.3-1.4%, and a candidate worse by the
    margin passes in 3.8% (13 positives), 5.2% (30) and 3.2% (90): still above the 2.5%
    claimed at 30 positives (Wald alone 9.7%, the old percentile bootstrap 8.8%).
    """
    m = get_metric(metric)
    if margin < 0:
        raise GateInputError(f"margin must be >= 0, got {margin}")
    if min_class_rows < 1:
        raise GateInputError(f"min_class_rows must be >= 1, got {min_class_rows}")
    if slice_margin is None:
        slice_margin = margin
    elif slice_margin < 0:
        raise GateInputError(f"slice_margin must be >= 0, got {slice_margin}")
    y = binary_labels(y_true)
    n = y.size
    cand = as_scores(candidate_scores, n, "candidate_scores")
    # infra-4 (quality validated before serving); not monitor-7, which is the served model
    # regressing over time, not a candidate against a champion on the same rows
    rubric: tuple[str, ...] = ("infra-4",) + (("model-6",) if slices is not None else ())
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
    # rank metrics refuse one class in Metric.validate; probability metrics would compute,
    # but no number of rows at this class rate could meet min_class_rows
    n_pos, n_neg = both_classes(
        y,
        m.name,
        f" (at least {min_class_rows} of each); evaluate on a window whose labels have "
        "matured, or check the label join (unlabelled rows filled with 0?)",
    )
    comp = compare(y, champ, cand, m, margin, confidence, n_resamples, seed)
    bound = -margin
    minority = min(n_pos, n_neg)
    low, high, std = comp.low, comp.high, comp.se
    overall = "pass" if low > bound else "fail" if high < bound else "inconclusive"
    blocking, small_reasons = _guard(comp, n_pos, n_neg, min_class_rows)
    if blocking and overall == "pass":
        overall = "inconclusive"
    level = f"{round(100 * confidence)}%"
    head = (
        f"{m.name}: champion {fmt(comp.champion)}, candidate {fmt(comp.candidate)}, "
        f"difference {fmt(comp.estimate)} ({level} CI [{fmt(low)}, {fmt(high)}] by "
        f"{comp.test_name}, margin {fmt(margin)}, {n} rows, {n_pos} positives"
        + (f", {comp.n_invalid} degenerate resamples dropped" if comp.n_invalid else "")
        + ")"
    )
    details: dict[str, Any] = {
        "metric": m.name,
        "test": comp.test,
        "higher_is_better": m.higher_is_better,
        "rows": n,
        "positives": n_pos,
        "negatives": n_neg,
        "min_class_rows": min_class_rows,
        "degenerate": comp.degenerate,
        "ci_floor_half_width": comp.floor,
        "champion": comp.champion,
        "candidate": comp.candidate,
        "difference": comp.estimate,
        "ci_low": low,
        "ci_high": high,
        "se": comp.se,
        "pvalue_worse": comp.pvalue_worse,
        "pvalue_not_worse": comp.pvalue_not_worse,
        "confidence": confidence,
        "margin": margin,
        "seed": seed,
        "overall_verdict": overall,
    }
    test_note = ""
    if comp.bootstrap is not None:
        details.update(
            n_resamples=n_resamples,
            bootstrap_ci_low=comp.bootstrap.low,
            bootstrap_ci_high=comp.bootstrap.high,
        )
    if comp.delong is not None:
        d = comp.delong
        details["delong"] = {
            "auc_champion": d.auc_a,
            "auc_candidate": d.auc_b,
            "difference": d.diff,
            "se": d.se,
            "z": d.z,
            "pvalue_two_sided": d.pvalue,
            "pvalue_noninferiority": d.pvalue_noninferior(margin),
        }
        test_note = (
            f"; DeLong z={d.z:.2f}, p={d.pvalue:.3g} (two-sided), non-inferiority "
            f"p={d.pvalue_noninferior(margin):.3g}"
        )

    slice_failures: list[str] = []
    slice_inconclusive: list[str] = []
    slice_skipped: list[str] = []
    if slices is not None:
        rows, slice_failures, slice_inconclusive, slice_skipped = _slices(
            y,
            champ,
            cand,
            m,
            slices,
            slice_margin,
            confidence,
            n_resamples,
            seed,
            min_slice_rows,
            min_class_rows,
        )
        details["slices"] = rows
        details["slice_margin"] = slice_margin

    if overall == "fail" or slice_failures:
        verdict = "fail"
    elif overall == "inconclusive" or slice_inconclusive:
        verdict = "inconclusive"
    else:
        verdict = "pass"
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
        mde, needed = _settle(low, high, comp.estimate, std, confidence, n, margin)
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
    parts[0] += test_note
    if slice_failures:
        parts.append("worse on slice(s): " + "; ".join(slice_failures))
    if slice_inconclusive:
        parts.append(
            f"undecided slice(s), so the gate is {verdict} unless a slice fails: "
            + "; ".join(slice_inconclusive)
        )
    if slice_failures or slice_inconclusive:
        parts[-1] += f" (slice margin {fmt(slice_margin)})"
    if slice_skipped:
        parts.append(f"slice(s) not judged: {', '.join(slice_skipped)}")
    hints = {
        "fail": "keep the champion; look at the slices/rows where the candidate loses "
        "(details) and at training-data or feature changes since the champion",
        "inconclusive": "evaluate on more labelled rows (see details.rows_to_settle and the "
        "undecided slices in details.slices) or accept a larger margin explicitly; do not "
        "promote on a coin flip",
        "pass": "",
    }
    return GateResult(
        name="no_worse",
        verdict=verdict,  # type: ignore[arg-type]
        measured=low,  # the bound the verdict used (widened when the variance is degenerate)
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
    min_class_rows: int,
) -> tuple[dict[str, dict[str, Any]], list[str], list[str], list[str]]:
    """Per-slice rows, and the failed / undecided (with why) / skipped slices.

    Every slice of at least ``min_slice_rows`` rows is compared like the whole set
    (``compare``) under the same guards (``_guard``): a slice with fewer than
    ``min_class_rows`` of a class, a single class or a degenerate variance cannot pass.
    The one-sided p-values are Holm-corrected over the compared slices; a slice fails
    when its corrected "worse" p-value is below ``(1 - confidence) / 2``.
    """
    masks = _slice_masks(slices, y.size)
    rows: dict[str, dict[str, Any]] = {}
    tested: list[tuple[str, Comparison, bool, list[str]]] = []
    undecided_why: dict[str, str] = {}
    skipped: list[str] = []
    for i, (name, mask) in enumerate(masks.items()):
        ys = y[mask]
        size = int(mask.sum())
        pos = int(ys.sum())
        if size < min_slice_rows:
            reason = f"{size} rows < min_slice_rows {min_slice_rows}"
            rows[name] = {"rows": size, "verdict": "skipped", "reason": reason}
            skipped.append(f"{name!r} ({reason})")
            continue
        if (pos == 0 or pos == size) and m.kind == "rank":
            # AUC is undefined on one class: no number of such rows can decide it, so the
            # slice is not judged (listed), rather than holding the gate inconclusive forever
            reason = f"one class ({pos} positives of {size} rows): {m.name} is undefined on it"
            rows[name] = {"rows": size, "positives": pos, "verdict": "skipped", "reason": reason}
            skipped.append(f"{name!r} ({reason})")
            continue
        if pos == 0 or pos == size:
            reason = f"single class ({pos} positives of {size} rows): {m.name} cannot compare"
            rows[name] = {"rows": size, "positives": pos, "verdict": "inconclusive"}
            rows[name]["reason"] = reason
            undecided_why[name] = reason
            continue
        try:
            c = compare(
                ys, champ[mask], cand[mask], m, margin, confidence, n_resamples, seed + 1 + i
            )
        except GateInputError as exc:
            rows[name] = {"rows": size, "positives": pos, "verdict": "inconclusive"}
            rows[name]["reason"] = str(exc)
            undecided_why[name] = str(exc)
            continue
        blocking, reasons = _guard(c, pos, size - pos, min_class_rows)
        tested.append((name, c, blocking, reasons))
        rows[name] = {
            "rows": size,
            "positives": pos,
            "test": c.test,
            "champion": c.champion,
            "candidate": c.candidate,
            "difference": c.estimate,
            "ci_low": c.low,
            "ci_high": c.high,
            "se": c.se,
            "degenerate": c.degenerate,
        }
    alpha = (1.0 - confidence) / 2  # one side of the two-sided interval
    p_worse = stats.holm([c.pvalue_worse for _, c, _, _ in tested])
    p_ok = stats.holm([c.pvalue_not_worse for _, c, _, _ in tested])
    failures = []
    for (name, c, blocking, reasons), pw, po in zip(tested, p_worse, p_ok, strict=True):
        verdict = "fail" if pw < alpha else "pass" if po < alpha else "inconclusive"
        if verdict == "pass" and blocking:
            verdict = "inconclusive"
        rows[name].update(
            verdict=verdict, pvalue_worse_holm=float(pw), pvalue_not_worse_holm=float(po)
        )
        if reasons:
            rows[name]["reason"] = "; ".join(reasons)
        if verdict == "fail":
            failures.append(
                f"{name!r} difference {fmt(c.estimate)} (CI [{fmt(c.low)}, {fmt(c.high)}], "
                f"{c.test_name}, Holm p={pw:.3g}, {rows[name]['rows']} rows)"
            )
        elif verdict == "inconclusive":
            undecided_why[name] = "; ".join(
                reasons or [f"Holm p worse {pw:.3g}, not worse {po:.3g} (need < {alpha:.3g})"]
            )
    undecided = [f"{name!r} ({undecided_why[name]})" for name in rows if name in undecided_why]
    return rows, failures, undecided, skipped
