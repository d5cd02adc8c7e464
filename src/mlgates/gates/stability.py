"""``numeric_stability`` (ML Test Score monitor-5): NaNs, infinities and out-of-range
values in the features a model is served and the scores it returns.

A model fed a NaN (a division by zero in a feature, an online-store miss turned into NaN)
still returns *something*; a score of NaN, inf or outside its range acts silently on a
request. Verdicts, most severe first:

=========================================================  =================================
finding                                                    verdict
=========================================================  =================================
any NaN / inf score, or a score outside ``score_range``    fail
any inf feature value; NaN in a feature not listed in      fail (per feature: count, rows)
``allow_missing``; a value outside ``feature_ranges``
all scores equal (at least ``min_rows`` of them)           fail (a model that says one thing
                                                           to every request decides nothing)
share of scores within ``saturation_eps`` of an end of     warn
``score_range`` above ``max_saturated_share``
share of requests served default features (``defaulted``)  warn
above ``max_default_share``
none of these                                              pass
=========================================================  =================================
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from mlgates import stats
from mlgates.gates._common import MAX_EXAMPLES, as_1d, as_frame, as_list, fmt, pct
from mlgates.result import GateInputError, GateResult


def _pair(value: Any, what: str) -> tuple[float, float]:
    try:
        lo_raw, hi_raw = value
    except (TypeError, ValueError):
        raise GateInputError(f"{what} must be a pair (low, high), got {value!r}") from None
    lo, hi = stats.as_real(lo_raw, f"{what} low"), stats.as_real(hi_raw, f"{what} high")
    if math.isnan(lo) or math.isnan(hi) or lo > hi:
        raise GateInputError(f"{what} must be (low, high) with low <= high, got {value!r}")
    return lo, hi


def _share(value: Any, what: str) -> float:
    v = stats.as_real(value, what)
    if not 0.0 <= v <= 1.0:
        raise GateInputError(f"{what} must be a share in [0, 1] (0.01, not 1%), got {value!r}")
    return v


def _rows(mask: np.ndarray, index: pd.Index | None = None) -> list[Any]:
    where = np.flatnonzero(mask)[:MAX_EXAMPLES]
    return where.tolist() if index is None else index[where].tolist()


def _feature_problems(
    frame: pd.DataFrame, ranges: Mapping[str, tuple[float, float]], allow_missing: list[str]
) -> tuple[dict[str, dict[str, Any]], np.ndarray]:
    """Per numeric feature: NaN (unless allowed), inf and out-of-range counts and rows;
    and the rows with any of them."""
    problems: dict[str, dict[str, Any]] = {}
    any_bad = np.zeros(frame.shape[0], bool)
    for col in frame.columns:
        series = frame[col]
        if not pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(
            series.dtype
        ):
            continue
        v = series.to_numpy(np.float64, na_value=np.nan)
        nan = np.isnan(v) if col not in allow_missing else np.zeros(v.size, bool)
        inf = np.isinf(v)
        out = np.zeros(v.size, bool)
        if col in ranges:
            lo, hi = ranges[col]
            with np.errstate(invalid="ignore"):
                out = np.isfinite(v) & ((v < lo) | (v > hi))
        bad = nan | inf | out
        any_bad |= bad
        if bad.any():
            problems[str(col)] = {
                "nan": int(nan.sum()),
                "inf": int(inf.sum()),
                "out_of_range": int(out.sum()),
                "range": list(ranges[col]) if col in ranges else None,
                "rows": _rows(bad, frame.index),
            }
    return problems, any_bad


def numeric_stability(
    scores: ArrayLike,
    features: pd.DataFrame | Mapping[str, ArrayLike] | None = None,
    feature_ranges: Mapping[str, tuple[float, float]] | None = None,
    allow_missing: list[str] | None = None,
    score_range: tuple[float, float] = (0.0, 1.0),
    defaulted: ArrayLike | None = None,
    saturation_eps: float = 1e-6,
    max_saturated_share: float = 0.05,
    max_default_share: float = 0.05,
    min_rows: int = 100,
) -> GateResult:
    """NaN/inf/out-of-range scores and features, constant or saturated scores, defaults.

    ``scores``: one score per request (the prediction log's, or the model's on a training
    frame), expected inside ``score_range`` (default [0, 1], probabilities). ``features``:
    the frame the model was fed (numeric columns are checked; ``feature_ranges`` maps a
    column to its valid (low, high); ``allow_missing`` lists columns where NaN is the
    model's missing-value marker). ``defaulted``: per request, True when it was served
    default feature values (an online-store miss). Measured: rows with a NaN/inf/
    out-of-range score or feature (threshold 0); see the module docstring for the verdicts.
    """
    s = as_1d(scores, "scores")
    lo, hi = _pair(score_range, "score_range")
    ranges = {str(k): _pair(v, f"feature_ranges[{k!r}]") for k, v in (feature_ranges or {}).items()}
    allowed = as_list(allow_missing)
    eps = stats.as_real(saturation_eps, "saturation_eps")
    if not eps >= 0:
        raise GateInputError(f"saturation_eps must be >= 0, got {saturation_eps!r}")
    max_sat = _share(max_saturated_share, "max_saturated_share")
    max_def = _share(max_default_share, "max_default_share")
    if not stats.is_integer(min_rows) or int(min_rows) < 2:
        raise GateInputError(f"min_rows must be an integer >= 2, got {min_rows!r}")
    n = int(s.size)

    frame: pd.DataFrame | None = None
    feature_bad = np.zeros(n, bool)
    problems: dict[str, dict[str, Any]] = {}
    if features is not None:
        frame = as_frame(features, "features")
        if frame.shape[0] != n:
            raise GateInputError(
                f"features has {frame.shape[0]} rows and scores {n}: pass one row per score"
            )
        unknown = [c for c in [*ranges, *allowed] if c not in frame.columns]
        if unknown:
            raise GateInputError(
                f"feature_ranges/allow_missing name column(s) {unknown} not in features"
            )
        problems, feature_bad = _feature_problems(frame, ranges, allowed)
    elif ranges or allowed:
        raise GateInputError("feature_ranges/allow_missing need features")

    nonfinite = ~np.isfinite(s)
    with np.errstate(invalid="ignore"):
        outside = np.isfinite(s) & ((s < lo) | (s > hi))
    finite = s[np.isfinite(s)]
    saturated = np.isfinite(s) & ((s <= lo + eps) | (s >= hi - eps))
    sat_share = float(saturated.mean())
    constant = finite.size >= int(min_rows) and bool(np.all(finite == finite[0]))
    def_share: float | None = None
    if defaulted is not None:
        d = np.asarray(defaulted)
        if d.shape != (n,) or not np.isin(d, (0, 1, True, False)).all():
            raise GateInputError(
                f"defaulted must hold one True/False per score ({n}), got shape {d.shape}"
            )
        def_share = float(d.astype(bool).mean())
    bad_rows = nonfinite | outside | feature_bad

    details: dict[str, Any] = {
        "rows": n,
        "bad_rows": int(bad_rows.sum()),
        "scores_nan": int(np.isnan(s).sum()),
        "scores_inf": int(np.isinf(s).sum()),
        "scores_out_of_range": int(outside.sum()),
        "score_range": [lo, hi],
        "score_rows": _rows(nonfinite | outside),
        "features": problems,
        "features_checked": (
            0
            if frame is None
            else int(sum(pd.api.types.is_numeric_dtype(frame[c].dtype) for c in frame.columns))
        ),
        "saturated_share": sat_share,
        "constant_scores": constant,
        "default_share": def_share,
    }
    if finite.size:
        details.update(score_min=float(finite.min()), score_max=float(finite.max()))

    def result(verdict: str, message: str, hint: str) -> GateResult:
        return GateResult(
            name="numeric_stability",
            verdict=verdict,  # type: ignore[arg-type]
            measured=float(bad_rows.sum()),
            threshold=0.0,
            direction="max",
            unit=" rows",
            message=message,
            hint=hint,
            details=details,
            rubric=("monitor-5",),
        )

    failures: list[str] = []
    if nonfinite.any():
        failures.append(f"{int(nonfinite.sum())} NaN/inf score(s) (rows {_rows(nonfinite)})")
    if outside.any():
        failures.append(
            f"{int(outside.sum())} score(s) outside [{fmt(lo)}, {fmt(hi)}] (rows {_rows(outside)})"
        )
    for col, p in problems.items():
        kinds = [f"{p[k]} {k.replace('_', ' ')}" for k in ("nan", "inf", "out_of_range") if p[k]]
        failures.append(f"feature {col!r}: {', '.join(kinds)} (rows {p['rows']})")
    if constant:
        failures.append(f"all {finite.size} scores equal {fmt(float(finite[0]))}")
    if failures:
        return result(
            "fail",
            "numerically unstable: " + "; ".join(failures),
            "trace the named rows back through the feature path (a division by zero, a "
            "log of 0, an online-store miss filled with NaN) and the model export; a model "
            "must never act on a NaN score",
        )
    warnings: list[str] = []
    if sat_share > max_sat:
        warnings.append(
            f"{pct(sat_share)} of scores saturated at the ends of [{fmt(lo)}, {fmt(hi)}] "
            f"(more than {pct(max_sat)})"
        )
    if def_share is not None and def_share > max_def:
        warnings.append(
            f"{pct(def_share)} of requests served default features (more than {pct(max_def)})"
        )
    if warnings:
        return result(
            "warn",
            "; ".join(warnings),
            "saturated scores hide the ranking (check feature scales and the margin); "
            "defaults mean the online store misses entities (check materialization)",
        )
    checked = f"{n} scores" + (
        f" and {details['features_checked']} numeric features" if frame is not None else ""
    )
    return result(
        "pass",
        f"{checked} finite and in range; {pct(sat_share)} saturated"
        + (f", {pct(def_share)} defaulted" if def_share is not None else ""),
        "",
    )


__all__ = ["numeric_stability"]
