"""The gate functions: each measures, returns a ``GateResult`` and never raises on a failed check.

``GATES`` maps each gate's ``name`` (the one in its result and in ``[tool.mlgates.<name>]``)
to its function.

ML Test Score items (Breck et al. 2017) each gate automates (only items whose title it
tests; a test that automates more, e.g. freshness of the model's own training time, claims
it with ``@pytest.mark.mlgate(..., rubric=(...))``):

==================  ======================  ==============================================
gate                rubric ids              why
==================  ======================  ==============================================
psi_drift           monitor-2               serving inputs keep the training distribution
ks_drift            monitor-2               serving inputs keep the training distribution
prediction_drift    monitor-7               prediction bias/drift on served data (the
                                            paper's label-free check of this item)
time_split          (none)                  guards offline metrics; model-2 needs online
                                            metrics, which it does not measure
point_in_time       (none)                  look-ahead in a frame; data-7 (feature code
                                            tested) is code_coverage's measurement
entity_overlap      (none)                  as time_split
target_leak         (none)                  as time_split
feature_parity      monitor-3               training and serving features agree
model_parity        (none)                  two builds' scores agree; not the full
                                            pipeline (infra-3) nor features (monitor-3)
no_worse            infra-4                 quality validated before serving
                    (+ model-6 with slices) quality sufficient on important slices
latency_budget      monitor-6               computing performance has not regressed
cost_budget         monitor-6               computing performance (cost) within budget
schema_gate         data-1, monitor-2       expectations captured in a schema, and hold
freshness           (none)                  data age; monitor-4 is the model's age
pii_scan            data-5                  no personal data past the privacy controls
feature_policy      data-4                  inputs meet meta-level requirements (declared,
                                            owned, sourced, not forbidden)
spec_in_version_control model-1             model spec checked in: trained from a clean,
                                            existing commit whose spec hashes the same
code_coverage       data-7 (code="features")  feature code is tested: line/branch coverage
                    infra-2 (code="model")    model spec/training code is unit tested
feature_cost        data-3                  no feature's serving cost is too much for
                                            its importance
new_feature_drill   data-6                  a new feature is added with one definition
                                            (every derived path built and in parity)
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
from mlgates.gates.coverage import code_coverage
from mlgates.gates.data import freshness, schema_gate
from mlgates.gates.drift import FeatureBins, FrozenBins, ks_drift, prediction_drift, psi_drift
from mlgates.gates.drill import new_feature_drill
from mlgates.gates.feature_cost import feature_cost
from mlgates.gates.leakage import entity_overlap, point_in_time, target_leak, time_split
from mlgates.gates.parity import feature_parity, model_parity
from mlgates.gates.policy import feature_policy, pii_scan, spec_in_version_control
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
    "pii_scan": pii_scan,
    "feature_policy": feature_policy,
    "spec_in_version_control": spec_in_version_control,
    "code_coverage": code_coverage,
    "feature_cost": feature_cost,
    "new_feature_drill": new_feature_drill,
}

__all__ = [
    "GATES",
    "FeatureBins",
    "FrozenBins",
    "accelerator_cost_per_request",
    "code_coverage",
    "cost_budget",
    "cost_per_request",
    "entity_overlap",
    "feature_cost",
    "feature_parity",
    "feature_policy",
    "freshness",
    "ks_drift",
    "latency_budget",
    "model_parity",
    "new_feature_drill",
    "no_worse",
    "pii_scan",
    "point_in_time",
    "prediction_drift",
    "psi_drift",
    "schema_gate",
    "spec_in_version_control",
    "target_leak",
    "time_split",
    "training_sweep_cost",
]
