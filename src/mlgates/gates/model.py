"""Model-development gates of the ML Test Score: is the model worth its complexity?

``beats_baseline`` (model-5, "a simpler model is not better"): the model against one or
more simpler baselines scored on the same rows, paired with confidence through the same
comparison ``no_worse`` uses (``regression.compare``: DeLong for ``roc_auc``, the paired
bootstrap otherwise), so one implementation decides both gates.

``features_beneficial`` (data-2, "all features are beneficial"): permutation importance of
every model input on a held-out window with a bootstrap interval over the window's rows.

``staleness_impact`` (model-4, "the impact of model staleness is known"): the metric's
decay per week of the model's age, from its scores on successive later windows.

``tuning_gap`` (model-3, "all hyperparameters have been tuned"): a bounded, seeded random
search against the chosen configuration, compared pairwise like ``no_worse``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from mlgates import stats
from mlgates.gates._common import (
    as_frame,
    as_list,
    both_classes,
    check_confidence,
    fmt,
    require_columns,
)
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
    check_confidence(confidence)
    if min_class_rows < 1:
        raise GateInputError(f"min_class_rows must be >= 1, got {min_class_rows}")
    y = binary_labels(y_true)
    n = y.size
    model = as_scores(model_scores, n, "model_scores")
    baselines = _baselines(baseline_scores, n)
    n_pos, n_neg = both_classes(y, m.name)
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


def _stratified_rows(y: np.ndarray, max_rows: int, rng: np.random.Generator) -> np.ndarray:
    """``max_rows`` row indices keeping each class's share (rare positives are not lost)."""
    picked = []
    for cls in (False, True):
        idx = np.flatnonzero(y == cls)
        take = max(1, round(max_rows * idx.size / y.size)) if idx.size else 0
        picked.append(rng.choice(idx, size=min(take, idx.size), replace=False))
    return np.sort(np.concatenate(picked))


def features_beneficial(
    predict: Callable[[pd.DataFrame], ArrayLike],
    frame: pd.DataFrame,
    y_true: ArrayLike,
    features: Sequence[str] | None = None,
    metric: str | Metric = "roc_auc",
    min_importance: float = 0.001,
    n_repeats: int = 3,
    confidence: float = 0.95,
    n_resamples: int = 200,
    max_rows: int | None = None,
    seed: int = 0,
    allow: Mapping[str, str] | None = None,
) -> GateResult:
    """Does every model input add to ``metric`` on a held-out window, with confidence?

    Permutation importance: ``predict(frame)`` scores the window; for each feature its
    column is permuted ``n_repeats`` times (one ``predict`` call per feature on the
    stacked copies) and the importance is ``metric(base) - mean over repeats of
    metric(permuted)`` (oriented so positive = the feature helps, also for lower-is-better
    metrics). Its interval is ``importance +- z * SE`` with the SE from a bootstrap over the
    window's ROWS (``n_resamples`` resamples; the same resampled rows score the unpermuted
    and every permuted copy, so the difference is paired), not over the repeats: the spread
    of the repeats only measures the permutation's noise on this window, while the question
    is whether the feature helps on new rows, which is the sampling of the window. A normal
    interval from the bootstrap SE rather than percentiles: 200 resamples estimate an SE to
    about 5%, but a 2.5% tail quantile poorly, and each resample re-scores every feature's
    permuted copies (the cost of this gate).

    Per feature: fail when its importance is below ``min_importance`` with confidence
    (one-sided normal p-value from the bootstrap SE, Holm-corrected over the features, below
    ``(1 - confidence) / 2``): it adds nothing worth having, or harms; a feature the model
    never reads (permuting it changes no score) fails as unused. Pass when the CI's lower
    bound is above zero. Otherwise warn (inconclusive: more rows would tell). Features in
    ``allow`` (name -> reason, e.g. from ``[tool.mlgates.features_beneficial.allow]``) are
    measured and listed with their reason but not judged. Measured: the number of failing
    features (threshold 0).

    ``max_rows``: a stratified random subsample of the window (seeded) to bound the cost;
    ``details.rows`` says how many rows were used.
    """
    m = get_metric(metric)
    if not callable(predict):
        raise GateInputError(
            f"predict must be a callable frame -> scores, got {type(predict).__name__}"
        )
    data = as_frame(frame, "frame")
    cols = list(data.columns) if features is None else as_list(features)
    if not cols:
        raise GateInputError("features is empty: name the model inputs to judge")
    require_columns(data, cols, "frame")
    if n_repeats < 1:
        raise GateInputError(f"n_repeats must be >= 1, got {n_repeats}")
    if n_resamples < 100:
        raise GateInputError(f"n_resamples must be >= 100, got {n_resamples}")
    check_confidence(confidence)
    if min_importance < 0:
        raise GateInputError(f"min_importance must be >= 0, got {min_importance}")
    allowed = {str(k): str(v) for k, v in (allow or {}).items()}
    unknown = sorted(set(allowed) - set(cols))
    if unknown:
        raise GateInputError(f"allow names feature(s) {unknown} that are not judged: {cols}")
    y = binary_labels(y_true)
    if y.size != len(data):
        raise GateInputError(f"y_true has {y.size} labels but frame has {len(data)} rows")
    rng = np.random.default_rng(seed)
    total_rows = y.size
    if max_rows is not None:
        if max_rows < 100:
            raise GateInputError(f"max_rows must be >= 100 (or None), got {max_rows}")
        if max_rows < y.size:
            rows = _stratified_rows(y, max_rows, rng)
            data, y = data.iloc[rows], y[rows]
    data = data.reset_index(drop=True)
    n = y.size
    n_pos = int(y.sum())
    if n_pos == 0 or n_pos == n:
        raise GateInputError(f"y_true has one class only ({n_pos} positives of {n} rows)")
    base = as_scores(predict(data), n, "predict(frame)")
    sign = 1.0 if m.higher_is_better else -1.0
    base_batch = m.prepare(y, base)
    permuted: dict[str, list[Any]] = {}
    unused: set[str] = set()
    for col in cols:
        orders = [rng.permutation(n) for _ in range(n_repeats)]
        stacked = pd.concat([data] * n_repeats, ignore_index=True)
        values = data[col].to_numpy()
        stacked[col] = np.concatenate([values[o] for o in orders])
        scores = as_scores(predict(stacked), n * n_repeats, f"predict(frame with {col!r} permuted)")
        per_repeat = scores.reshape(n_repeats, n)
        if all(np.array_equal(s, base) for s in per_repeat):
            unused.add(col)
        permuted[col] = [m.prepare(y, s) for s in per_repeat]

    def importance(weights: np.ndarray) -> np.ndarray:
        """(features, k) importances on the resamples in ``weights``."""
        b = base_batch(weights)
        return np.stack(
            [sign * (b - np.mean([p(weights) for p in permuted[c]], axis=0)) for c in cols]
        )

    point = importance(np.ones((1, n)))[:, 0]
    draws = np.concatenate(
        list(map(importance, stats.bootstrap_weights(n, n_resamples, rng))), axis=1
    )
    alpha = (1.0 - confidence) / 2
    z = stats.normal_quantile(1 - alpha)
    rows_out: dict[str, dict[str, Any]] = {}
    judged = [c for c in cols if c not in allowed]
    p_low: dict[str, float] = {}
    for j, col in enumerate(cols):
        d = draws[j][np.isfinite(draws[j])]
        if d.size < 10:
            raise GateInputError(
                f"{m.name} was undefined in most resamples: add rows of both classes"
            )
        se = float(d.std(ddof=1))
        est = float(point[j])
        low, high = est - z * se, est + z * se
        if se > 0:
            p = float(NormalDist().cdf((est - min_importance) / se))
        else:
            p = 0.0 if est < min_importance else 1.0
        rows_out[col] = {
            "importance": est,
            "ci_low": low,
            "ci_high": high,
            "se": se,
            "unused": col in unused,
        }
        if col not in allowed:
            p_low[col] = p
    holm = dict(zip(judged, stats.holm([p_low[c] for c in judged]), strict=True)) if judged else {}
    failed, warned, allowed_txt = [], [], []
    level = f"{round(100 * confidence)}% CI"
    for col in cols:
        r = rows_out[col]
        text = f"{col!r} importance {fmt(r['importance'])} ({level} [{fmt(r['ci_low'])}, {fmt(r['ci_high'])}])"
        if col in allowed:
            r["verdict"] = "allowed"
            r["reason"] = allowed[col]
            allowed_txt.append(f"{text}: allowed ({allowed[col]})")
            continue
        r["pvalue_below_min_holm"] = float(holm[col])
        if col in unused:
            r["verdict"] = "fail"
            failed.append(f"{col!r}: unused (permuting it changes no score)")
        elif holm[col] < alpha:
            r["verdict"] = "fail"
            failed.append(
                f"{text}, below min_importance {fmt(min_importance)} (Holm p={holm[col]:.3g})"
            )
        elif r["ci_low"] > 0:
            r["verdict"] = "pass"
        else:
            r["verdict"] = "warn"
            warned.append(text)
    verdict = "fail" if failed else "warn" if warned else "pass"
    head = (
        f"permutation importance on {m.name}, {n} rows ({n_pos} positives"
        + (f", stratified subsample of {total_rows}" if n < total_rows else "")
        + f"), {n_repeats} repeats, {n_resamples} bootstrap resamples over rows"
    )
    parts = []
    if failed:
        parts.append(f"feature(s) not beneficial ({head}): " + "; ".join(failed))
    if warned:
        parts.append(
            "undecided (CI includes 0 but does not exclude min_importance "
            f"{fmt(min_importance)}): " + "; ".join(warned)
        )
    if verdict == "pass":
        parts.append(f"every judged feature adds to {m.name} with confidence ({head})")
    if allowed_txt:
        parts.append("not judged: " + "; ".join(allowed_txt))
    hints = {
        "fail": "drop the named feature(s) (or fix their pipeline: a constant or broken "
        "column looks the same), or allow-list one with a reason under "
        "[tool.mlgates.features_beneficial.allow]",
        "warn": "evaluate on more labelled rows to settle the undecided feature(s)",
        "pass": "",
    }
    return GateResult(
        name="features_beneficial",
        verdict=verdict,  # type: ignore[arg-type]
        measured=float(len(failed)),
        threshold=0.0,
        unit="features",
        direction="max",
        message=". ".join(parts),
        hint=hints[verdict],
        details={
            "metric": m.name,
            "rows": n,
            "window_rows": total_rows,
            "positives": n_pos,
            "n_repeats": n_repeats,
            "n_resamples": n_resamples,
            "min_importance": min_importance,
            "confidence": confidence,
            "seed": seed,
            "total": len(judged),
            "features": rows_out,
        },
        rubric=("data-2",),
    )


def staleness_impact(
    age_weeks: ArrayLike,
    y_true: ArrayLike,
    scores: ArrayLike,
    retrain_interval_weeks: float = 4.0,
    max_loss: float = 0.02,
    metric: str | Metric = "roc_auc",
    window_weeks: float = 1.0,
    confidence: float = 0.95,
    n_resamples: int = 500,
    seed: int = 0,
    min_windows: int = 3,
) -> GateResult:
    """How fast does the model's ``metric`` decay with its age, and is that decay over
    ``retrain_interval_weeks`` within ``max_loss``?

    One model trained at T scores later rows; ``age_weeks`` is each row's time since T in
    weeks. Rows are grouped into windows of ``window_weeks`` (by age); per window the metric
    and the mean age; the decay per week is minus the least-squares slope of the metric on
    the window age. Its interval is a percentile bootstrap over the rows WITHIN each window
    (every resample redraws every window's rows, keeps the windows, refits the slope): the
    sampling of the labelled rows, which is what makes a late window's metric uncertain.

    Loss over the interval = decay per week * ``retrain_interval_weeks`` (oriented so
    positive = the model gets worse, also for lower-is-better metrics). Fail when the whole
    interval of the loss lies above ``max_loss`` (the model goes stale faster than the
    cadence allows); pass when it lies below; otherwise inconclusive. Fewer than
    ``min_windows`` windows with both classes is inconclusive (a slope needs them).
    ``details.max_retrain_interval_weeks``: the longest cadence whose loss stays within
    ``max_loss`` at the interval's upper end (the retrain cadence the data support).
    Measured: the loss over the interval (point estimate); threshold ``max_loss``.
    """
    m = get_metric(metric)
    if retrain_interval_weeks <= 0:
        raise GateInputError(f"retrain_interval_weeks must be > 0, got {retrain_interval_weeks}")
    if max_loss <= 0:
        raise GateInputError(f"max_loss must be > 0, got {max_loss}")
    if window_weeks <= 0:
        raise GateInputError(f"window_weeks must be > 0, got {window_weeks}")
    check_confidence(confidence)
    if n_resamples < 100:
        raise GateInputError(f"n_resamples must be >= 100, got {n_resamples}")
    if min_windows < 3:
        raise GateInputError(f"min_windows must be >= 3 (a slope and its error), got {min_windows}")
    y = binary_labels(y_true)
    n = y.size
    s = as_scores(scores, n, "scores")
    age = as_scores(age_weeks, n, "age_weeks")
    if (age < 0).any():
        raise GateInputError(
            f"age_weeks has {int((age < 0).sum())} negative value(s): rows scored before the "
            "model was trained are not staleness"
        )
    bins = np.floor(age / window_weeks).astype(np.int64)
    sign = 1.0 if m.higher_is_better else -1.0
    windows: list[dict[str, Any]] = []
    batches = []
    for b in np.unique(bins):
        mask = bins == b
        yw = y[mask]
        pos = int(yw.sum())
        row = {
            "window": f"[{fmt(b * window_weeks)}, {fmt((b + 1) * window_weeks)}) weeks",
            "age_weeks": float(age[mask].mean()),
            "rows": int(mask.sum()),
            "positives": pos,
        }
        if m.kind == "rank" and (pos == 0 or pos == yw.size):
            row["skipped"] = "one class only"
            windows.append(row)
            continue
        row[m.name] = float(m(yw, s[mask]))
        windows.append(row)
        batches.append((float(age[mask].mean()), m.prepare(yw, s[mask]), yw.size))
    used = len(batches)
    head = f"{m.name} over {used} window(s) of {fmt(window_weeks)} week(s), {n} rows"
    base_details: dict[str, Any] = {
        "metric": m.name,
        "windows": windows,
        "retrain_interval_weeks": retrain_interval_weeks,
        "max_loss": max_loss,
        "confidence": confidence,
        "n_resamples": n_resamples,
        "seed": seed,
    }
    if used < min_windows:
        return GateResult(
            name="staleness_impact",
            verdict="inconclusive",
            measured=None,
            threshold=max_loss,
            direction="max",
            message=f"{head}: {used} usable window(s), min_windows is {min_windows}: no slope",
            hint="score the model on more later windows (a longer run of labelled data)",
            details=base_details,
            rubric=("model-4",),
        )
    ages = np.array([a for a, _, _ in batches])
    centred = ages - ages.mean()
    sxx = float((centred**2).sum())
    if sxx <= 0:
        raise GateInputError("every window has the same mean age: no decay can be estimated")
    point = np.array([sign * float(batch(np.ones((1, k)))[0]) for _, batch, k in batches])
    slope = float((centred * (point - point.mean())).sum() / sxx)
    rng = np.random.default_rng(seed)
    draws = np.empty((n_resamples, used))
    for j, (_, batch, k) in enumerate(batches):
        draws[:, j] = sign * np.concatenate(
            list(map(batch, stats.bootstrap_weights(k, n_resamples, rng)))
        )
    draws = draws[np.isfinite(draws).all(axis=1)]
    if draws.shape[0] < 10:
        raise GateInputError(f"{m.name} was undefined in most resamples: add rows of both classes")
    slopes = (centred * (draws - draws.mean(axis=1, keepdims=True))).sum(axis=1) / sxx
    alpha = 1.0 - confidence
    s_low, s_high = (float(v) for v in np.quantile(slopes, [alpha / 2, 1 - alpha / 2]))
    decay, decay_low, decay_high = -slope, -s_high, -s_low
    loss = decay * retrain_interval_weeks
    loss_low, loss_high = decay_low * retrain_interval_weeks, decay_high * retrain_interval_weeks
    max_interval = max_loss / decay_high if decay_high > 0 else math.inf
    verdict = "fail" if loss_low > max_loss else "pass" if loss_high < max_loss else "inconclusive"
    level = f"{round(100 * confidence)}% CI"
    text = (
        f"{head}: decay {fmt(decay)} per week ({level} [{fmt(decay_low)}, {fmt(decay_high)}]), "
        f"loss over the {fmt(retrain_interval_weeks)}-week retrain interval {fmt(loss)} "
        f"([{fmt(loss_low)}, {fmt(loss_high)}]), max_loss {fmt(max_loss)}"
    )
    cadence = (
        f"retrain at least every {fmt(max_interval)} weeks to lose at most {fmt(max_loss)}"
        if math.isfinite(max_interval)
        else "no decay within the interval: the data set no bound on the cadence"
    )
    lead = {
        "fail": "the model goes stale faster than the retrain cadence allows",
        "pass": "staleness over the retrain interval is within the tolerated loss",
        "inconclusive": "undecided: the loss's interval straddles max_loss",
    }[verdict]
    hints = {
        "fail": "retrain more often (details.max_retrain_interval_weeks) or find the inputs "
        "whose relation to the label moves (drift gates per window)",
        "inconclusive": "score more later windows, or more rows per window, to narrow the slope",
        "pass": "",
    }
    return GateResult(
        name="staleness_impact",
        verdict=verdict,  # type: ignore[arg-type]
        measured=loss,
        threshold=max_loss,
        direction="max",
        message=f"{lead}: {text}; {cadence}",
        hint=hints[verdict],
        details={
            **base_details,
            "decay_per_week": decay,
            "decay_ci_low": decay_low,
            "decay_ci_high": decay_high,
            "loss": loss,
            "loss_ci_low": loss_low,
            "loss_ci_high": loss_high,
            "max_retrain_interval_weeks": max_interval,
        },
        rubric=("model-4",),
    )


def _draw(space: Mapping[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    """One configuration from ``space``: a list is a choice, ``(low, high)`` uniform (integers
    when both ends are), ``("log", low, high)`` log-uniform."""
    out: dict[str, Any] = {}
    for name, spec in space.items():
        if isinstance(spec, list):
            out[name] = spec[int(rng.integers(len(spec)))]
        elif isinstance(spec, tuple) and len(spec) == 3 and spec[0] == "log":
            out[name] = float(np.exp(rng.uniform(np.log(spec[1]), np.log(spec[2]))))
        elif isinstance(spec, tuple) and len(spec) == 2:
            low, high = spec
            if isinstance(low, int) and isinstance(high, int):
                out[name] = int(rng.integers(low, high + 1))
            else:
                out[name] = float(rng.uniform(low, high))
        else:
            raise GateInputError(
                f"space[{name!r}] = {spec!r}: use a list (choice), (low, high) or "
                "('log', low, high)"
            )
    return out


def tuning_gap(
    train_and_score: Callable[[Mapping[str, Any]], tuple[ArrayLike, ArrayLike]],
    chosen: Mapping[str, Any],
    space: Mapping[str, Any],
    budget: int = 6,
    metric: str | Metric = "roc_auc",
    margin: float = 0.005,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
) -> GateResult:
    """Is the chosen configuration as good as the best a bounded random search finds?

    ``train_and_score(params)`` trains with ``params`` (merged over ``chosen`` by the
    caller's convention: the search passes ``{**chosen, **drawn}``) and returns
    ``(y_true, scores)`` on held-out rows, the SAME rows for every call (so comparisons are
    paired). The search draws ``budget`` configurations from ``space`` (seeded) and compares
    each with the chosen one exactly as ``no_worse`` compares models (DeLong for
    ``roc_auc``, else the paired bootstrap), difference = found - chosen.

    Fail when a found configuration beats the chosen one by more than ``margin`` with
    confidence (one-sided p, Holm-corrected over the ``budget`` configurations, below
    ``(1 - confidence) / 2``), naming it. Pass when every found configuration's CI upper
    bound is below ``margin`` (the chosen one is within the margin of the best found, with
    confidence). Otherwise inconclusive. Measured: the largest CI upper bound of found -
    chosen; threshold ``margin``. The search is only as wide as ``budget`` and ``space``:
    a pass says no configuration it tried is better, not that none exists.
    """
    m = get_metric(metric)
    if not callable(train_and_score):
        raise GateInputError("train_and_score must be a callable params -> (y_true, scores)")
    if budget < 1:
        raise GateInputError(f"budget must be >= 1, got {budget}")
    if margin < 0:
        raise GateInputError(f"margin must be >= 0, got {margin}")
    check_confidence(confidence)
    if not isinstance(space, Mapping) or not space:
        raise GateInputError("space must be a non-empty mapping name -> list / (low, high)")
    rng = np.random.default_rng(seed)
    drawn = [_draw(space, rng) for _ in range(budget)]
    y_raw, base_raw = train_and_score(dict(chosen))
    y = binary_labels(y_raw)
    n = y.size
    base = as_scores(base_raw, n, "train_and_score(chosen) scores")
    n_pos = int(y.sum())
    if n_pos == 0 or n_pos == n:
        raise GateInputError(f"train_and_score returned one class only ({n_pos} of {n})")
    comps: list[tuple[dict[str, Any], Comparison]] = []
    for i, params in enumerate(drawn):
        y_i, s_i = train_and_score({**chosen, **params})
        if not np.array_equal(binary_labels(y_i), y):
            raise GateInputError(
                "train_and_score must score the same held-out rows for every configuration "
                f"(labels differ for {params})"
            )
        cand = as_scores(s_i, n, f"train_and_score({params}) scores")
        comps.append(
            (params, compare(y, base, cand, m, -margin, confidence, n_resamples, seed + 1 + i))
        )
    alpha = (1.0 - confidence) / 2
    # pvalue_not_worse of compare(-margin): small when found - chosen is above the margin
    p_better = stats.holm([c.pvalue_not_worse for _, c in comps])
    rows: list[dict[str, Any]] = []
    better: list[str] = []
    for (params, c), p in zip(comps, p_better, strict=True):
        verdict = "better" if p < alpha else "within" if c.high < margin else "undecided"
        rows.append(
            {
                "params": params,
                "found": c.candidate,
                "chosen": c.champion,
                "difference": c.estimate,
                "ci_low": c.low,
                "ci_high": c.high,
                "pvalue_better_holm": float(p),
                "verdict": verdict,
            }
        )
        if verdict == "better":
            better.append(
                f"{params}: {m.name} {fmt(c.candidate)} vs chosen {fmt(c.champion)}, difference "
                f"{fmt(c.estimate)} (CI [{fmt(c.low)}, {fmt(c.high)}], Holm p={p:.3g})"
            )
    best = max(rows, key=lambda r: float(r["difference"]))
    worst_high = max(float(r["ci_high"]) for r in rows)
    verdict = "fail" if better else "pass" if worst_high < margin else "inconclusive"
    head = (
        f"random search of {budget} configuration(s) (seed {seed}) against the chosen one on "
        f"{n} held-out rows ({n_pos} positives), {m.name}, margin {fmt(margin)}; best found "
        f"{best['params']} difference {fmt(best['difference'])} (CI [{fmt(best['ci_low'])}, "
        f"{fmt(best['ci_high'])}])"
    )
    lead = {
        "fail": "a found configuration beats the chosen one with confidence: " + "; ".join(better),
        "pass": "the chosen configuration is within the margin of every configuration found",
        "inconclusive": "undecided: a found configuration may beat the chosen one by more "
        "than the margin (CI upper bound above it) but not with confidence",
    }[verdict]
    hints = {
        "fail": "retune: adopt the named configuration (or search around it) and retrain",
        "inconclusive": "score on more held-out rows or raise the budget around the best "
        "found configuration",
        "pass": "",
    }
    return GateResult(
        name="tuning_gap",
        verdict=verdict,  # type: ignore[arg-type]
        measured=worst_high,
        threshold=margin,
        direction="max",
        message=f"{lead}. {head}",
        hint=hints[verdict],
        details={
            "metric": m.name,
            "rows": n,
            "positives": n_pos,
            "budget": budget,
            "seed": seed,
            "margin": margin,
            "confidence": confidence,
            "chosen": dict(chosen),
            "configurations": rows,
        },
        rubric=("model-3",),
    )
