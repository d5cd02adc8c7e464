"""Policy gates on the reference system: no personal data past the privacy step, and model
inputs that are declared, owned and allowed.

The raw history carries each user's card number, e-mail and purchase IP
(``generate_transactions(pii=True)``); ``mlref.data.privacy`` drops them before validation.
``pii_scan`` checks every place they must not reach: the feature store's offline rows, the
training set, the model artefacts (ONNX, native model, model card) and the prediction log
the server wrote while ``served_log`` replayed live traffic. tests/mutations/test_policy_gates.py
shows an e-mail leaked into the prediction log failing it.

``feature_policy`` holds the registered model's inputs (its ONNX metadata) to the
declarations of the applied Feast registry (the feature service's fields and its
``<field>.owner`` / ``<field>.source`` tags, from ``mlref.features.definitions``) and to the forbidden list
of ``[tool.mlgates.feature_policy]``. tests/mutations/test_policy_gates.py shows a model
trained on ``user_id`` and an input declared without an owner failing it.

``spec_in_version_control`` reads what training recorded for the registry's champion
(MLflow run tags: commit, uncommitted spec files, spec hash; ``mlref.train.provenance``) and
checks it against the git checkout the suite runs from. A run with uncommitted changes to
the spec files (train config and code, feature definitions) fails here by design: commit,
then rerun. tests/mutations/test_policy_gates.py trains a model from an uncommitted config.

``code_coverage`` (data-7): line and branch coverage of the feature code
(``FEATURE_CODE``) by its unit tests (``FEATURE_TESTS``), with branches, measured while
those tests run in this session (conftest.py ``SessionCoverage``: traced only during them,
one data set per test file; these gate tests run after them). When the session cannot
measure them (the unit tests not selected, pytest-cov or xdist), the tests run again under
``coverage run --branch`` in a child process. tests/mutations/test_policy_gates.py shows the
feature code with its transform tests missing failing it.

``feature_cost`` (data-3): each model input's serving cost, measured here on the reference
store: per feature view, the online read of mlref's serving reader
(``mlref.features.store._OnlineReader``, limited to that view) for a batch of users, least
of repeats, per request; the request-time transforms (``request_feature_arrays``, one call
computes every input) likewise; storage per entity from the SQLite online store's rows of
the view. A view's cost is split among the inputs whose declared source reads it, the
transforms' among all inputs. Importance: the champion's permutation importance (ROC AUC
drop) on the held-out test window. The mutation reads one view one user at a time.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import subprocess

    from conftest import ServedLog

    from mlgates.fixture import Gates
    from mlref.pipeline import ReferenceSystem


def pii_sources(system: ReferenceSystem) -> dict[str, object]:
    """Everything downstream of the privacy step that the reference system keeps."""
    import pandas as pd

    from mlref.features.store import offline_parquet_path
    from mlref.monitor.log import read_log

    export = system.run.export
    return {
        "feature_rows": pd.read_parquet(offline_parquet_path(system.settings)),
        "training_set": system.frame,
        "model_onnx": export.onnx_path,
        "model_native": export.native_path,
        "model_card": export.card_path,
        "prediction_log": read_log(system.settings.prediction_log),
        # the whole database too: a column or table read_log does not select still holds
        # whatever was written
        "prediction_log_db": sqlite_bytes(system.settings.prediction_log),
    }


def sqlite_bytes(path: Path) -> bytes:
    """The database at ``path`` as one byte string, rows still in its write-ahead log
    included (the file alone can miss them); opened read-only, the server's log is untouched."""
    import sqlite3

    con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return con.serialize()
    finally:
        con.close()


@pytest.mark.mlgate("pii_scan")
def test_no_personal_data_past_the_privacy_step(
    mlgates: Gates, reference_system: ReferenceSystem, served_log: ServedLog
) -> None:
    """The raw history does hold personal data (else the scan proves nothing); nothing
    built from it does."""
    from mlgates.gates import pii_scan
    from mlref.data.columns import PII_COLUMNS

    assert set(PII_COLUMNS) <= set(reference_system.raw.columns)
    assert pii_scan({"raw": reference_system.raw.head(1000)}).verdict == "fail"
    assert len(served_log.log) > 0
    mlgates.run(pii_scan, pii_sources(reference_system))


def service_declarations(service: Any) -> dict[str, dict[str, str]]:
    """Each field a Feast ``FeatureService`` serves, with the service's ``<field>.<key>``
    tags as its metadata (owner, source, ...; mlref.features.definitions.model_feature_tags)."""
    meta: dict[str, dict[str, str]] = {
        field.name: {}
        for projection in service.feature_view_projections
        for field in projection.features
    }
    for key, value in service.tags.items():
        name, _, attribute = key.rpartition(".")
        if name in meta:
            meta[name][attribute] = value
    return meta


def model_inputs(onnx_model: Path | bytes) -> list[str]:
    """The input names an exported model was built with (its ``feature_names`` metadata)."""
    from mlref.export import OnnxScorer

    names = OnnxScorer(onnx_model).feature_names
    assert names, "the ONNX model carries no feature_names metadata"
    return names


@pytest.mark.mlgate("feature_policy")
def test_model_inputs_are_declared_owned_and_allowed(
    mlgates: Gates, reference_system: ReferenceSystem
) -> None:
    """Every input of the trained model is a field of the registered feature service with
    an owner and a source, and none is a forbidden attribute or derived from one."""
    from mlgates.gates import feature_policy
    from mlref.features.definitions import FEATURE_SERVICE

    service = reference_system.store.get_feature_service(FEATURE_SERVICE)
    mlgates.run(
        feature_policy,
        model_inputs(reference_system.run.export.onnx_path),
        service_declarations(service),
    )


def registered_provenance(settings: Any, alias: str = "champion") -> tuple[dict[str, Any], Any]:
    """What training recorded for the model under ``alias`` (from its MLflow run's tags), as
    the gate's ``record``, and the spec files it hashed."""
    from mlref.registry import Registry
    from mlref.train.provenance import Provenance

    registry = Registry(settings)
    version = registry.version_of(alias)
    assert version is not None, f"no model under alias {alias!r}"
    run_id = registry.client.get_model_version(registry.name, version).run_id
    assert run_id is not None
    provenance = Provenance.from_tags(registry.client.get_run(run_id).data.tags)
    record = {
        "commit": provenance.commit,
        "dirty_files": list(provenance.dirty_files),
        "spec_hash": provenance.spec_sha256,
    }
    return record, provenance.spec_files


def repository_check(root: Path | None, files: Any) -> Any:
    """The gate's ``committed_hash`` for the checkout at ``root`` (None without one)."""
    from mlref.train.provenance import committed_spec_hash

    if root is None:
        return None
    return lambda commit: committed_spec_hash(root, commit, files)


@pytest.mark.mlgate("spec_in_version_control")
def test_champion_was_trained_from_the_committed_spec(
    mlgates: Gates, reference_system: ReferenceSystem
) -> None:
    """The champion's recorded commit exists here, the spec files were clean when it was
    trained, and the commit's spec files hash to what it was trained from."""
    from mlgates.gates import spec_in_version_control
    from mlref.train.provenance import repository_root

    record, files = registered_provenance(reference_system.settings)
    mlgates.run(spec_in_version_control, record, repository_check(repository_root(), files))


# the feature code (mlref.features: one definition, offline and online paths, transforms)
FEATURE_CODE: tuple[str, ...] = (
    "mlref.features.definitions",
    "mlref.features.offline",
    "mlref.features.online",
    "mlref.features.transforms",
)
# its unit tests (the Feast-backed store tests exercise Feast glue, not these modules)
FEATURE_TESTS: tuple[str, ...] = (
    "tests/mlref/features/test_transforms.py",
    "tests/mlref/features/test_offline_online.py",
    "tests/mlref/features/test_replay.py",
)


def start_coverage(
    tests: tuple[str, ...], modules: tuple[str, ...], data_file: Path
) -> subprocess.Popen[str]:
    """Start ``tests`` under ``coverage run --branch`` limited to ``modules`` (a child pytest
    process; ``finish_coverage`` waits for it)."""
    import importlib.util
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "COVERAGE_FILE": str(data_file)}
    env.pop("COV_CORE_SOURCE", None)  # a pytest-cov parent must not hijack the child
    # the child needs none of the installed pytest plugins (Locust, Schemathesis, ...): not
    # auto-loading them halved its start-up here (33-57 s against 83-96 s to collect one
    # test file, on a machine at load ~18); mlgates' own plugin registers the markers
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    # by file, not --source=<dotted name>: coverage would import the package before pytest
    # starts (mlref.train imports numpy, which then refuses a second load)
    files = []
    for module in modules:
        spec = importlib.util.find_spec(module)
        assert spec is not None, module
        assert spec.origin is not None, module
        files.append(spec.origin)
    cmd = [sys.executable, "-m", "coverage", "run", "--branch", f"--data-file={data_file}"]
    cmd += [f"--include={','.join(files)}", "-m", "pytest", *tests]
    cmd += ["-q", "-x", "-p", "no:cacheprovider", "-p", "mlgates.plugin"]
    return subprocess.Popen(
        cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish_coverage(child: subprocess.Popen[str], data_file: Path) -> Path:
    """Wait for a ``start_coverage`` child (killed after 600 s); its data file."""
    import subprocess

    try:
        stdout, stderr = child.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        raise
    assert child.returncode == 0, f"the unit tests failed:\n{stdout[-3000:]}\n{stderr[-2000:]}"
    return data_file


def measure_coverage(tests: tuple[str, ...], modules: tuple[str, ...], data_file: Path) -> Path:
    """Run ``tests`` under ``coverage run --branch`` limited to ``modules``; the data file."""
    return finish_coverage(start_coverage(tests, modules, data_file), data_file)


# the model's specification and training code, and its unit tests
MODEL_CODE: tuple[str, ...] = (
    "mlref.train.config",
    "mlref.train.fit",
    "mlref.train.split",
    "mlref.train.evaluate",
)
MODEL_TESTS: tuple[str, ...] = (
    "tests/mlref/model/test_config_split.py",
    "tests/mlref/model/test_train_export.py",
)


def coverage_of(
    session: Any, name: str, tests: tuple[str, ...], modules: tuple[str, ...], data_file: Path
) -> Path:
    """The coverage data file of ``tests`` on ``modules``: this session's (``session``, the
    ``session_coverage`` fixture) when it measured them, else a child process's."""
    measured = None if session is None else session.data(name, tests, data_file)
    return measured if measured is not None else measure_coverage(tests, modules, data_file)


@pytest.fixture(scope="module")
def coverage_data(
    tmp_path_factory: pytest.TempPathFactory, session_coverage: Any
) -> dict[str, Path]:
    """The feature code's and the model code's coverage data files: this session's, measured
    while their unit tests ran (see the module docstring); otherwise side by side in two
    child processes, each running only its code's own unit tests, on the two cores while this
    process waits (one after the other they cost the sum of both)."""
    out = tmp_path_factory.mktemp("coverage")
    runs = {"features": (FEATURE_TESTS, FEATURE_CODE), "model": (MODEL_TESTS, MODEL_CODE)}
    files = {name: out / f"{name}.coverage" for name in runs}
    measured = {
        name: session_coverage.data(name, tests, files[name])
        for name, (tests, _) in runs.items()
        if session_coverage is not None
    }
    if all(measured.get(name) is not None for name in runs):
        return measured
    children = {
        name: start_coverage(tests, modules, files[name])
        for name, (tests, modules) in runs.items()
        if measured.get(name) is None
    }
    try:
        children_data = {name: finish_coverage(c, files[name]) for name, c in children.items()}
        return {name: measured.get(name) or children_data[name] for name in runs}
    finally:
        for child in children.values():
            if child.poll() is None:
                child.kill()
                child.communicate()


@pytest.mark.mlgate("code_coverage")
def test_feature_code_is_tested(mlgates: Gates, coverage_data: dict[str, Path]) -> None:
    """The feature code's unit tests run its lines and both sides of its branches."""
    from mlgates.gates import code_coverage

    data = coverage_data["features"]
    mlgates.run(code_coverage, data, FEATURE_CODE, code="features")


COST_BATCH = 32  # users per timed online read (serving batches are of this order)
COST_REPEATS = 15  # least of these: contention on a shared machine only adds time


def _least_ms(fn: Any, repeats: int = COST_REPEATS) -> float:
    import time

    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best * 1000.0


def view_storage_bytes(system: ReferenceSystem, view: str) -> float:
    """Bytes per entity the view's rows take in the SQLite online store (key, field name,
    value and two timestamps per stored field)."""
    import sqlite3

    from mlref.features.definitions import PROJECT

    path = system.settings.feature_repo / "data" / "online_store.db"
    con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        total, entities = con.execute(
            "SELECT SUM(LENGTH(entity_key) + LENGTH(feature_name) + LENGTH(value) + 16), "
            f"COUNT(DISTINCT entity_key) FROM {PROJECT}_{view}"
        ).fetchone()
    finally:
        con.close()
    return float(total) / float(entities)


def feature_costs(system: ReferenceSystem, read_view: Any = None) -> dict[str, dict[str, float]]:
    """compute_ms (per request) and storage_bytes (per entity) of every model input.

    ``read_view(reader, users)`` reads one view for ``users`` (default: one batched read,
    as serving does); the reader is mlref's own, limited to the view being timed.
    """
    import numpy as np

    from mlref.data.columns import AMOUNT, MERCHANT_CATEGORY
    from mlref.features.definitions import (
        MODEL_FEATURE_SOURCES,
        MODEL_FEATURES,
        REQUEST_TS,
        STORED_COLUMNS,
        VIEWS,
    )
    from mlref.features.store import _OnlineReader
    from mlref.features.transforms import request_feature_arrays

    read_view = read_view or (lambda reader, users: reader.read(users))
    users = sorted(set(system.events["user_id"].tolist()))[:COST_BATCH]
    per_view: dict[str, dict[str, float]] = {}
    for spec in VIEWS:
        reader = _OnlineReader(system.store)
        reader._views = [v for v in reader._views if v[0].name == spec.name]
        ms = _least_ms(lambda reader=reader: read_view(reader, users)) / len(users)
        per_view[spec.name] = {
            "compute_ms": ms,
            "storage_bytes": view_storage_bytes(system, spec.name),
        }
    rng = np.random.default_rng(0)
    inputs = {
        **{c: rng.random(len(users)) * 10 for c in STORED_COLUMNS},
        AMOUNT: rng.random(len(users)) * 100,
        REQUEST_TS: np.full(len(users), 1.7e9),
        MERCHANT_CATEGORY: np.array(["grocery"] * len(users), dtype=object),
    }
    transform_ms = _least_ms(lambda: request_feature_arrays(inputs)) / len(users)

    readers = {
        name: [v for v in per_view if v in MODEL_FEATURE_SOURCES.get(name, "")]
        for name in MODEL_FEATURES
    }
    costs = {
        name: {"compute_ms": transform_ms / len(MODEL_FEATURES), "storage_bytes": 0.0}
        for name in MODEL_FEATURES
    }
    for view, cost in per_view.items():
        sharing = [name for name, views in readers.items() if view in views]
        for name in sharing:
            costs[name]["compute_ms"] += cost["compute_ms"] / len(sharing)
            costs[name]["storage_bytes"] += cost["storage_bytes"] / len(sharing)
    return costs


def permutation_importance(system: ReferenceSystem, repeats: int = 3) -> dict[str, float]:
    """Each model input's permutation importance on the held-out test window: the mean drop
    of the champion's ROC AUC when that column is shuffled (seeded; 0 where it does not
    drop). Vectorised: one batch prediction per shuffle."""
    import numpy as np

    from mlgates.metrics import roc_auc
    from mlref.data.columns import LABEL
    from mlref.train.fit import feature_matrix, native_scores

    result = system.run.result
    names = list(result.feature_names)
    test = result.split.test
    x = feature_matrix(test, names)
    y = test[LABEL].to_numpy()
    base = roc_auc(y, native_scores(result.model, x))
    rng = np.random.default_rng(0)
    out = {}
    for j, name in enumerate(names):
        drops = []
        for _ in range(repeats):
            shuffled = x.copy()
            shuffled[:, j] = rng.permutation(shuffled[:, j])
            drops.append(base - roc_auc(y, native_scores(result.model, shuffled)))
        out[name] = max(float(np.mean(drops)), 0.0)
    return out


@pytest.mark.mlgate("feature_cost")
def test_no_feature_costs_too_much(mlgates: Gates, reference_system: ReferenceSystem) -> None:
    """Every model input's online compute and storage is within budget and in proportion
    to its importance."""
    from mlgates.gates import feature_cost

    importance = permutation_importance(reference_system)
    mlgates.run(feature_cost, feature_costs(reference_system), importance)


@pytest.mark.mlgate("code_coverage")
def test_model_specification_code_is_unit_tested(
    mlgates: Gates, coverage_data: dict[str, Path]
) -> None:
    """The training configuration, split, fit and evaluation code is run by its unit tests,
    lines and both sides of its branches."""
    from mlgates.gates import code_coverage

    data = coverage_data["model"]
    mlgates.run(code_coverage, data, MODEL_CODE, code="model")
