"""The deploy gates of the screening model. Run with ``pytest --mlgates``.

Each test is marked ``mlgate`` and runs one gate through the ``mlgates`` fixture, which
fills thresholds from ``[tool.mlgates.<gate>]`` in pyproject.toml, records the result for
the summary and the report, and fails the test with the gate's explanation.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from mlgates import (
    FrozenBins,
    entity_overlap,
    feature_parity,
    freshness,
    latency_budget,
    no_worse,
    point_in_time,
    prediction_drift,
    psi_drift,
    target_leak,
    time_split,
)
from sklearn.pipeline import Pipeline

from screening import data, features, model

# --------------------------------------------------------------------------- leakage


@pytest.mark.mlgate("time_split")
def test_split_is_ordered_in_time(mlgates, split: data.Split) -> None:
    # The embargo is the label delay: a pathology result arrives up to 14 days late.
    mlgates.run(
        time_split, split.train, split.test, time_col=data.EVENT_TIME, embargo=data.LABEL_DELAY
    )


@pytest.mark.mlgate("entity_overlap")
def test_no_case_in_both_splits(mlgates, split: data.Split) -> None:
    mlgates.run(entity_overlap, split.train, split.test, key=data.KEY)


@pytest.mark.mlgate("point_in_time")
def test_features_recorded_before_diagnosis(mlgates, split: data.Split, defect) -> None:
    mlgates.run(point_in_time, split.train, data.EVENT_TIME, data.feature_times(defect))


@pytest.mark.mlgate("target_leak")
def test_no_single_feature_gives_the_label_away(
    mlgates, split: data.Split, train_features: pd.DataFrame, defect
) -> None:
    frame = train_features.assign(**{data.LABEL: split.train[data.LABEL].to_numpy()})
    mlgates.run(target_leak, frame, data.LABEL, features.model_features(defect))


# --------------------------------------------------------------------------- quality


@pytest.mark.mlgate("no_worse")
def test_candidate_no_worse_than_champion(
    mlgates,
    split: data.Split,
    test_features: pd.DataFrame,
    test_scores: tuple[np.ndarray, np.ndarray],
) -> None:
    champion_scores, candidate_scores = test_scores
    # The candidate must hold up on regular and irregular cell boundaries alike (each
    # slice gets its own interval, Holm-corrected, held to slice_margin). A slice needs
    # enough cases of both classes to be judged (min_class_rows, 30): slicing by tumour
    # size leaves about 13 malignant small tumours among 242 test cases, too few to tell.
    fractal = test_features["mean fractal dimension"]
    boundary = np.where(fractal < fractal.median(), "regular boundary", "irregular boundary")
    mlgates.run(
        no_worse,
        split.test[data.LABEL].to_numpy(),
        champion_scores,
        candidate_scores,
        slices=boundary,
    )


@pytest.mark.mlgate("no_worse", metric="log_loss", margin=0.05)
def test_candidate_probabilities_no_worse(
    mlgates, split: data.Split, test_scores: tuple[np.ndarray, np.ndarray]
) -> None:
    # The marker overrides [tool.mlgates.no_worse] for this test: log loss, wider margin.
    champion_scores, candidate_scores = test_scores
    mlgates.run(no_worse, split.test[data.LABEL].to_numpy(), champion_scores, candidate_scores)


# --------------------------------------------------------------------------- serving


@pytest.mark.mlgate("feature_parity")
def test_serving_features_match_training(mlgates, requests: pd.DataFrame, defect) -> None:
    offline = features.batch_features(requests, defect)
    online = features.online_features(requests, defect)
    mlgates.run(feature_parity, offline, online, keys=data.KEY)


@pytest.mark.mlgate("latency_budget")
def test_single_case_latency(mlgates, candidate: Pipeline, requests: pd.DataFrame, defect) -> None:
    n = int(mlgates.setting("latency_requests", 300))
    records = requests.to_dict(orient="records")
    for record in records[:10]:  # warm up: first calls pay for lazy imports and caches
        model.predict_case(candidate, record, defect)
    samples_ms = np.empty(n)
    for i in range(n):
        record = records[i % len(records)]
        start = time.perf_counter()
        model.predict_case(candidate, record, defect)
        samples_ms[i] = (time.perf_counter() - start) * 1000.0
    mlgates.run(latency_budget, samples_ms)


# --------------------------------------------------------------------------- monitoring


@pytest.mark.mlgate("psi_drift")
def test_production_inputs_not_drifted(
    mlgates, train_features: pd.DataFrame, requests: pd.DataFrame, defect, tmp_path
) -> None:
    names = features.model_features(defect)
    # Freeze the bins on the training data and save them: production monitoring loads
    # the same JSON, so CI and monitoring compute the same PSI.
    bins = FrozenBins.fit(train_features[names], n_bins=int(mlgates.setting("drift_bins", 10)))
    path = bins.save(tmp_path / "drift_bins.json")
    current = features.online_features(requests, defect)
    mlgates.run(psi_drift, None, current[names], bins=path)


@pytest.mark.mlgate("prediction_drift")
def test_production_scores_not_drifted(
    mlgates, champion: Pipeline, train_features: pd.DataFrame, requests: pd.DataFrame, defect
) -> None:
    # The champion serves today: its scores on production requests vs. on training data.
    current = features.online_features(requests, defect)
    mlgates.run(
        prediction_drift,
        model.score(champion, train_features),
        model.score(champion, current),
        n_bins=int(mlgates.setting("drift_bins", 10)),
    )


@pytest.mark.mlgate("freshness")
def test_request_log_is_fresh(mlgates, requests: pd.DataFrame) -> None:
    # max_age has no default in the gate, so it is a free-form setting here
    max_age = mlgates.setting("request_log_max_age", "1D")
    mlgates.run(freshness, requests["received_at"], as_of=data.SNAPSHOT_AT, max_age=max_age)
