"""The large-batch model: ONNX Runtime below the crossover, native XGBoost at and above it.

Parity is proven at the crossover size and above (the rows the native path scores), on real
rows and on rows with missing values, against ONNX Runtime and against the trained model
itself; a native model whose columns differ from the ONNX inputs' (names or order) is refused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlref.features.definitions import MODEL_FEATURES
from mlref.serve.predictor import (
    NATIVE_FROM_ROWS,
    CrossoverModel,
    OnnxModel,
    large_batch_model,
)

PARITY_ATOL = 1e-5


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "txn_velocity_24h": rng.poisson(2.0, n).astype(float),
            "avg_order_30d": rng.lognormal(3.5, 0.5, n),
            "amount_vs_user_avg": rng.lognormal(0.0, 0.7, n),
            "seconds_since_last_txn": rng.exponential(20_000.0, n),
            "merchant_category_code": rng.integers(-1, 8, n).astype(float),
            "log_amount": rng.normal(3.5, 1.0, n),
            "hour_of_day": rng.integers(0, 24, n).astype(float),
            "day_of_week": rng.integers(0, 7, n).astype(float),
        }
    )[MODEL_FEATURES]


def _export(directory: Path, columns: list[str], seed: int = 3) -> tuple[Path, object]:
    """Train on ``columns`` (the native model's order) and export ONNX in that order too, with
    the native model beside it as export and the registry leave it (``model.xgb.json``)."""
    import xgboost as xgb

    from mlref.export import to_onnx

    frame = _frame(2000, seed)[columns]
    y = ((frame["log_amount"] - 3.5) + 0.4 * frame["txn_velocity_24h"] > 1.0).astype(int)
    model = xgb.XGBClassifier(
        n_estimators=60, max_depth=5, learning_rate=0.2, random_state=seed, n_jobs=1
    )
    model.fit(frame, y)
    onnx_path = directory / "model.onnx"
    onnx_path.write_bytes(to_onnx(model, columns).SerializeToString())
    model.get_booster().save_model(str(directory / "model.xgb.json"))
    return onnx_path, model


def _rows(n: int, seed: int = 9) -> np.ndarray:
    x = _frame(n, seed).to_numpy(dtype=np.float32)
    x[::7, 1] = np.nan  # missing values take the trees' default branches on both paths
    x[::11, 3] = np.nan
    return x


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    return _export(tmp_path_factory.mktemp("crossover"), list(MODEL_FEATURES))


@pytest.mark.parametrize("n", [NATIVE_FROM_ROWS, 2048])
def test_native_path_matches_onnx_and_the_trained_model_at_and_above_the_crossover(
    exported: tuple[Path, object], n: int
) -> None:
    onnx_path, trained = exported
    model = large_batch_model(onnx_path, MODEL_FEATURES)
    assert isinstance(model, CrossoverModel)
    x = _rows(n)
    native = model.predict(x)
    assert model._booster is not None, "the native path did not run at the crossover size"
    onnx = OnnxModel(onnx_path).predict(x)
    reference = trained.predict_proba(pd.DataFrame(x, columns=MODEL_FEATURES))[:, 1]  # type: ignore[attr-defined]
    assert native.shape == (n,)
    assert native.dtype == np.float64
    assert np.max(np.abs(native - onnx)) <= PARITY_ATOL
    assert np.max(np.abs(native - reference)) <= PARITY_ATOL


def test_below_the_crossover_onnx_runtime_scores(exported: tuple[Path, object]) -> None:
    onnx_path, _ = exported
    model = large_batch_model(onnx_path, MODEL_FEATURES)
    x = _rows(NATIVE_FROM_ROWS - 1)
    assert np.array_equal(model.predict(x), OnnxModel(onnx_path).predict(x))
    assert model._booster is None  # type: ignore[union-attr]  # XGBoost never loaded


def test_a_native_model_in_another_column_order_is_refused_not_reordered(tmp_path: Path) -> None:
    """The card's order is the ONNX inputs' order; a native model trained on another order is
    refused at its first large call. Reordering by name would make a wrong card score
    differently below and above the crossover (ONNX reads by position)."""
    permuted = list(reversed(MODEL_FEATURES))
    onnx_path, trained = _export(tmp_path, permuted)
    x = _rows(600)[:, [MODEL_FEATURES.index(c) for c in permuted]]  # in the card's order
    same = CrossoverModel(OnnxModel(onnx_path), tmp_path / "model.xgb.json", permuted)
    reference = trained.predict_proba(pd.DataFrame(x, columns=permuted))[:, 1]  # type: ignore[attr-defined]
    assert np.max(np.abs(same.predict(x) - reference)) <= PARITY_ATOL
    other = CrossoverModel(OnnxModel(onnx_path), tmp_path / "model.xgb.json", MODEL_FEATURES)
    small = other.predict(x[: NATIVE_FROM_ROWS - 1])  # ONNX below the crossover: no check
    assert small.shape == (NATIVE_FROM_ROWS - 1,)
    with pytest.raises(ValueError, match="same names, same order"):
        other.predict(x)


def test_a_native_model_with_other_features_is_refused(
    tmp_path: Path, exported: tuple[Path, object]
) -> None:
    onnx_path, _ = exported
    names = [*MODEL_FEATURES[:-1], "not_a_feature"]
    model = CrossoverModel(
        OnnxModel(onnx_path), onnx_path.with_suffix(".xgb.json"), names, native_from_rows=1
    )
    with pytest.raises(ValueError, match="do not match the ONNX inputs"):
        model.predict(_rows(4))


def test_without_a_native_model_large_batches_stay_on_onnx(
    tmp_path: Path, exported: tuple[Path, object]
) -> None:
    onnx_path, _ = exported
    alone = tmp_path / "alone.onnx"
    alone.write_bytes(onnx_path.read_bytes())
    assert isinstance(large_batch_model(alone, MODEL_FEATURES), OnnxModel)
    with pytest.raises(FileNotFoundError):
        CrossoverModel(OnnxModel(alone), tmp_path / "missing.xgb.json", MODEL_FEATURES)
    with pytest.raises(ValueError, match="native_from_rows"):
        CrossoverModel(
            OnnxModel(alone), onnx_path.with_suffix(".xgb.json"), MODEL_FEATURES, native_from_rows=0
        )
