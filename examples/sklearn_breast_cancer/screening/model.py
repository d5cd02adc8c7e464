"""The champion (in production) and a candidate screening model.

Both are scikit-learn pipelines (standardise, then logistic regression) trained on the
batch features. The champion is the older, smaller model; the candidate reads every
model feature. ``predict_case`` is the serving call the latency gate times.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from screening.data import check_defect
from screening.features import model_features, row_features

CHAMPION_FEATURES: tuple[str, ...] = ("mean radius", "mean texture", "mean smoothness")


def _pipeline() -> Pipeline:
    return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))


def train_champion(features: pd.DataFrame, labels: pd.Series) -> Pipeline:
    """The model in production: three measurements."""
    return _pipeline().fit(features[list(CHAMPION_FEATURES)], labels.to_numpy())


def train_candidate(
    features: pd.DataFrame, labels: pd.Series, defect: str | None = None
) -> Pipeline:
    """The model up for promotion: every model feature."""
    y = labels.to_numpy()
    if check_defect(defect) == "worse":
        # A join bug: labels attached to the neighbouring case.
        y = np.roll(y, 1)
    return _pipeline().fit(features[model_features(defect)], y)


def score(model: Pipeline, features: pd.DataFrame) -> np.ndarray:
    """Probability of malignancy for each row (the model picks its own columns)."""
    names = list(model.feature_names_in_)
    return model.predict_proba(features[names])[:, 1]


def predict_case(model: Pipeline, request: Mapping[str, Any], defect: str | None = None) -> float:
    """Serve one request: row features, then the model."""
    row = row_features(request, defect)
    names = list(model.feature_names_in_)
    frame = pd.DataFrame([[row[n] for n in names]], columns=names)
    return float(model.predict_proba(frame)[0, 1])
