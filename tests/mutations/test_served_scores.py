"""The gates over what the server answered: ``model_parity`` of served scores and
``prediction_drift`` of the served score distribution.

Each window is served by its own instance of the real app (``create_app``, the reference
champion's ONNX model) under uvicorn on 127.0.0.1 with its own prediction log in a temporary
directory, features from the real ``OnlineAggregator`` (``StreamStateSource``): a fixed
sample of users, ALL their live transactions over the whole week (hour_of_day and
day_of_week are model inputs: a shorter window drifts by design), scored in time order, each
chunk pushed to the stream state after it is scored.

- ``model_parity`` (``test_served_scores_match_offline_onnx_scores``): the defect is a server
  that assembles the model's input vector in another order than training (the card's
  feature list sorted by name, as a dict/JSON round-trip with sorted keys would leave it).
  The reference is what the gate computes: the champion's ONNX score of the OFFLINE features
  (the point-in-time join over history + live) of the same transactions.
- ``prediction_drift`` (``test_no_prediction_drift_in_serving_window``): the live week
  regenerated with the generator's drift switch on half-way (amounts scaled, a new merchant
  category) shifts the served scores against the reference scores frozen at training; the
  same users and week without the switch stay quiet.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

pytestmark = [
    pytest.mark.filterwarnings("ignore:fetch_arrow_table\\(\\) is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:On demand feature view is an experimental:RuntimeWarning"),
]

SERVED_USERS = 100  # users whose whole live week is served (a few hundred requests)
CHUNK = 50


def _serve_week(
    kit: Any,
    workdir: Path,
    ref_settings: Any,
    reference_system: Any,
    champion: Any,
    week: pd.DataFrame,
    *,
    feature_names: list[str],
) -> pd.DataFrame:
    """Serve ``week`` (time order) with a model whose inputs are assembled in
    ``feature_names`` order; the prediction-log rows of every transaction, in ``week`` order."""
    from mlref.features.online import warm_started
    from mlref.serve.app import ServeConfig, create_app
    from mlref.serve.predictor import served_model_from_card

    settings = ref_settings.with_(workdir=workdir)
    settings.ensure_dirs()
    # the stream processor's state after the history, read directly by StreamStateSource
    # (history rows included, so warm-started over window + TTL: exact for every first read)
    aggregator = warm_started(reference_system.events)
    card = {**champion.card, "feature_names": feature_names}
    served = served_model_from_card(champion.onnx_path, card, champion.version)
    # every request of the week must be answered and logged (the comparison is row for row):
    # deadline admission would shed a burst of 8 on a loaded machine; it has its own tests
    config = dataclasses.replace(
        ServeConfig.from_settings(settings, shadow_alias=None), admission=False
    )
    app = create_app(
        settings, model=served, features=kit.StreamStateSource(aggregator), config=config
    )
    with kit.serve_app(app) as url:
        for chunk in kit.replay_chunks(week, CHUNK):
            _, statuses = kit.timed_requests(url, chunk, concurrency=8)
            assert statuses == [200] * len(chunk)
            aggregator.process(chunk)
    log = kit.wait_for_log(settings.prediction_log, set(week["transaction_id"].astype(str)))
    return log.set_index("transaction_id").loc[week["transaction_id"].astype(str)].reset_index()


@pytest.fixture(scope="module")
def served_weeks(
    tmp_path_factory: pytest.TempPathFactory,
    ref_settings: Any,
    reference_system: Any,
    champion: Any,
    live_traffic: Any,
    mutation_kit: Any,
) -> dict[str, Any]:
    """The same users' live week served three times: clean, drifted, and clean by a server
    that assembles the inputs in sorted-name order."""
    clean, drifted = live_traffic(False), live_traffic(True)
    rng = np.random.default_rng(5)
    users = rng.choice(np.sort(clean["user_id"].unique()), size=SERVED_USERS, replace=False)

    def week_of(frame: pd.DataFrame) -> pd.DataFrame:
        mine = frame.loc[frame["user_id"].isin(users)]
        return mine.sort_values(["event_timestamp", "transaction_id"], kind="mergesort")

    names = list(champion.card["feature_names"])
    runs = {
        "clean": (week_of(clean), names),
        "drifted": (week_of(drifted), names),
        "sorted_inputs": (week_of(clean), sorted(names)),
    }
    served = {
        name: _serve_week(
            mutation_kit,
            tmp_path_factory.mktemp(f"served-{name}"),
            ref_settings,
            reference_system,
            champion,
            week,
            feature_names=order,
        )
        for name, (week, order) in runs.items()
    }
    return {"week": runs["clean"][0], "drift_from": drifted.attrs["drift_from"], **served}


def _offline_onnx_scores(reference_system: Any, champion: Any, week: pd.DataFrame) -> np.ndarray:
    """The gate's reference: ONNX scores of the training path's features of ``week``
    (point-in-time over the whole log, inputs in the card's order)."""
    from mlref.export import OnnxScorer
    from mlref.features.offline import batch_model_features
    from mlref.train.fit import feature_matrix

    log = pd.concat([reference_system.events, reference_system.live], ignore_index=True)
    features = batch_model_features(log, week)
    scorer = OnnxScorer(champion.onnx_path)
    return scorer.score(feature_matrix(features, champion.card["feature_names"])).astype(np.float64)


def test_clean_served_scores_match_offline_onnx_scores(
    served_weeks: dict[str, Any], reference_system: Any, champion: Any
) -> None:
    from mlgates.gates import model_parity

    week = served_weeks["week"]
    assert len(week) >= 200
    reference = _offline_onnx_scores(reference_system, champion, week)
    result = model_parity(reference, served_weeks["clean"]["score"].to_numpy())
    assert result.verdict == "pass", result.explain()


def test_inputs_in_another_order_fail_model_parity(
    served_weeks: dict[str, Any], reference_system: Any, champion: Any
) -> None:
    from mlgates.gates import model_parity

    names = list(champion.card["feature_names"])
    assert sorted(names) != names, "the defect needs a card whose order is not sorted"
    week = served_weeks["week"]
    reference = _offline_onnx_scores(reference_system, champion, week)
    served = served_weeks["sorted_inputs"]["score"].to_numpy()
    result = model_parity(reference, served)

    assert result.verdict == "fail", result.explain()
    assert result.measured > 0.01  # far beyond float32 noise: other inputs, other scores
    # independent of the server: the same ONNX model fed the sorted columns gives the
    # served scores (the cause is the order, not the model or the features)
    from mlref.export import OnnxScorer
    from mlref.features.offline import batch_model_features

    log = pd.concat([reference_system.events, reference_system.live], ignore_index=True)
    features = batch_model_features(log, week)[sorted(names)].to_numpy(dtype=np.float32)
    np.testing.assert_allclose(
        OnnxScorer(champion.onnx_path).score(features), served, atol=1e-5, rtol=0
    )


def test_clean_served_week_has_no_prediction_drift(
    served_weeks: dict[str, Any], champion: Any
) -> None:
    from mlgates.gates import prediction_drift

    reference = np.load(champion.reference_scores_path)
    result = prediction_drift(reference, served_weeks["clean"]["score"].to_numpy())
    # a warning (a mean shift within noise on a few hundred rows) does not block the deploy
    assert result.passed, result.explain()
    assert result.verdict in ("pass", "warn")


def test_a_drifted_live_week_fails_prediction_drift(
    served_weeks: dict[str, Any], champion: Any
) -> None:
    from mlgates.gates import prediction_drift

    reference = np.load(champion.reference_scores_path)
    clean = served_weeks["clean"]["score"].to_numpy()
    drifted = served_weeks["drifted"]["score"].to_numpy()
    result = prediction_drift(reference, drifted)

    assert result.verdict == "fail", result.explain()
    # the switch is the cause: identical requests before it are scored identically
    week = served_weeks["week"]
    before = (week["event_timestamp"] < pd.Timestamp(served_weeks["drift_from"])).to_numpy()
    assert before.any()
    assert (~before).any()
    np.testing.assert_array_equal(drifted[before], clean[before])
    assert drifted[~before].mean() > clean[~before].mean()
