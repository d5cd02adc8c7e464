"""Registry and gated promotion against a real MLflow SQLite store in a temporary directory.

One store per module (creating it costs seconds); each test registers under its own model
name so the tests do not depend on each other's state.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlref.export import ExportResult, export_trained
from mlref.settings import Settings, make_settings
from mlref.train import TrainConfig, TrainResult, train
from mlref.train.fit import training_data_version

pytestmark = pytest.mark.filterwarnings(
    # mlflow 3.17's SQLAlchemy store configures a loader strategy SQLAlchemy 2.1 deprecates
    "ignore:The ``noload`` loader strategy is deprecated:DeprecationWarning",
    # raised while mlflow.pyfunc imports its own chat types (save_model imports pyfunc)
    "ignore:.*Any type hint is inferred as AnyType:UserWarning",
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    from mlref.registry import Registry

    settings = make_settings(tmp_path_factory.mktemp("mlref-registry"))
    Registry(settings).client.search_registered_models()  # creates the SQLite schema once
    return settings


@pytest.fixture(scope="module")
def exports(
    tmp_path_factory: pytest.TempPathFactory,
    frame: pd.DataFrame,
    config: TrainConfig,
    trained: TrainResult,
    weak: TrainResult,
) -> dict[str, tuple[ExportResult, TrainResult]]:
    """weak (two stumps) < good (the full model); shuffled: trained on permuted labels."""
    out = tmp_path_factory.mktemp("exports")
    shuffled_frame = frame.copy()
    rng = np.random.default_rng(5)
    shuffled_frame["is_fraud"] = rng.permutation(shuffled_frame["is_fraud"].to_numpy())
    shuffled = train(
        config.with_(
            data_version=training_data_version(shuffled_frame, config.feature_names),
            hyperparams={"n_estimators": 30, "max_depth": 3},
        ),
        shuffled_frame,
    )
    return {
        name: (export_trained(result, out / name), result)
        for name, result in (("weak", weak), ("good", trained), ("shuffled", shuffled))
    }


def _registry(store: Settings, name: str):
    from mlref.registry import Registry

    return Registry(store.with_(model_name=name))


def test_nothing_is_written_outside_the_workdir(store: Settings) -> None:
    assert (store.mlflow_dir / "mlflow.db").exists()
    assert not (Path.cwd() / "mlruns").exists()


def test_first_model_is_promoted_with_a_note(
    store: Settings, exports: dict[str, tuple[ExportResult, TrainResult]], frame: pd.DataFrame
) -> None:
    from mlref.promote import promote
    from mlref.registry import CHALLENGER, CHAMPION

    reg = _registry(store, "first")
    export, result = exports["weak"]
    version = reg.register(export, result=result)
    assert reg.version_of(CHALLENGER) == version
    assert reg.version_of(CHAMPION) is None

    decision = promote(reg.settings, frame, registry=reg, n_resamples=200)
    assert decision.promoted, decision.explain()
    assert any("first model" in note for note in decision.notes)
    assert {g.name for g in decision.gates} == {"no_worse", "model_parity", "time_split"}
    assert reg.version_of(CHAMPION) == version
    assert reg.version_of(CHALLENGER) is None  # a promoted candidate is no longer a candidate

    onnx_path, card, loaded_version = reg.load(CHAMPION)
    assert loaded_version == version
    assert onnx_path.read_bytes() == export.onnx_path.read_bytes()
    assert card["data_version"] == result.config.data_version
    assert card["feature_names"] == list(result.feature_names)
    assert (onnx_path.parent / "MLmodel").exists()  # an MLflow ONNX model with a signature
    assert "signature" in (onnx_path.parent / "MLmodel").read_text()


def test_worse_refused_better_accepted_and_rollback_restores(
    store: Settings, exports: dict[str, tuple[ExportResult, TrainResult]], frame: pd.DataFrame
) -> None:
    from mlref.promote import promote
    from mlref.registry import CHALLENGER, CHAMPION, RegistryError

    reg = _registry(store, "lifecycle")
    weak_version = reg.register(exports["weak"][0])
    assert promote(reg.settings, frame, registry=reg, n_resamples=300).promoted

    shuffled_version = reg.register(exports["shuffled"][0])
    refused = promote(reg.settings, frame, registry=reg, n_resamples=300)
    assert not refused.promoted
    regression = next(g for g in refused.gates if g.name == "no_worse")
    assert regression.verdict == "fail"
    assert "worse than the champion" in refused.explain()
    assert reg.version_of(CHAMPION) == weak_version
    assert reg.version_of(CHALLENGER) == shuffled_version
    tags = reg.client.get_model_version(reg.name, shuffled_version).tags
    assert tags["mlref.promotion"] == "refused"

    good_version = reg.register(exports["good"][0])
    accepted = promote(reg.settings, frame, registry=reg, n_resamples=300)
    assert accepted.promoted, accepted.explain()
    regression = next(g for g in accepted.gates if g.name == "no_worse")
    assert regression.details["difference"] > 0  # better, with confidence
    assert reg.version_of(CHAMPION) == good_version
    assert reg.history() == [weak_version]

    assert reg.rollback() == (good_version, weak_version)
    assert reg.version_of(CHAMPION) == weak_version
    assert reg.load(CHAMPION).version == weak_version
    with pytest.raises(RegistryError, match="nothing to roll back"):
        reg.rollback()


def test_champion_moves_only_through_a_passing_decision(
    store: Settings, exports: dict[str, tuple[ExportResult, TrainResult]]
) -> None:
    from mlref.promote import PromotionDecision
    from mlref.registry import CHAMPION, RegistryError

    reg = _registry(store, "guarded")
    version = reg.register(exports["weak"][0])
    refused = PromotionDecision(
        promoted=False, challenger_version=version, champion_version=None, gates=()
    )
    with pytest.raises(RegistryError, match="not promoted by the gates"):
        reg.set_champion(refused)
    assert reg.version_of(CHAMPION) is None
    with pytest.raises(RegistryError, match="nothing to roll back"):
        reg.rollback()
    with pytest.raises(RegistryError, match="no 'champion' alias"):
        reg.load(CHAMPION)


def test_evaluation_window_inside_the_training_data_is_refused(
    store: Settings,
    exports: dict[str, tuple[ExportResult, TrainResult]],
    frame: pd.DataFrame,
    config: TrainConfig,
) -> None:
    from mlref.promote import promote
    from mlref.registry import CHAMPION

    reg = _registry(store, "leaky-window")
    reg.register(exports["good"][0])
    # data that ends inside the validation window: its "latest labelled days" were learned from
    early = frame[frame["event_timestamp"] < config.val_end + config.label_delay]
    decision = promote(reg.settings, early, registry=reg, n_resamples=100)
    assert not decision.promoted
    split_gate = next(g for g in decision.gates if g.name == "time_split")
    assert split_gate.verdict == "fail", split_gate.explain()
    assert reg.version_of(CHAMPION) is None


def test_a_tampered_artifact_is_refused_on_load(
    store: Settings, exports: dict[str, tuple[ExportResult, TrainResult]]
) -> None:
    from mlref.registry import CHALLENGER, RegistryError

    reg = _registry(store, "tampered")
    reg.register(exports["weak"][0])
    onnx_path = reg.load(CHALLENGER).onnx_path
    onnx_path.write_bytes(onnx_path.read_bytes() + b"\0")
    with pytest.raises(RegistryError, match="does not match the hash"):
        reg.load(CHALLENGER)


def test_run_training_trains_exports_and_registers(
    store: Settings, frame: pd.DataFrame, config: TrainConfig
) -> None:
    from mlref.registry import CHALLENGER
    from mlref.train import run_training

    settings = store.with_(model_name="pipeline")
    weak = config.with_(hyperparams={"n_estimators": 2, "max_depth": 1})
    run = run_training(settings, frame, config=weak)
    assert run.out_dir.is_relative_to(settings.artifacts_dir)
    assert (run.out_dir / "train_result.json").exists()
    assert run.export.parity.passed
    reg = _registry(store, "pipeline")
    assert reg.version_of(CHALLENGER) == run.version
    assert str(run.export.onnx_path) in run.describe()


def test_importing_the_model_stages_loads_no_heavy_library() -> None:
    import subprocess
    import sys

    code = (
        "import sys, mlref.train, mlref.export, mlref.registry, mlref.promote\n"
        "heavy = ('mlflow', 'xgboost', 'onnxruntime', 'onnx', 'onnxmltools', 'feast')\n"
        "print(','.join(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == ""


def _shadow_log(frame: pd.DataFrame, champion: np.ndarray, shadow: np.ndarray, version: str):
    """Prediction-log rows as read_log returns them: champion score and shadow score of the
    same served transactions, requested well after their labels arrived."""
    return pd.DataFrame(
        {
            "transaction_id": frame["transaction_id"].to_numpy(),
            "ts": pd.to_datetime(frame["event_timestamp"], utc=True) + pd.Timedelta(days=40),
            "score": champion,
            "decision": champion >= 0.5,
            "threshold": 0.5,
            "shadow_score": shadow,
            "shadow_version": version,
        }
    )


def test_shadow_traffic_must_agree_before_promotion(
    store: Settings, exports: dict[str, tuple[ExportResult, TrainResult]], frame: pd.DataFrame
) -> None:
    """With shadow data for the challenger, the shadow no-worse gate joins the offline gates:
    a challenger that wins offline but loses on served traffic is refused."""
    from mlref.promote import promote
    from mlref.registry import CHAMPION

    reg = _registry(store, "shadowed")
    weak_export, weak = exports["weak"]
    weak_version = reg.register(weak_export)
    assert promote(reg.settings, frame, registry=reg, n_resamples=200).promoted
    good_export, good = exports["good"]
    good_version = reg.register(good_export)

    served = frame.tail(4000)
    champion_scores = weak.scores(served)
    inverted = 1.0 - good.scores(served)  # the challenger misbehaving on production traffic
    refused = promote(
        reg.settings,
        frame,
        registry=reg,
        n_resamples=200,
        apply=False,
        shadow_log=_shadow_log(served, champion_scores, inverted, good_version),
    )
    assert not refused.promoted
    assert [g.name for g in refused.gates].count("no_worse") == 2  # offline + shadow
    assert refused.gates[0].passed  # offline the challenger is better...
    assert refused.gates[-1].verdict == "fail"  # ...on shadow traffic it is not
    assert any("shadow:" in note for note in refused.notes)
    assert reg.version_of(CHAMPION) == weak_version

    accepted = promote(
        reg.settings,
        frame,
        registry=reg,
        n_resamples=200,
        shadow_log=_shadow_log(served, champion_scores, good.scores(served), good_version),
    )
    assert accepted.promoted, accepted.explain()
    assert reg.version_of(CHAMPION) == good_version
