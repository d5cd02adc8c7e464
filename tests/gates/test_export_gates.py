"""Export parity: the registry champion's ONNX file reproduces its native XGBoost model."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from mlgates.fixture import Gates
    from mlref.pipeline import ReferenceSystem
    from mlref.registry import LoadedModel


@pytest.mark.mlgate("model_parity")
def test_onnx_matches_native_xgboost(
    mlgates: Gates, reference_system: ReferenceSystem, champion: LoadedModel
) -> None:
    """Native XGBoost (the registered ``model.xgb.json``, fed in its trained column order)
    and ONNX Runtime (the registered ``model.onnx``, fed in the order its metadata declares,
    as serving does) give the same scores on every training-frame row plus edge inputs
    (NaN/inf/extremes, every split threshold and one float32 step below it)."""
    import numpy as np
    import xgboost as xgb

    from mlgates.gates import model_parity
    from mlref.export import OnnxScorer, edge_inputs

    native = xgb.XGBClassifier()
    native.load_model(str(champion.native_path))
    booster = native.get_booster()
    trained = list(booster.feature_names or [])
    assert trained, "the native model carries no feature names"
    x_native = reference_system.frame[trained].to_numpy(dtype=np.float32)
    x_native = np.vstack([x_native, edge_inputs(native, x_native, seed=0)])

    scorer = OnnxScorer(champion.onnx_path)
    declared = scorer.feature_names or list(champion.card["feature_names"])
    x_onnx = x_native[:, [trained.index(name) for name in declared]]

    reference = booster.inplace_predict(x_native, validate_features=False)
    candidate = scorer.score(x_onnx)
    mlgates.run(model_parity, np.asarray(reference, np.float64), candidate.astype(np.float64))
