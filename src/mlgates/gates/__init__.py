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
beats_baseline      model-5                 a simpler model is not better
features_beneficial data-2                  all features are beneficial
group_parity        model-7                 tested for considerations of inclusion
staleness_impact    model-4                 the impact of model staleness is known
tuning_gap          model-3                 all hyperparameters have been tuned
pii_scan            data-5                  no personal data past the privacy controls
feature_policy      data-4                  inputs meet meta-level requirements (declared,
                                            owned, sourced, not forbidden)
spec_in_version_control model-1             model spec checked in: trained from a clean,
                                            existing commit whose spec hashes the same
code_coverage       data-7 (code="features")  feature code is tested: line/branch coverage
                    infra-2 (code="model")    model spec/training code is unit tested
feature_cost        data-3                  no feature's serving cost is too much for
                                            its importance
canary              infra-6                 a new model rolled out to a share of traffic
                                            and judged there (promote / rollback)
offline_online_    model-2                 offline metric against the one realised on
agreement                                   served, labelled traffic
numeric_stability   monitor-5               NaN/inf/out-of-range features and scores
dependency_drift    monitor-1               the environment the model was validated in
                                            against the one it runs in
explanation_        infra-5                 a single prediction's explanation adds up to
consistency                                 the score served (debuggable one by one)
model_staleness     monitor-4               the serving model's age within the limit its
                                            measured decay (staleness_impact) allows
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
from mlgates.gates.environment import capture_environment, dependency_drift
from mlgates.gates.explanation import explanation_consistency
from mlgates.gates.fairness import group_parity
from mlgates.gates.feature_cost import feature_cost
from mlgates.gates.leakage import entity_overlap, point_in_time, target_leak, time_split
from mlgates.gates.model import (
    beats_baseline,
    features_beneficial,
    staleness_impact,
    tuning_gap,
)
from mlgates.gates.online import offline_online_agreement
from mlgates.gates.parity import feature_parity, model_parity
from mlgates.gates.policy import feature_policy, pii_scan, spec_in_version_control
from mlgates.gates.regression import no_worse
from mlgates.gates.sequential import canary
from mlgates.gates.stability import numeric_stability
from mlgates.gates.staleness import model_staleness
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
    "beats_baseline": beats_baseline,
    "features_beneficial": features_beneficial,
    "group_parity": group_parity,
    "staleness_impact": staleness_impact,
    "tuning_gap": tuning_gap,
    "pii_scan": pii_scan,
    "feature_policy": feature_policy,
    "spec_in_version_control": spec_in_version_control,
    "code_coverage": code_coverage,
    "feature_cost": feature_cost,
    "canary": canary,
    "offline_online_agreement": offline_online_agreement,
    "numeric_stability": numeric_stability,
    "dependency_drift": dependency_drift,
    "explanation_consistency": explanation_consistency,
    "new_feature_drill": new_feature_drill,
    "model_staleness": model_staleness,
}

__all__ = [
    "GATES",
    "FeatureBins",
    "FrozenBins",
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
    "group_parity",
    "ks_drift",
    "latency_budget",
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
    "target_leak",
    "time_split",
    "training_sweep_cost",
    "tuning_gap",
]
