"""``explanation_consistency`` (ML Test Score infra-5): per-feature contributions that add
up to the score the model served.

An explanation of one prediction (``mlref explain``, SHAP values, XGBoost's
``pred_contribs``) is additive on the margin: the contributions plus the bias reproduce the
model's raw score. When they do not, the explanation describes another model, other feature
values (a contribution computed on the wrong row or a stale feature), or another output
(a probability taken for a margin). The gate recomputes ``sum(contributions) + bias`` per
row and compares it with the served score on the margin (``link="logit"``: the served
probability's logit), failing when any row is off by more than ``tolerance``.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from mlgates import stats
from mlgates.gates._common import MAX_EXAMPLES, as_1d, fmt
from mlgates.result import GateInputError, GateResult


def _contributions(values: Any) -> tuple[np.ndarray, list[str], pd.Index | None]:
    if isinstance(values, pd.DataFrame):
        names = [str(c) for c in values.columns]
        try:
            matrix = values.to_numpy(np.float64)
        except (TypeError, ValueError) as exc:
            raise GateInputError(f"contributions must be numeric: {exc}") from exc
        index: pd.Index | None = values.index
    else:
        try:
            matrix = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise GateInputError(f"contributions must be numeric: {exc}") from exc
        names = [f"f{j}" for j in range(matrix.shape[1])] if matrix.ndim == 2 else []
        index = None
    if matrix.ndim != 2 or matrix.shape[0] == 0 or matrix.shape[1] == 0:
        raise GateInputError(
            f"contributions must be a non-empty 2-d array (rows x features), got shape "
            f"{matrix.shape}"
        )
    return matrix, names, index


def explanation_consistency(
    contributions: pd.DataFrame | ArrayLike,
    served_scores: ArrayLike,
    bias: float | ArrayLike | None = None,
    link: Literal["identity", "logit"] = "identity",
    tolerance: float = 1e-5,
) -> GateResult:
    """Contributions + bias reproduce the served score within ``tolerance`` on the margin.

    ``contributions``: one row per request, one column per feature (a DataFrame names
    them). ``bias``: the expected value / base margin, one number or one per row; None
    means the last column of ``contributions`` is the bias (XGBoost's ``pred_contribs``
    layout). ``served_scores``: what the server returned for those requests, the margin
    (``link="identity"``, preferred: the ONNX model's raw output) or the probability
    (``link="logit"``; in float32 a probability near 0 or 1 keeps few digits of its margin,
    so widen ``tolerance`` there). Measured: the largest absolute margin error; fails above
    ``tolerance``, naming the worst rows and their largest contributions.
    """
    matrix, names, index = _contributions(contributions)
    served = as_1d(served_scores, "served_scores")
    tol = stats.as_real(tolerance, "tolerance")
    if not math.isfinite(tol) or tol < 0:
        raise GateInputError(f"tolerance must be a finite number >= 0, got {tolerance!r}")
    if link not in ("identity", "logit"):
        raise GateInputError(f"link must be 'identity' or 'logit', got {link!r}")
    n = matrix.shape[0]
    if served.size != n:
        raise GateInputError(
            f"served_scores has {served.size} rows and contributions {n}: one score per row"
        )
    if bias is None:
        if matrix.shape[1] < 2:
            raise GateInputError(
                "bias is None, so the last column of contributions is read as the bias, but "
                "contributions has a single column: pass bias"
            )
        base = matrix[:, -1]
        matrix, names = matrix[:, :-1], names[:-1]
    else:
        try:
            given = np.asarray(bias, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise GateInputError(f"bias must be numeric: {exc}") from exc
        if given.ndim > 1 or given.size not in (1, n):
            raise GateInputError(f"bias must be one number or one per row ({n})")
        base = np.broadcast_to(given, (n,)).astype(np.float64)
    if link == "logit":
        if ((served < 0) | (served > 1)).any():
            raise GateInputError(
                "link='logit' reads served_scores as probabilities, but some lie outside "
                "[0, 1]: pass link='identity' for margins"
            )
        with np.errstate(divide="ignore"):
            served_margin = np.log(served) - np.log1p(-served)
    else:
        served_margin = served
    reconstructed = matrix.sum(axis=1) + base
    with np.errstate(invalid="ignore"):
        error = np.abs(reconstructed - served_margin)
    error = np.where(np.isnan(error), np.inf, error)
    bad = error > tol
    worst_order = np.argsort(-error, kind="stable")[:MAX_EXAMPLES]
    labels = index if index is not None else pd.RangeIndex(n)

    def row(i: int) -> dict[str, Any]:
        top = np.argsort(-np.abs(matrix[i]), kind="stable")[:3]
        return {
            "row": labels[i].item() if hasattr(labels[i], "item") else labels[i],
            "served_margin": float(served_margin[i]),
            "reconstructed": float(reconstructed[i]),
            "error": float(error[i]),
            "top_contributions": {names[j]: float(matrix[i, j]) for j in top},
        }

    worst = [row(int(i)) for i in worst_order]
    max_error = float(error.max())
    details: dict[str, Any] = {
        "rows": n,
        "features": len(names),
        "rows_over_tolerance": int(bad.sum()),
        "max_error": max_error,
        "mean_error": float(np.mean(error[np.isfinite(error)]))
        if np.isfinite(error).any()
        else None,
        "link": link,
        "worst_rows": worst,
    }

    def result(verdict: str, message: str, hint: str) -> GateResult:
        return GateResult(
            name="explanation_consistency",
            verdict=verdict,  # type: ignore[arg-type]
            measured=max_error if math.isfinite(max_error) else None,
            threshold=tol,
            direction="max",
            message=message,
            hint=hint,
            details=details,
            rubric=("infra-5",),
        )

    if bad.any():
        shown = "; ".join(
            f"row {w['row']}: contributions + bias {fmt(w['reconstructed'])} vs served "
            f"{fmt(w['served_margin'])} (off by {fmt(w['error'])})"
            for w in worst
            if w["error"] > tol
        )
        return result(
            "fail",
            f"{int(bad.sum())} of {n} explanations do not add up to the served score (margin "
            f"error up to {fmt(max_error)}, tolerance {fmt(tol)}): {shown}",
            "explain with the served model and the served feature values of the same request "
            "(not recomputed or current ones); compare margins, not probabilities",
        )
    return result(
        "pass",
        f"all {n} explanations add up to the served score within {fmt(tol)} (largest "
        f"margin error {fmt(max_error)})",
        "",
    )


__all__ = ["explanation_consistency"]
