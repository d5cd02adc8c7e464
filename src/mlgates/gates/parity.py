"""Parity gates: offline vs online features (training/serving skew), native vs exported model."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from mlgates.gates._common import (
    MAX_EXAMPLES,
    as_1d,
    as_frame,
    as_list,
    fmt,
    jsonable_value,
    key_columns,
    pct,
    require_columns,
)
from mlgates.result import GateInputError, GateResult

_OFF, _ON = "__offline", "__online"


def _tolerance(
    name: str, default: tuple[float, float], tolerances: Mapping[str, Any]
) -> tuple[float, float]:
    if name not in tolerances:
        return default
    t = tolerances[name]
    if isinstance(t, (int, float)):
        return float(t), default[1]
    if isinstance(t, Mapping):
        return float(t.get("atol", default[0])), float(t.get("rtol", default[1]))
    if isinstance(t, (tuple, list)) and len(t) == 2:
        return float(t[0]), float(t[1])
    raise GateInputError(
        f"tolerance for {name!r} must be atol, (atol, rtol) or {{'atol':..,'rtol':..}}, got {t!r}"
    )


def _duplicate_keys(frame: pd.DataFrame, keys: list[str], what: str) -> None:
    dup = frame.duplicated(subset=keys, keep=False)
    if dup.any():
        ex = frame.loc[dup, keys].head(MAX_EXAMPLES).to_dict("records")
        raise GateInputError(
            f"{what} has {int(dup.sum())} rows with a duplicated key {keys}, e.g. {ex}: "
            "parity needs one row per key (deduplicate or add a key column)"
        )


def _key_records(frame: pd.DataFrame, mask: np.ndarray, keys: list[str]) -> list[dict[str, Any]]:
    sub = frame.loc[mask, keys].head(MAX_EXAMPLES)
    return [{k: jsonable_value(v) for k, v in r.items()} for r in sub.to_dict("records")]


def feature_parity(
    offline: pd.DataFrame,
    online: pd.DataFrame,
    keys: str | Iterable[str],
    atol: float = 1e-9,
    rtol: float = 1e-9,
    tolerances: Mapping[str, Any] | None = None,
    features: Iterable[str] | None = None,
    max_mismatch_rate: float = 0.0,
) -> GateResult:
    """Keyed comparison of the same features computed offline (training) and online (serving).

    Numeric features match when ``|online - offline| <= atol + rtol * |offline|`` (per
    feature overrides in ``tolerances``: ``{"f": atol}``, ``{"f": (atol, rtol)}`` or
    ``{"f": {"atol": .., "rtol": ..}}``); NaN matches NaN, an infinity only the same
    infinity. Other columns (strings,
    categories, booleans, timestamps) must be equal. Keys missing on either side fail.
    Measured is the worst feature's mismatch rate over matched keys.
    """
    off, on = as_frame(offline, "offline"), as_frame(online, "online")
    key_cols = key_columns(keys, "keys", "column(s) that identify a row", offline=off, online=on)
    names = as_list(features)
    only_off: list[str] = []
    only_on: list[str] = []
    if names:
        require_columns(off, names, "offline")
        require_columns(on, names, "online")
    else:
        names = [c for c in off.columns if c in on.columns and c not in key_cols]
        only_off = [c for c in off.columns if c not in on.columns]
        only_on = [c for c in on.columns if c not in off.columns]
        if not names:
            raise GateInputError("offline and online share no feature columns besides the keys")
    tol = dict(tolerances or {})
    unknown = [k for k in tol if k not in names]
    if unknown:
        raise GateInputError(f"tolerances name unknown feature(s) {unknown}; features: {names}")
    _duplicate_keys(off, key_cols, "offline")
    _duplicate_keys(on, key_cols, "online")

    merged = off[key_cols + names].merge(
        on[key_cols + names], on=key_cols, how="outer", suffixes=(_OFF, _ON), indicator=True
    )
    side = merged["_merge"].to_numpy()
    missing_online = side == "left_only"
    missing_offline = side == "right_only"
    matched_mask = side == "both"
    m = merged.loc[matched_mask].reset_index(drop=True)
    n_matched = int(matched_mask.sum())

    rows: dict[str, dict[str, Any]] = {}
    for f in names:
        a, b = m[f + _OFF], m[f + _ON]
        numeric = (
            pd.api.types.is_numeric_dtype(a.dtype)
            and pd.api.types.is_numeric_dtype(b.dtype)
            and not pd.api.types.is_bool_dtype(a.dtype)
            and not pd.api.types.is_bool_dtype(b.dtype)
        )
        row: dict[str, Any] = {"kind": "numeric" if numeric else "exact"}
        if numeric:
            fa, fb = _tolerance(f, (atol, rtol), tol)
            av = a.to_numpy(dtype=np.float64, na_value=np.nan)
            bv = b.to_numpy(dtype=np.float64, na_value=np.nan)
            with np.errstate(invalid="ignore"):
                diff = np.abs(bv - av)
                # an infinite value matches only itself: rtol * |inf| would accept anything
                both_finite = np.isfinite(av) & np.isfinite(bv)
                close = (av == bv) | (both_finite & (diff <= fa + fb * np.abs(av)))
            equal = close | (np.isnan(av) & np.isnan(bv))
            finite = np.isfinite(diff)
            row.update(
                atol=fa,
                rtol=fb,
                max_abs_diff=float(diff[finite].max()) if finite.any() else 0.0,
            )
        else:
            ao, bo = a.astype(object), b.astype(object)
            both_na = (ao.isna() & bo.isna()).to_numpy()
            equal = both_na | (ao == bo).fillna(False).to_numpy(dtype=bool)
            diff = None
        bad = ~equal
        n_bad = int(bad.sum())
        examples = []
        for i in np.flatnonzero(bad)[:MAX_EXAMPLES]:
            ex = {k: jsonable_value(m.at[i, k]) for k in key_cols}
            ex.update(offline=jsonable_value(a.iat[i]), online=jsonable_value(b.iat[i]))
            if diff is not None:
                ex["abs_diff"] = jsonable_value(diff[i])
            examples.append(ex)
        row.update(
            mismatches=n_bad,
            mismatch_rate=n_bad / n_matched if n_matched else 0.0,
            examples=examples,
        )
        rows[f] = row

    ranked = sorted(names, key=lambda f: -rows[f]["mismatch_rate"])
    measured = rows[ranked[0]]["mismatch_rate"] if n_matched else 1.0
    bad_features = [f for f in ranked if rows[f]["mismatch_rate"] > max_mismatch_rate]
    n_mo, n_mf = int(missing_online.sum()), int(missing_offline.sum())
    problems: list[str] = []
    if n_matched == 0:
        problems.append("no key matched between offline and online")
    if bad_features:

        def describe(f: str) -> str:
            r = rows[f]
            ex = r["examples"][0]
            keytxt = ", ".join(f"{k}={ex[k]}" for k in key_cols)
            extra = f", max |diff| {fmt(r['max_abs_diff'])}" if r["kind"] == "numeric" else ""
            return (
                f"{f} {pct(r['mismatch_rate'])} ({r['mismatches']}/{n_matched}{extra}; e.g. "
                f"{keytxt}: offline {ex['offline']!r} vs online {ex['online']!r})"
            )

        problems.append(
            f"{len(bad_features)} of {len(names)} feature(s) differ between offline and online: "
            + "; ".join(describe(f) for f in bad_features[:MAX_EXAMPLES])
        )
    if n_mo:
        problems.append(
            f"{n_mo} key(s) missing online, e.g. {_key_records(merged, missing_online, key_cols)}"
        )
    if n_mf:
        problems.append(
            f"{n_mf} key(s) missing offline, e.g. {_key_records(merged, missing_offline, key_cols)}"
        )
    message = "; ".join(problems) or (
        f"{len(names)} feature(s) agree on all {n_matched} matched key(s)"
    )
    if only_off or only_on:
        message += f" (not compared: offline-only {only_off}, online-only {only_on})"
    return GateResult(
        name="feature_parity",
        verdict="fail" if problems else "pass",
        measured=float(measured),
        threshold=float(max_mismatch_rate),
        direction="max",
        message=message,
        hint=(
            "compute each feature from one definition for both paths; for the named features "
            "compare the example keys' raw events, window boundaries (inclusive/exclusive), "
            "time zones and default values for unknown entities"
        ),
        details={
            "keys": key_cols,
            "matched": n_matched,
            "missing_online": n_mo,
            "missing_offline": n_mf,
            "missing_online_examples": _key_records(merged, missing_online, key_cols),
            "missing_offline_examples": _key_records(merged, missing_offline, key_cols),
            "features": rows,
            "offline_only_columns": only_off,
            "online_only_columns": only_on,
        },
        rubric=("monitor-3",),
    )


def model_parity(
    reference_scores: ArrayLike,
    candidate_scores: ArrayLike,
    atol: float = 1e-5,
    rtol: float = 0.0,
) -> GateResult:
    """Same rows scored by two builds of one model (e.g. native vs ONNX) must agree.

    A row mismatches when ``|cand - ref| > atol + rtol * |ref|`` or exactly one side is
    NaN. Measured is the largest absolute difference.
    """
    ref = as_1d(reference_scores, "reference_scores")
    cand = as_1d(candidate_scores, "candidate_scores")
    if ref.size != cand.size:
        raise GateInputError(
            f"reference_scores has {ref.size} rows but candidate_scores has {cand.size}: "
            "score the same rows with both models"
        )
    if atol < 0 or rtol < 0:
        raise GateInputError("atol and rtol must be >= 0")
    nan_ref, nan_cand = np.isnan(ref), np.isnan(cand)
    nan_mismatch = nan_ref ^ nan_cand
    with np.errstate(invalid="ignore"):
        diff = np.abs(cand - ref)
    diff_ok = np.where(np.isnan(diff), 0.0, diff)
    over = (diff_ok > atol + rtol * np.abs(np.nan_to_num(ref))) | nan_mismatch
    order = np.argsort(-np.where(nan_mismatch, np.inf, diff_ok), kind="stable")[:MAX_EXAMPLES]
    worst = [
        {
            "row": int(i),
            "reference": jsonable_value(ref[i]),
            "candidate": jsonable_value(cand[i]),
            "abs_diff": None if nan_mismatch[i] else float(diff_ok[i]),
        }
        for i in order
        if over[i]
    ]
    max_diff = float(diff_ok.max())
    n_over = int(over.sum())
    if n_over:
        w = worst[0]
        message = (
            f"{n_over} of {ref.size} row(s) ({pct(n_over / ref.size)}) differ by more than "
            f"{fmt(atol)}: max |diff| {fmt(max_diff)}; worst row {w['row']} "
            f"(reference {w['reference']}, candidate {w['candidate']})"
            + (
                f"; {int(nan_mismatch.sum())} row(s) NaN on one side only"
                if nan_mismatch.any()
                else ""
            )
        )
    else:
        message = f"all {ref.size} rows agree within {fmt(atol)} (max |diff| {fmt(max_diff)})"
    return GateResult(
        name="model_parity",
        verdict="fail" if n_over else "pass",
        measured=float("inf") if nan_mismatch.any() else max_diff,
        threshold=atol,
        direction="max",
        message=message,
        hint=(
            "inspect the worst rows' inputs: check feature order and dtypes (float32 vs "
            "float64) passed to the exported model, missing-value handling and the converter's "
            "opset; re-export and compare again"
        ),
        details={
            "rows": int(ref.size),
            "rows_over_tolerance": n_over,
            "mean_abs_diff": float(diff_ok.mean()),
            "nan_mismatches": int(nan_mismatch.sum()),
            "worst_rows": worst,
            "atol": atol,
            "rtol": rtol,
        },
        # no item: infra-3 is the full pipeline integration-tested and monitor-3 the
        # features of training and serving; this compares two builds' scores only
        rubric=(),
    )
