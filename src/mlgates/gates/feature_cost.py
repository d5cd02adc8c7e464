"""feature_cost: each feature's serving cost against its budget and its importance.

Costs are what the project measured (online compute time per request and storage per
entity, per feature); importance is any non-negative per-feature figure (gain,
permutation importance). The gate compares shares: a feature that takes 40% of the serving
time but carries 2% of the importance costs 20 times its share.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from mlgates.gates._common import fmt, pct
from mlgates.result import GateInputError, GateResult, Verdict

COMPUTE = "compute_ms"
STORAGE = "storage_bytes"


def _number(value: Any, what: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError) as exc:
        raise GateInputError(f"{what} must be a number, got {value!r}") from exc
    if not math.isfinite(out) or out < 0:
        raise GateInputError(f"{what} must be finite and >= 0, got {value!r}")
    return out


def feature_cost(
    costs: Mapping[str, Mapping[str, float]],
    importance: Mapping[str, float],
    *,
    max_compute_ms: float = 1.0,
    max_storage_bytes: float = 4096.0,
    max_cost_ratio: float = 5.0,
    min_material_ms: float = 0.05,
    min_material_bytes: float = 512.0,
) -> GateResult:
    """Each feature within its serving budget, and not costing more than ``max_cost_ratio``
    times its share of importance.

    ``costs`` maps each feature to ``{"compute_ms": ..., "storage_bytes": ...}``: online
    compute time per request (ms) and storage per entity (bytes), as measured (take the
    least of repeated timings: contention only adds). ``importance`` maps each feature to a
    non-negative importance. A feature fails when its compute exceeds ``max_compute_ms``,
    its storage ``max_storage_bytes``, or when its share of the total cost (the larger of
    its compute and storage shares) exceeds ``max_cost_ratio`` x its share of the total
    importance (a feature with no importance and any cost breaks this). A ratio breach by
    a feature whose cost is immaterial (compute at most ``min_material_ms`` and storage at
    most ``min_material_bytes``) warns instead of failing: the disproportion is reported,
    but a cost that small is not "too much". Measured: the largest cost-to-importance
    ratio; details list every feature's figures.
    """
    if not isinstance(costs, Mapping) or not costs:
        raise GateInputError(
            "costs must be a non-empty mapping feature -> {compute_ms, storage_bytes}"
        )
    if not isinstance(importance, Mapping):
        raise GateInputError(
            f"importance must be a mapping feature -> number, got {type(importance).__name__}"
        )
    missing = [f for f in costs if f not in importance]
    if missing:
        raise GateInputError(
            f"importance has no value for {missing}; give one per feature in costs"
        )
    for key, value in (
        ("max_compute_ms", max_compute_ms),
        ("max_storage_bytes", max_storage_bytes),
        ("max_cost_ratio", max_cost_ratio),
    ):
        if _number(value, key) <= 0:
            raise GateInputError(f"{key} must be > 0, got {value!r}")
    _number(min_material_ms, "min_material_ms")
    _number(min_material_bytes, "min_material_bytes")
    rows: list[dict[str, Any]] = []
    for name, cost in costs.items():
        if not isinstance(cost, Mapping) or COMPUTE not in cost or STORAGE not in cost:
            raise GateInputError(
                f"costs[{name!r}] must hold {COMPUTE!r} and {STORAGE!r}, got {cost!r}"
            )
        rows.append(
            {
                "feature": str(name),
                COMPUTE: _number(cost[COMPUTE], f"costs[{name!r}][{COMPUTE!r}]"),
                STORAGE: _number(cost[STORAGE], f"costs[{name!r}][{STORAGE!r}]"),
                "importance": _number(importance[name], f"importance[{name!r}]"),
            }
        )
    total_compute = sum(r[COMPUTE] for r in rows)
    total_storage = sum(r[STORAGE] for r in rows)
    total_importance = sum(r["importance"] for r in rows)
    if total_importance == 0:
        return GateResult(
            name="feature_cost",
            verdict="inconclusive",
            measured=None,
            threshold=float(max_cost_ratio),
            message="every importance is 0: no share of importance to hold the costs against",
            hint="pass the model's importances (gain or permutation) on held-out data",
            details={"features": rows},
            rubric=("data-3",),
        )
    failing = []
    for r in rows:
        compute_share = r[COMPUTE] / total_compute if total_compute else 0.0
        storage_share = r[STORAGE] / total_storage if total_storage else 0.0
        cost_share = max(compute_share, storage_share)
        imp_share = r["importance"] / total_importance
        ratio = cost_share / imp_share if imp_share > 0 else (math.inf if cost_share else 0.0)
        r.update(
            compute_share=compute_share,
            storage_share=storage_share,
            importance_share=imp_share,
            ratio=ratio,
        )
        problems = []
        if r[COMPUTE] > max_compute_ms:
            problems.append(f"compute {fmt(r[COMPUTE])} ms > budget {fmt(max_compute_ms)} ms")
        if r[STORAGE] > max_storage_bytes:
            problems.append(
                f"storage {r[STORAGE]:,.0f} B > budget {float(max_storage_bytes):,.0f} B"
            )
        disproportion = ratio > max_cost_ratio
        material = r[COMPUTE] > min_material_ms or r[STORAGE] > min_material_bytes
        if disproportion and material:
            problems.append(
                f"{pct(cost_share)} of the cost for {pct(imp_share)} of the importance "
                f"(x{fmt(ratio)} > x{fmt(max_cost_ratio)})"
            )
        r["problems"] = problems
        r["warning"] = (
            f"{pct(cost_share)} of the cost for {pct(imp_share)} of the importance "
            f"(x{fmt(ratio)} > x{fmt(max_cost_ratio)}), but only {fmt(r[COMPUTE])} ms and "
            f"{r[STORAGE]:,.0f} B (immaterial)"
            if disproportion and not material
            else ""
        )
        if problems:
            failing.append(r)
    worst = max(r["ratio"] for r in rows)
    details = {
        "features": rows,
        "total_compute_ms": total_compute,
        "total_storage_bytes": total_storage,
        "total": len(rows),
    }
    warned = [r for r in rows if r["warning"] and not r["problems"]]
    # the figures are the same whatever the verdict: one result, built once
    verdict: Verdict
    if failing:
        verdict = "fail"
        listed = "; ".join(f"{r['feature']}: {', '.join(r['problems'])}" for r in failing)
        message = f"{len(failing)} of {len(rows)} feature(s) cost too much: {listed}"
        hint = (
            "make the named features cheaper (batch the reads, store less per entity) or drop "
            "them if the model does not need them; raise a budget only with the product's say"
        )
    elif warned:
        verdict = "warn"
        listed = "; ".join(f"{r['feature']}: {r['warning']}" for r in warned)
        message = (
            f"{len(rows)} features within budget; {len(warned)} cost far more than their "
            f"share of importance, at a cost too small to block: {listed}"
        )
        hint = (
            "consider dropping the named features (or the views only they read) if the "
            "model does not need them"
        )
    else:
        verdict = "pass"
        message = (
            f"{len(rows)} features within budget ({fmt(total_compute)} ms per request, "
            f"{total_storage:,.0f} B per entity in all); the largest cost/importance ratio "
            f"is x{fmt(worst)}"
        )
        hint = ""
    return GateResult(
        name="feature_cost",
        verdict=verdict,
        measured=worst,
        threshold=float(max_cost_ratio),
        direction="max",
        message=message,
        hint=hint,
        details=details,
        rubric=("data-3",),
    )
