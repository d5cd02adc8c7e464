"""Public API: lazy imports, the registry, and the result contract of every gate."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd

import mlgates
from mlgates.gates import GATES
from mlgates.result import GateResult

RUBRIC_IDS = {f"{s}-{i}" for s in ("data", "model", "infra", "monitor") for i in range(1, 8)}


def test_importing_mlgates_is_cheap() -> None:
    code = "import sys, mlgates; print(sorted(m for m in ('numpy','pandas','scipy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_exports() -> None:
    for name in mlgates.__all__:
        assert getattr(mlgates, name) is not None
    assert mlgates.psi_drift is GATES["psi_drift"]
    assert set(GATES) <= set(mlgates.__all__)
    # the lazy export list is written out (importing mlgates must stay cheap): keep it whole
    assert set(mlgates.gates.__all__) <= set(mlgates.__all__)
    assert mlgates.metrics.roc_auc([0, 1], [0.1, 0.9]) == 1.0


def test_every_gate_returns_a_complete_result() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"x": rng.normal(size=300), "t": np.arange(300.0), "y": rng.integers(0, 2, 300)}
    )
    y = frame["y"].to_numpy()
    s = rng.random(300)
    calls = {
        "psi_drift": lambda f: f(frame, frame),
        "ks_drift": lambda f: f(frame, frame),
        "prediction_drift": lambda f: f(s, s),
        "time_split": lambda f: f(frame.iloc[:200], frame.iloc[200:], "t"),
        "point_in_time": lambda f: f(frame, "t", ["t"]),
        "entity_overlap": lambda f: f(frame.iloc[:200], frame.iloc[200:], "t"),
        "target_leak": lambda f: f(frame, "y", ["x"]),
        "feature_parity": lambda f: f(frame, frame, "t"),
        "model_parity": lambda f: f(s, s),
        "no_worse": lambda f: f(y, s, s, n_resamples=50),
        "latency_budget": lambda f: f(s * 10),
        "cost_budget": lambda f: f(1000, 1.0),
        "schema_gate": lambda f: f(frame, _schema()),
        "freshness": lambda f: f(frame["t"], 300.0, 10.0),
        "beats_baseline": lambda f: f(y, s, {"rules": s}, n_resamples=50),
        "features_beneficial": lambda f: f(lambda d: d["x"].to_numpy(), frame, y, ["x"]),
        "group_parity": lambda f: f(y, (s > 0.5).astype(int), np.arange(300) % 2),
        "staleness_impact": lambda f: f(np.arange(300) / 60, y, s, n_resamples=100),
        "tuning_gap": lambda f: f(lambda p: (y, s * p["w"]), {"w": 1.0}, {"w": (0.5, 2.0)}),
        "pii_scan": lambda f: f(frame),
        "feature_policy": lambda f: f(["x"], {"x": {"owner": "o", "source": "s"}}),
        "spec_in_version_control": lambda f: f({"commit": "c", "spec_hash": "h"}, None),
        "code_coverage": lambda f: f("no-such-coverage-file", ["mlgates.gates._common"]),
        "feature_cost": lambda f: f({"x": {"compute_ms": 0.1, "storage_bytes": 8}}, {"x": 1.0}),
        "canary": lambda f: f(s, s),
        "offline_online_agreement": lambda f: f(y, s, y, s),
        "numeric_stability": lambda f: f(s, frame),
        "dependency_drift": lambda f: f({"numpy": np.__version__}),
        "explanation_consistency": lambda f: f(frame[["x", "t"]], frame["x"] + frame["t"], 0.0),
        "new_feature_drill": lambda f: f({"offline": lambda: None}),
        "model_staleness": lambda f: f("2026-01-01", "2026-03-01", max_age_weeks=4),
    }
    assert set(calls) == set(GATES)
    for name, call in calls.items():
        r = call(GATES[name])
        assert isinstance(r, GateResult)
        assert r.name == name
        assert r.message
        # a gate may automate no ML Test Score item (tests/mlgates/test_rubric_mapping.py)
        assert set(r.rubric) <= RUBRIC_IDS
        json.loads(r.to_json())
        assert r.explain().startswith(f"[mlgates] {name}:")


def _schema() -> object:
    import pandera.pandas as pa

    return pa.DataFrameSchema({"x": pa.Column(float)})
