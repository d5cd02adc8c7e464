"""The gate functions: each measures, returns a ``GateResult`` and never raises on a failed check.

``GATES`` maps each gate's ``name`` (the one in its result and in ``[tool.mlgates.<name>]``)
to its function.

ML Test Score items (Breck et al. 2017) each gate covers:

==================  ======================  ==============================================
gate                rubric ids              why
==================  ======================  ==============================================
psi_drift           monitor-2               data invariants hold for inputs
ks_drift            monitor-2               data invariants hold for inputs
prediction_drift    monitor-7               prediction quality has not regressed (proxy)
time_split          model-2                 offline metrics stay predictive of online ones
point_in_time       data-7, model-2         feature code is tested for look-ahead
entity_overlap      model-2                 test measures unseen entities
target_leak         model-2                 no label leak inflating offline metrics
feature_parity      monitor-3               training and serving are not skewed
model_parity        infra-3, monitor-3      exported model integration-tested vs native
no_worse            infra-4, monitor-7      quality validated before serving, no regression
                    (+ model-6 with slices) quality sufficient on important slices
latency_budget      monitor-6               computing performance has not regressed
cost_budget         monitor-6               computing performance (cost) within budget
schema_gate         data-1, monitor-2       expectations captured in a schema, and hold
freshness           monitor-4               models/data are not too stale
==================  ======================  ==============================================
"""

from __future__ import annotations

from collections.abc import Callable

from mlgates.gates.budget import (
    accelerator_cost_per_request,
    cost_budget,
    cost_per_request,
    latency_budget,
    training_sweep_cost,
)
from mlgates.gates.data import freshness, schema_gate
from mlgates.gates.drift import FeatureBins, FrozenBins, ks_drift, prediction_drift, psi_drift
from mlgates.gates.leakage import entity_overlap, point_in_time, target_leak, time_split
from mlgates.gates.parity import feature_parity, model_parity
from mlgates.gates.regression import no_worse
from mlgates.result import GateResult

GATES: dict[str, Callable[..., GateResult]] = {
    "psi_drift": psi_drift,
    "ks_drift": ks_drift,
    "prediction_drift": prediction_drift,
    "time_split": time_split,
    "point_in_time": point_in_time,
    "entity_overlap": entity_overlap,
    "target_leak": target_leak,
    "feature_parity": feature_parity,
    "model_parity": model_parity,
    "no_worse": no_worse,
    "latency_budget": latency_budget,
    "cost_budget": cost_budget,
    "schema_gate": schema_gate,
    "freshness": freshness,
}

__all__ = [
    "GATES",
    "FeatureBins",
    "FrozenBins",
    "accelerator_cost_per_request",
    "cost_budget",
    "cost_per_request",
    "entity_overlap",
    "feature_parity",
    "freshness",
    "ks_drift",
    "latency_budget",
    "model_parity",
    "no_worse",
    "point_in_time",
    "prediction_drift",
    "psi_drift",
    "schema_gate",
    "target_leak",
    "time_split",
    "training_sweep_cost",
]
