"""mlgates: ML quality gates as plain functions and as a pytest plugin.

``from mlgates import psi_drift, no_worse, ...`` or ``from mlgates import gates``.
Everything but the result types is imported lazily (PEP 562): the pytest entry point
imports this package, and an installed-but-off plugin must not pay for numpy/pandas.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mlgates.result import GateInputError, GateResult

if TYPE_CHECKING:
    from mlgates import gates, metrics, stats
    from mlgates.gates import (
        GATES,
        FeatureBins,
        FrozenBins,
        accelerator_cost_per_request,
        canary,
        capture_environment,
        code_coverage,
        cost_budget,
        cost_per_request,
        dependency_drift,
        entity_overlap,
        explanation_consistency,
        feature_parity,
        feature_policy,
        freshness,
        ks_drift,
        latency_budget,
        model_parity,
        new_feature_drill,
        no_worse,
        numeric_stability,
        offline_online_agreement,
        pii_scan,
        point_in_time,
        prediction_drift,
        psi_drift,
        schema_gate,
        spec_in_version_control,
        target_leak,
        time_split,
        training_sweep_cost,
    )
    from mlgates.gates.fairness import group_parity
    from mlgates.gates.feature_cost import feature_cost
    from mlgates.gates.model import (
        beats_baseline,
        features_beneficial,
        staleness_impact,
        tuning_gap,
    )
    from mlgates.gates.staleness import model_staleness

_SUBMODULES = ("gates", "metrics", "stats")
_FROM_GATES = (
    "GATES",
    "FeatureBins",
    "FrozenBins",
    "accelerator_cost_per_request",
    "code_coverage",
    "canary",
    "capture_environment",
    "cost_budget",
    "cost_per_request",
    "dependency_drift",
    "entity_overlap",
    "feature_cost",
    "explanation_consistency",
    "feature_parity",
    "feature_policy",
    "freshness",
    "ks_drift",
    "latency_budget",
    "model_parity",
    "new_feature_drill",
    "no_worse",
    "pii_scan",
    "numeric_stability",
    "offline_online_agreement",
    "point_in_time",
    "prediction_drift",
    "psi_drift",
    "schema_gate",
    "spec_in_version_control",
    "target_leak",
    "time_split",
    "training_sweep_cost",
    "beats_baseline",
    "features_beneficial",
    "group_parity",
    "staleness_impact",
    "model_staleness",
    "tuning_gap",
)

__all__ = [
    "GATES",
    "FeatureBins",
    "FrozenBins",
    "GateInputError",
    "GateResult",
    "accelerator_cost_per_request",
    "beats_baseline",
    "canary",
    "capture_environment",
    "code_coverage",
    "cost_budget",
    "cost_per_request",
    "dependency_drift",
    "entity_overlap",
    "explanation_consistency",
    "feature_cost",
    "feature_parity",
    "feature_policy",
    "features_beneficial",
    "freshness",
    "gates",
    "group_parity",
    "ks_drift",
    "latency_budget",
    "metrics",
    "model_parity",
    "model_staleness",
    "new_feature_drill",
    "no_worse",
    "numeric_stability",
    "offline_online_agreement",
    "pii_scan",
    "point_in_time",
    "prediction_drift",
    "psi_drift",
    "schema_gate",
    "spec_in_version_control",
    "staleness_impact",
    "stats",
    "target_leak",
    "time_split",
    "training_sweep_cost",
    "tuning_gap",
]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"mlgates.{name}")
    if name in _FROM_GATES:
        value = getattr(importlib.import_module("mlgates.gates"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mlgates' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
