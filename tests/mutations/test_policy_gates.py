"""Policy gates, each failing on a real defect of mlref next to its clean twin.

- ``pii_scan``: a prediction log that also records the customer's e-mail (a log schema
  change "for support lookups": a private copy of the session's SQLite log gains a
  ``customer_email`` column filled from the raw events' e-mail per user; ``read_log`` does not
  select it, the scan of the whole database finds it) fails, naming the log database and the
  e-mail pattern with a masked example; the session's own log, and every other source of the
  gate test, pass.
- ``feature_policy``: a model retrained with ``user_id`` as an input (declared in the
  definitions with an owner and a source, so only the forbidden list can stop it) and with
  a new input ``merchant_risk`` added to ``MODEL_FEATURES`` without its owner/source entry;
  the definitions go through ``feast_objects`` (the repo's own path to the registry) and
  the model through ONNX export. Fails naming both inputs and their problems; the
  reference model against the reference registry passes.
- ``spec_in_version_control``: a model trained (``run_training``, private workdir and
  MLflow) from a git repository holding mlref's spec files whose train config has an
  uncommitted change; its registered run's record fails (dirty tree, committed spec
  differs). The same repository's record before the change passes.
- ``code_coverage``: the feature code measured with its transform tests missing
  (``test_transforms.py`` never written): fails naming ``mlref.features.transforms`` and
  its uncovered lines; the gate test's full set of feature tests passes. Likewise the
  model code with its config/split tests missing fails naming ``mlref.train.split``.
- ``feature_cost``: ``txn_velocity_24h`` recomputed per request by scanning the raw event
  log instead of reading the stored state: over its compute budget, fails naming it; the
  store read (the gate test's measurement) does not fail.
"""

from __future__ import annotations

import importlib.util
import sqlite3
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pytest

if TYPE_CHECKING:
    from conftest import ServedLog

    from mlref.pipeline import ReferenceSystem
    from mlref.settings import Settings


def gate_suite() -> ModuleType:
    """tests/gates/test_policy_gates.py as a module (test modules are not importable by name),
    so the proof scans exactly the sources the gate test scans."""
    path = Path(__file__).parents[1] / "gates" / "test_policy_gates.py"
    spec = importlib.util.spec_from_file_location("mlref_gate_suite_policy", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pii_scan_fails_on_an_email_leaked_into_the_prediction_log(
    reference_system: ReferenceSystem, served_log: ServedLog, tmp_path: Path
) -> None:
    from mlgates.gates import pii_scan
    from mlref.data.columns import EMAIL, USER_ID
    from mlref.serve.predlog import TABLE

    suite = gate_suite()
    sources = suite.pii_sources(reference_system)
    clean = pii_scan(sources)
    assert clean.verdict == "pass", clean.explain()

    leaky = tmp_path / "predictions.sqlite"
    leaky.write_bytes(suite.sqlite_bytes(reference_system.settings.prediction_log))
    emails = reference_system.raw.drop_duplicates(USER_ID).set_index(USER_ID)[EMAIL]
    con = sqlite3.connect(leaky)
    try:
        with con:  # one transaction, committed
            con.execute(f"ALTER TABLE {TABLE} ADD COLUMN customer_email TEXT")
            users = [u for (u,) in con.execute(f"SELECT DISTINCT user_id FROM {TABLE}")]
            con.executemany(
                f"UPDATE {TABLE} SET customer_email = ? WHERE user_id = ?",
                [(emails[u], u) for u in users if u in emails.index],
            )
    finally:
        con.close()
    result = pii_scan({**sources, "prediction_log_db": suite.sqlite_bytes(leaky)})
    assert result.verdict == "fail", result.explain()
    found = {(f["source"], f["pattern"]) for f in result.details["findings"]}
    assert found == {("prediction_log_db", "email")}
    assert result.measured >= len(served_log.log["user_id"].unique())
    text = result.explain()
    assert "prediction_log_db: email x" in text
    assert not any(e in text for e in emails)  # masked, never the address


def test_feature_policy_fails_on_a_forbidden_input_and_an_unowned_one(
    reference_system: ReferenceSystem, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlgates.config import read_pyproject
    from mlgates.gates import feature_policy
    from mlref.data.columns import USER_ID
    from mlref.export import to_onnx
    from mlref.features import definitions as d
    from mlref.features.feature_repo.fraud_repo import feast_objects
    from mlref.train import train

    suite = gate_suite()
    # the suite's own policy (forbidden list, required fields), as the gate test runs it
    policy = read_pyproject(Path(__file__).parents[2] / "pyproject.toml")["feature_policy"]
    clean = feature_policy(
        suite.model_inputs(reference_system.run.export.onnx_path),
        suite.service_declarations(reference_system.store.get_feature_service(d.FEATURE_SERVICE)),
        **policy,
    )
    assert clean.verdict == "pass", clean.explain()

    # the defects, made where a developer would make them: the definitions
    monkeypatch.setattr(d, "MODEL_FEATURES", [*d.MODEL_FEATURES, USER_ID, "merchant_risk"])
    monkeypatch.setitem(d.MODEL_FEATURE_SOURCES, USER_ID, f"{d.REQUEST_SOURCE}.{USER_ID}")
    declarations = suite.service_declarations(feast_objects(str(tmp_path / "rows.parquet")).service)
    frame = reference_system.frame.copy()
    frame["merchant_risk"] = np.random.default_rng(0).random(len(frame))
    config = reference_system.run.result.config
    config = config.with_(feature_names=(*config.feature_names, USER_ID, "merchant_risk"))
    model = train(config, frame, check_data_version=False).model
    onnx_bytes = to_onnx(model, config.feature_names).SerializeToString()

    result = feature_policy(suite.model_inputs(onnx_bytes), declarations, **policy)
    assert result.verdict == "fail", result.explain()
    assert result.measured == 2
    assert "user_id: forbidden input" in result.message
    assert "merchant_risk: no owner / source" in result.message


def test_spec_in_version_control_fails_on_a_model_trained_from_an_uncommitted_config(
    ref_settings: Settings, reference_system: ReferenceSystem, tmp_path: Path
) -> None:
    import subprocess

    from mlgates.gates import spec_in_version_control
    from mlref.pipeline import burn_in
    from mlref.train.pipeline import run_training
    from mlref.train.provenance import SPEC_FILES, record_provenance

    suite = gate_suite()
    source = Path(__file__).resolve().parents[2]
    repo = tmp_path / "repo"
    for path in SPEC_FILES:
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_bytes((source / path).read_bytes())

    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@localhost", *args],
            check=True,
            capture_output=True,
        )

    git("init", "-q")
    git("add", ".")
    git("commit", "-q", "-m", "spec")
    clean = record_provenance(repo)
    check = suite.repository_check(repo, SPEC_FILES)
    twin = spec_in_version_control(
        {"commit": clean.commit, "dirty_files": [], "spec_hash": clean.spec_sha256}, check
    )
    assert twin.verdict == "pass", twin.explain()

    config = repo / "src/mlref/train/config.py"
    config.write_text(config.read_text() + "\n# learning_rate 0.3 tried by hand\n")
    settings = ref_settings.with_(workdir=tmp_path / "mlref")
    assert settings.registry_uri != ref_settings.registry_uri  # never the session's registry
    settings.ensure_dirs()
    frame = reference_system.frame
    run_training(settings, frame, spec_repo=repo, **burn_in(frame))
    record, files = suite.registered_provenance(settings, alias="challenger")
    result = spec_in_version_control(record, suite.repository_check(repo, files))
    assert result.verdict == "fail", result.explain()
    assert "dirty at training: uncommitted src/mlref/train/config.py" in result.message
    assert "differs from the one trained" in result.message


def test_code_coverage_fails_when_feature_code_lacks_its_tests(
    tmp_path: Path, session_coverage: Any
) -> None:
    from mlgates.config import read_pyproject
    from mlgates.gates import code_coverage

    suite = gate_suite()
    thresholds = read_pyproject(Path(__file__).parents[2] / "pyproject.toml")["code_coverage"]
    without = tuple(t for t in suite.FEATURE_TESTS if not t.endswith("test_transforms.py"))
    assert len(without) == len(suite.FEATURE_TESTS) - 1
    data = suite.coverage_of(
        session_coverage, "features", without, suite.FEATURE_CODE, tmp_path / ".coverage"
    )
    result = code_coverage(data, suite.FEATURE_CODE, code="features", **thresholds)
    assert result.verdict == "fail", result.explain()
    assert "mlref.features.transforms line coverage" in result.message
    assert "mlref.features.transforms: lines" in result.message
    transforms = next(m for m in result.details["modules"] if m["module"].endswith("transforms"))
    assert transforms["covered"] < transforms["statements"]  # its own tests ran the rest


def test_feature_cost_fails_on_a_feature_recomputed_from_the_raw_log(
    reference_system: ReferenceSystem,
) -> None:
    from mlgates.config import read_pyproject
    from mlgates.gates import feature_cost
    from mlref.features.definitions import VELOCITY_VIEW

    suite = gate_suite()
    budget = read_pyproject(Path(__file__).parents[2] / "pyproject.toml")["feature_cost"]
    importance = suite.permutation_importance(reference_system)
    clean = feature_cost(suite.feature_costs(reference_system), importance, **budget)
    assert clean.verdict in ("pass", "warn"), clean.explain()

    events = reference_system.events
    end = events["event_timestamp"].max()

    def velocity_from_raw_log(reader: Any, users: list[int]) -> None:
        # the defect: txn_velocity_24h recomputed per request by scanning the raw event log
        # instead of reading the user's stored state
        if reader._views[0][0].name != VELOCITY_VIEW:
            reader.read(users)
            return
        for user in users:
            mine = events.loc[events["user_id"] == user, "event_timestamp"]
            int((mine > end - pd.Timedelta(hours=24)).sum())

    result = feature_cost(
        suite.feature_costs(reference_system, read_view=velocity_from_raw_log),
        importance,
        **budget,
    )
    assert result.verdict == "fail", result.explain()
    failing = [r["feature"] for r in result.details["features"] if r["problems"]]
    assert failing == ["txn_velocity_24h"]


def test_code_coverage_fails_when_model_code_lacks_its_tests(
    tmp_path: Path, session_coverage: Any
) -> None:
    from mlgates.config import read_pyproject
    from mlgates.gates import code_coverage

    suite = gate_suite()
    thresholds = read_pyproject(Path(__file__).parents[2] / "pyproject.toml")["code_coverage"]
    without = tuple(t for t in suite.MODEL_TESTS if not t.endswith("test_config_split.py"))
    assert len(without) == len(suite.MODEL_TESTS) - 1
    data = suite.coverage_of(
        session_coverage, "model", without, suite.MODEL_CODE, tmp_path / ".coverage"
    )
    result = code_coverage(data, suite.MODEL_CODE, code="model", **thresholds)
    assert result.verdict == "fail", result.explain()
    assert result.rubric == ("infra-2",)
    assert "mlref.train.split: lines" in result.message
