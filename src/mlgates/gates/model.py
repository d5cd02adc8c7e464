"""Model-development gates of the ML Test Score: is the model worth its complexity?

``beats_baseline`` (model-5, "a simpler model is not better"): the model against one or
more simpler baselines scored on the same rows, paired with confidence through the same
comparison ``no_worse`` uses (``regression.compare``: DeLong for ``roc_auc``, the paired
bootstrap otherwise), so one implementation decides both gates.

``features_beneficial`` (data-2, "all features are beneficial"): permutation importance of
every model input on a held-out window with a bootstrap interval over the window's rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from mlgates import stats
from mlgates.gates._common import fmt
from mlgates.gates.regression import Comparison, _guard, _settle, compare
from mlgates.metrics import Metric, as_scores, binary_labels, get_metric
from mlgates.result import GateInputError, GateResult


def _baselines(baseline_scores: Any, n: int) -> dict[str, np.ndarray]:
    if isinstance(baseline_scores, Mapping):
        if not baseline_scores:
            raise GateInputError("baseline_scores is an empty mapping: name at least one baseline")
        return {
            str(name): as_scores(s, n, f"baseline_scores[{name!r}]")
            for name, s in baseline_scores.items()
        }
    return {"baseline": as_scores(baseline_scores, n, "baseline_scores")}


def beats_baseline(
    y_true: ArrayLike,
    model_scores: ArrayLike,
    baseline_scores: Mapping[str, ArrayLike] | ArrayLike,
    metric: str | Metric = "roc_auc",
    margin: float = 0.0,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
    min_class_rows: int = 30,
) -> GateResult:
    """Does the model beat every simpler baseline by more than ``margin`` on ``metric``?

    Model and baselines score the same rows. Each baseline is compared with the model
    exactly as ``no_worse`` compares a candidate with its champion (the baseline in the
    champion's seat): for ``roc_auc`` DeLong's paired test (hull of the Wald and
    logit-scale intervals), otherwise the paired bootstrap. ``difference`` is
    model - baseline, oriented so positive = model better.

    Per baseline: pass when the whole CI of the difference lies above ``margin`` (the
    model beats it with confidence); fail when the model does not beat it by the margin
    with confidence (Holm-corrected one-sided p-value of "the model beats it by more than
    ``margin``" below ``(1 - confidence) / 2``: with several baselines, the chance of
    failing a model that beats them all stays at that level); otherwise inconclusive, with
    the rows that would settle it. The gate passes only when every baseline is beaten (an
    intersection-union test: no correction is needed for the pass), fails when any
    baseline is not beaten, and is otherwise inconclusive. With fewer than
    ``min_class_rows`` of a class, or a degenerate variance, a would-be pass is
    inconclusive. Measured is the smallest CI lower bound over the baselines; the
    threshold is ``margin``.

    ``baseline_scores``: one array, or a mapping name -> array (e.g. ``{"logistic
    regression": ..., "rules": ...}``).
    """
    m = get_metric(metric)
    if not 0.5 <= confidence < 1:
        raise GateInputError(f"confidence must be in [0.5, 1), got {confidence}")
    if min_class_rows < 1:
        raise GateInputError(f"min_class_rows must be >= 1, got {min_class_rows}")
    y = binary_labels(y_true)
    n = y.size
    model = as_scores(model_scores, n, "model_scores")
    baselines = _baselines(baseline_scores, n)
    n_pos = int(y.sum())
    n_neg = n - n_pos
    if n_pos == 0 or n_neg == 0:
        only = "negative" if n_pos == 0 else "positive"
        raise GateInputError(
            f"y_true has one class only (all {n} labels are {only}): comparing {m.name} "
            "needs both classes"
        )
    alpha = (1.0 - confidence) / 2
    comps: dict[str, Comparison] = {}
    guards: dict[str, tuple[bool, list[str]]] = {}
    for i, (name, base) in enumerate(baselines.items()):
        # the baseline sits in the champion's seat; compare's margin is "worse by more than",
        # so -margin asks "better by more than margin"
        comps[name] = compare(y, base, model, m, -margin, confidence, n_resamples, seed + i)
        guards[name] = _guard(comps[name], n_pos, n_neg, min_class_rows)
    names = list(comps)
    # pvalue_worse of compare(-margin): small when the model is below baseline + margin
    p_fail = stats.holm([comps[k].pvalue_worse for k in names])
    rows: dict[str, dict[str, Any]] = {}
    failed: list[str] = []
    undecided: list[str] = []
    passed: list[str] = []
    for name, pf in zip(names, p_fail, strict=True):
        c = comps[name]
        blocking, reasons = guards[name]
        if pf < alpha:
            verdict = "fail"
        elif c.low > margin and not blocking:
            verdict = "pass"
        else:
            verdict = "inconclusive"
        rows[name] = {
            "verdict": verdict,
            "test": c.test,
            "model": c.candidate,
            "baseline": c.champion,
            "difference": c.estimate,
            "ci_low": c.low,
            "ci_high": c.high,
            "se": c.se,
            "pvalue_not_beaten_holm": float(pf),
            "pvalue_beaten": c.pvalue_not_worse,
            "degenerate": c.degenerate,
        }
        text = (
            f"{name!r}: model {fmt(c.candidate)} vs baseline {fmt(c.champion)}, difference "
            f"{fmt(c.estimate)} ({round(100 * confidence)}% CI [{fmt(c.low)}, {fmt(c.high)}], "
            f"{c.test_name})"
        )
        if verdict == "fail":
            failed.append(f"{text}, Holm p={pf:.3g}")
        elif verdict == "pass":
            passed.append(text)
        else:
            mde, needed = _settle(c.low, c.high, c.estimate, c.se, confidence, n, -margin)
            rows[name].update(minimum_detectable_effect=mde, rows_to_settle=needed)
            if reasons:
                rows[name]["reason"] = "; ".join(reasons)
            why = "; ".join(reasons) or f"the CI straddles the margin {fmt(margin)}"
            settle = (
                f"about {needed} rows (now {n}) would settle it"
                if needed is not None
                else "the estimate sits on the margin, so more rows alone will not settle it"
            )
            undecided.append(f"{text}: {why}; {settle}")
    verdict = "fail" if failed else "inconclusive" if undecided else "pass"
    head = f"{m.name} on {n} rows ({n_pos} positives), margin {fmt(margin)}"
    parts: list[str] = []
    if failed:
        parts.append(
            f"the model does not beat the baseline(s) by the margin ({head}): " + "; ".join(failed)
        )
    if undecided:
        parts.append("undecided: " + "; ".join(undecided))
    if passed:
        parts.append(
            ("beats every baseline with confidence" if verdict == "pass" else "beaten")
            + (f" ({head})" if verdict == "pass" else "")
            + ": "
            + "; ".join(passed)
        )
    hints = {
        "fail": "the simpler model is as good: ship it instead, or find what the model "
        "misses (features it cannot use, mistuning, a training-data defect) before promoting",
        "inconclusive": "evaluate on more labelled rows (details.baselines[*].rows_to_settle) "
        "or state a smaller margin; do not claim the complexity pays on a coin flip",
        "pass": "",
    }
    low = min(r["ci_low"] for r in rows.values())
    return GateResult(
        name="beats_baseline",
        verdict=verdict,  # type: ignore[arg-type]
        measured=low,
        threshold=margin,
        direction="min",
        message=". ".join(parts),
        hint=hints[verdict],
        details={
            "metric": m.name,
            "rows": n,
            "positives": n_pos,
            "negatives": n_neg,
            "margin": margin,
            "confidence": confidence,
            "seed": seed,
            "baselines": rows,
        },
        rubric=("model-5",),
    )
