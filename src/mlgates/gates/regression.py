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


def _settle(boot: stats.BootstrapResult, n: int, margin: float) -> tuple[float, int | None]:
    """Minimum detectable effect (80% power) and rows needed to settle the verdict."""
    alpha = 1.0 - boot.confidence
    z = stats.normal_quantile(1 - alpha / 2)
    mde = (z + stats.normal_quantile(POWER)) * boot.std
    half = (boot.high - boot.low) / 2
    distance = abs(boot.estimate + margin)
    if distance <= 1e-12:
        return mde, None
    return mde, math.ceil(n * (half / distance) ** 2)


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
) -> GateResult:
    """Is the candidate no worse than the champion (by more than ``margin``) on ``metric``?

    ``slices``: one label per row, or a mapping name -> boolean mask. Slices with fewer
    than ``min_slice_rows`` rows (or a single class, for rank metrics) are skipped and
    listed. Measured is the lower bound of the CI of candidate - champion; the threshold
    is ``-margin``. ``champion_scores=None`` (first deploy) passes with a note.
    """
    m = get_metric(metric)
    if margin < 0:
        raise GateInputError(f"margin must be >= 0, got {margin}")
    y = binary_labels(y_true)
    n = y.size
    cand = as_scores(candidate_scores, n, "candidate_scores")
    rubric: tuple[str, ...] = ("infra-4", "monitor-7") + (
        ("model-6",) if slices is not None else ()
    )
    if champion_scores is None:
        value = m(y, cand)
        return GateResult(
            name="no_worse",
            verdict="pass",
            measured=value,
            threshold=None,
            message=(
                f"first deploy: no champion to compare against; candidate {m.name} "
                f"{fmt(value)} on {n} rows. Later candidates will be held to this model"
            ),
            hint="",
            details={"first_deploy": True, "metric": m.name, "candidate": value, "rows": n},
            rubric=rubric,
        )
    champ = as_scores(champion_scores, n, "champion_scores")
    boot = stats.paired_bootstrap(y, champ, cand, m, n_resamples, confidence, seed)
    bound = -margin
    overall = "pass" if boot.low > bound else "fail" if boot.high < bound else "inconclusive"
    level = f"{round(100 * confidence)}%"
    head = (
        f"{m.name}: champion {fmt(boot.value_a)}, candidate {fmt(boot.value_b)}, "
        f"difference {fmt(boot.estimate)} ({level} CI [{fmt(boot.low)}, {fmt(boot.high)}], "
        f"margin {fmt(margin)}, {n} rows"
        + (f", {boot.n_invalid} degenerate resamples dropped" if boot.n_invalid else "")
        + ")"
    )
    details: dict[str, Any] = {
        "metric": m.name,
        "higher_is_better": m.higher_is_better,
        "rows": n,
        "champion": boot.value_a,
        "candidate": boot.value_b,
        "difference": boot.estimate,
        "ci_low": boot.low,
        "ci_high": boot.high,
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
    elif overall == "fail":
        parts.append(f"candidate is worse than the champion by more than the margin: {head}")
    else:
        mde, needed = _settle(boot, n, margin)
        details["minimum_detectable_effect"] = mde
        details["rows_to_settle"] = needed
        rows_txt = (
            f"about {needed} rows (now {n}) would settle it"
            if needed is not None
            else "the estimate sits on the margin, so more rows alone will not settle it"
        )
        parts.append(
            f"inconclusive: the CI straddles -margin ({fmt(bound)}): {head}. Minimum "
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
        measured=boot.low,
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
