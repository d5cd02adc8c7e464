"""Export parity across the training/serving boundary: the registry champion's ONNX file,
served as the server serves it, reproduces its native XGBoost model fed as training feeds it.

Each side is fed by its own path, so a dtype skew between them shows: the native model reads
the training frame's model features as Feast's historical retrieval built them (float64
pandas columns, handed to XGBoost as they are); the ONNX model is loaded by the server's
loader (``served_model_from_card``) and fed by the server's scoring code
(``Scorer.score_batch``: feature lookup -> ``check_features`` -> the cast to the model's
input -> ``OnnxModel.predict``). The lookup answers with the same frame's values: whether
online features equal offline ones is the skew gates' question; this one covers everything
from the feature values to the score. tests/mutations/test_model.py shows a serving path that
casts a feature to float16, or to an integer, failing it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np
    import pandas as pd

    from mlgates.fixture import Gates
    from mlref.pipeline import ReferenceSystem
    from mlref.registry import LoadedModel
    from mlref.serve.features import FeatureSource, RequestBatch
    from mlref.serve.schemas import Transaction


class TrainingRows:
    """A ``FeatureSource`` answering request ``row-<i>`` with row ``i`` of ``rows`` (the model
    features with the dtypes the frame holds; nobody is an unknown user)."""

    def __init__(self, rows: pd.DataFrame) -> None:
        self.columns = {name: rows[name].to_numpy() for name in rows.columns}

    def lookup(self, requests: RequestBatch) -> dict[str, np.ndarray]:
        import numpy as np

        at = np.array([int(t.removeprefix("row-")) for t in requests.transaction_id])
        out = {name: values[at] for name, values in self.columns.items()}
        out["unknown_user"] = np.zeros(at.size, dtype=bool)
        return out


def requests(n: int) -> list[Transaction]:
    """``n`` valid requests ``row-0 .. row-<n-1>`` (their fields are not model inputs here:
    the feature source answers by id)."""
    import datetime as dt

    from mlref.serve.schemas import Transaction

    at = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
    return [
        Transaction(
            transaction_id=f"row-{i}",
            user_id=0,
            amount=1.0,
            merchant_category="grocery",
            event_timestamp=at,
        )
        for i in range(n)
    ]


def training_and_serving_scores(
    champion: LoadedModel,
    frame: pd.DataFrame,
    features: Callable[[pd.DataFrame], FeatureSource] = TrainingRows,
) -> tuple[np.ndarray, np.ndarray]:
    """(native XGBoost on the training path, ONNX on the serving path) on every row of
    ``frame`` plus edge inputs (NaN/inf/extremes, every split threshold and one float32 step
    below it). ``features(rows)`` is the serving side's lookup of those rows (the mutation
    proofs put a defective one here)."""
    import numpy as np
    import pandas as pd
    import xgboost as xgb

    from mlref.export import edge_inputs
    from mlref.serve.predictor import Scorer, served_model_from_card

    native = xgb.XGBClassifier()
    native.load_model(str(champion.native_path))
    booster = native.get_booster()
    trained = list(booster.feature_names or [])
    assert trained, "the native model carries no feature names"
    rows = frame[trained]
    edges = edge_inputs(native, rows.to_numpy(dtype=np.float32), seed=0)
    rows = pd.concat(
        [rows, pd.DataFrame(edges, columns=trained).astype(rows.dtypes.to_dict())],
        ignore_index=True,
    )
    # training path: the frame's columns in their own dtypes, as training hands them over
    reference = booster.inplace_predict(rows, validate_features=True)
    # serving path: the server's loader and scoring code, fed the same values
    served = served_model_from_card(champion.onnx_path, champion.card, champion.version)
    scored = Scorer(served, features(rows)).score_batch(requests(len(rows)))
    served_scores = np.array([s.score for s in scored], dtype=np.float64)
    return np.asarray(reference, dtype=np.float64), served_scores


@pytest.mark.mlgate("model_parity")
def test_onnx_served_matches_native_xgboost_trained(
    mlgates: Gates, reference_system: ReferenceSystem, champion: LoadedModel
) -> None:
    """Native XGBoost (the registered ``model.xgb.json``) on the training frame's float64
    columns and the registered ``model.onnx`` on what the server's scoring code feeds ONNX
    Runtime give the same scores on every training-frame row plus edge inputs."""
    from mlgates.gates import model_parity

    reference, served = training_and_serving_scores(champion, reference_system.frame)
    mlgates.run(model_parity, reference, served)
