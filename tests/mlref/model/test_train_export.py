"""Training is deterministic; the ONNX export reproduces XGBoost and a broken export is caught."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from mlref.export import (
    ExportParityError,
    OnnxScorer,
    edge_inputs,
    export_onnx,
    export_trained,
    read_card,
)
from mlref.train import TrainConfig, TrainResult, feature_matrix, train


def test_same_config_and_data_give_identical_predictions(
    frame: pd.DataFrame, config: TrainConfig, trained: TrainResult
) -> None:
    again = train(config, frame)
    test = trained.split.test
    assert np.array_equal(trained.scores(test), again.scores(test))
    assert trained.model.get_booster().save_raw("json") == again.model.get_booster().save_raw(
        "json"
    )
    assert again.threshold == trained.threshold


def test_result_reports_test_metrics_and_slices(trained: TrainResult) -> None:
    test = trained.split.test
    scores = trained.scores(test)
    metrics = trained.test.metrics
    assert metrics["roc_auc"] == pytest.approx(roc_auc_score(test["is_fraud"], scores))
    assert metrics["roc_auc"] > 0.8  # the generator plants learnable fraud
    assert set(trained.test.slices) == {"merchant_category", "user_tenure"}
    assert set(trained.test.slices["user_tenure"]) <= {"new", "established"}
    assert sum(r["n"] for r in trained.test.slices["merchant_category"].values()) == len(test)
    payload = json.loads(trained.to_json())
    assert payload["config"]["data_version"] == trained.config.data_version
    assert payload["threshold"]["value"] == trained.threshold.value
    assert "roc_auc" in trained.summary()


def test_train_refuses_a_config_for_other_data(frame: pd.DataFrame, config: TrainConfig) -> None:
    with pytest.raises(ValueError, match="does not match the frame"):
        train(config.with_(data_version="0" * 64), frame)


def test_export_parity_holds_and_the_card_describes_the_model(
    trained: TrainResult, tmp_path: Path
) -> None:
    result = export_trained(trained, tmp_path)
    assert result.parity.passed, result.parity.explain()
    assert result.parity.name == "model_parity"
    card = read_card(result.onnx_path)
    assert card["feature_names"] == list(trained.feature_names)
    assert card["input"] == {"name": "features", "dtype": "float32", "shape": [None, 8]}
    assert card["feature_service"] == trained.config.feature_service
    assert card["data_version"] == trained.config.data_version
    assert card["decision"]["threshold"] == trained.threshold.value
    assert card["seed"] == trained.config.seed
    assert card["metrics"]["test"]["roc_auc"] == trained.test.metrics["roc_auc"]
    # serving's view: ONNX Runtime on the FeatureService columns
    scorer = OnnxScorer(result.onnx_path, intra_op_threads=1)
    assert scorer.feature_names == list(trained.feature_names)
    test = trained.split.test
    onnx_scores = scorer.score(feature_matrix(test, trained.feature_names))
    np.testing.assert_allclose(onnx_scores, trained.scores(test), atol=1e-5, rtol=0)


def test_edge_inputs_cover_missing_zero_extremes_and_split_points(trained: TrainResult) -> None:
    base = feature_matrix(trained.split.test, trained.feature_names)
    edges = edge_inputs(trained.model, base)
    assert np.isnan(edges).all(axis=1).any()
    assert (edges == 0).all(axis=1).any()
    assert np.isposinf(edges).any()
    assert np.isneginf(edges).any()
    assert (edges == np.finfo(np.float32).max).any()
    splits = trained.model.get_booster().trees_to_dataframe()
    some_split = np.float32(splits.loc[splits["Feature"] != "Leaf", "Split"].iloc[0])
    assert (edges == some_split).any()
    assert np.array_equal(edges, edge_inputs(trained.model, base), equal_nan=True)  # seeded


def test_export_with_reordered_features_is_caught(trained: TrainResult, tmp_path: Path) -> None:
    names = list(trained.feature_names)
    swapped = [names[1], names[0], *names[2:]]
    target = tmp_path / "broken.onnx"
    with pytest.raises(ExportParityError, match="model_parity: FAIL") as info:
        export_onnx(trained.model, target, swapped, parity_data=trained.split.test)
    assert "declared feature order differs" in str(info.value)
    assert info.value.result.details  # the gate's rows are kept for the reader
    assert not target.exists()
    assert not target.with_suffix(".card.json").exists()


def test_export_refuses_features_the_model_never_saw(trained: TrainResult, tmp_path: Path) -> None:
    names = [*list(trained.feature_names)[:-1], "something_else"]
    with pytest.raises(ValueError, match="not the features the model was trained on"):
        export_onnx(trained.model, tmp_path / "m.onnx", names, parity_data=trained.split.test)


def test_parity_holds_with_a_non_trivial_intercept(
    frame: pd.DataFrame, config: TrainConfig, tmp_path: Path
) -> None:
    # without class weights XGBoost 3 stores base_score as a vector near the fraud rate
    # ('[3E-2]'): the converter must carry it as a logit offset
    small = train(
        config.with_(hyperparams={"n_estimators": 5, "max_depth": 2, "scale_pos_weight": 1.0}),
        frame,
    )
    learner = json.loads(small.model.get_booster().save_config())["learner"]
    base_score = json.loads(learner["learner_model_param"]["base_score"])
    assert abs(base_score[0] - 0.5) > 0.3
    result = export_trained(small, tmp_path)
    assert result.parity.passed, result.parity.explain()
