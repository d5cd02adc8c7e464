"""Model gates: a worse candidate, an undecidable comparison, a reordered ONNX export.

The champion is the reference system's registered ONNX model, scored on the latest labelled
window exactly as promotion scores it. Candidates are trained here from a private copy of
the reference training rows with the reference ``TrainConfig``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlref.data.columns import LABEL

SMALL_SAMPLE_ROWS = 60
SMALL_SAMPLE_POSITIVES = 6


def _train(reference_system: Any, frame: pd.DataFrame, **hyperparams: Any) -> Any:
    from mlref.train import train

    config = reference_system.run.result.config
    if hyperparams:
        config = config.with_(hyperparams={**dict(config.hyperparams), **hyperparams})
    return train(config, frame, check_data_version=False)


@pytest.fixture(scope="module")
def shuffled_label_model(reference_system: Any) -> Any:
    """The defect: the candidate learned from labels shuffled across rows."""
    frame = reference_system.frame.copy()
    rng = np.random.default_rng(0)
    frame[LABEL] = rng.permutation(frame[LABEL].to_numpy())
    return _train(reference_system, frame)


@pytest.fixture(scope="module")
def stump_model(reference_system: Any) -> Any:
    """The defect: far fewer trees (two stumps)."""
    return _train(
        reference_system,
        reference_system.frame.copy(),
        n_estimators=2,
        max_depth=1,
    )


@pytest.fixture(scope="module")
def similar_model(reference_system: Any) -> Any:
    """A comparable candidate: same data, other tree settings (not the champion's trees)."""
    return _train(reference_system, reference_system.frame.copy(), max_depth=3, subsample=0.7)


def test_a_retrain_of_the_champion_is_not_worse(
    reference_system: Any, evaluation_window: pd.DataFrame, champion_scores: np.ndarray
) -> None:
    from mlgates.gates import no_worse

    retrain = _train(reference_system, reference_system.frame.copy())
    result = no_worse(
        evaluation_window[LABEL].to_numpy(), champion_scores, retrain.scores(evaluation_window)
    )
    assert result.verdict == "pass", result.explain()


@pytest.mark.parametrize("defect", ["shuffled_label_model", "stump_model"])
def test_a_worse_candidate_fails_no_worse(
    defect: str,
    request: pytest.FixtureRequest,
    evaluation_window: pd.DataFrame,
    champion_scores: np.ndarray,
) -> None:
    from mlgates.gates import no_worse
    from mlgates.metrics import roc_auc

    candidate = request.getfixturevalue(defect)
    y = evaluation_window[LABEL].to_numpy()
    scores = candidate.scores(evaluation_window)
    result = no_worse(y, champion_scores, scores)

    assert result.verdict == "fail", result.explain()
    assert "worse than the champion by more than the margin" in result.message
    assert result.details["ci_high"] < -0.005
    # the gate's figures are the metric's (independent: sklearn)
    from sklearn.metrics import roc_auc_score

    assert result.details["candidate"] == pytest.approx(roc_auc_score(y, scores), abs=1e-9)
    assert result.details["champion"] == pytest.approx(roc_auc(y, champion_scores), abs=1e-12)
    assert result.details["candidate"] < result.details["champion"] - 0.1


def test_too_few_rows_is_inconclusive_not_pass(
    similar_model: Any, evaluation_window: pd.DataFrame, champion_scores: np.ndarray
) -> None:
    from mlgates.gates import no_worse

    y_all = evaluation_window[LABEL].to_numpy()
    rng = np.random.default_rng(1)
    pos = rng.choice(np.flatnonzero(y_all == 1), SMALL_SAMPLE_POSITIVES, replace=False)
    neg = rng.choice(
        np.flatnonzero(y_all == 0), SMALL_SAMPLE_ROWS - SMALL_SAMPLE_POSITIVES, replace=False
    )
    rows = np.sort(np.r_[pos, neg])
    candidate = similar_model.scores(evaluation_window)

    full = no_worse(y_all, champion_scores, candidate)
    small = no_worse(y_all[rows], champion_scores[rows], candidate[rows])

    assert small.verdict == "inconclusive", small.explain()
    assert "inconclusive" in small.message
    assert small.details["rows"] == SMALL_SAMPLE_ROWS
    assert small.details["rows_to_settle"] is None or small.details["rows_to_settle"] > 60
    # the CI on 60 rows is far wider than on the whole window: the sample size is the cause
    small_width = small.details["ci_high"] - small.details["ci_low"]
    full_width = full.details["ci_high"] - full.details["ci_low"]
    assert small_width > 3 * full_width


def test_export_in_the_training_order_keeps_parity(
    reference_system: Any, evaluation_window: pd.DataFrame
) -> None:
    from mlref.export import check_parity, to_onnx

    model = reference_system.run.result.model
    names = list(reference_system.run.result.feature_names)
    payload = to_onnx(model, names).SerializeToString()
    result = check_parity(model, payload, evaluation_window, names)
    assert result.verdict == "pass", result.explain()


def test_features_reordered_in_the_export_fail_model_parity(
    reference_system: Any, evaluation_window: pd.DataFrame, tmp_path: Any
) -> None:
    from mlgates.gates import model_parity
    from mlref.export import ExportParityError, OnnxScorer, check_parity, export_onnx, to_onnx
    from mlref.train.fit import native_scores

    model = reference_system.run.result.model
    names = list(reference_system.run.result.feature_names)
    reordered = names[::-1]
    payload = to_onnx(model, reordered).SerializeToString()

    # serving scores by the order the graph declares: every column lands in the wrong slot
    served = OnnxScorer(payload).score_frame(evaluation_window)
    result = model_parity(native_scores(model, evaluation_window), served)
    assert result.verdict == "fail"
    assert "differ by more than" in result.message
    assert result.details["rows_over_tolerance"] > 0.5 * len(evaluation_window)

    assert check_parity(model, payload, evaluation_window, reordered).verdict == "fail"
    target = tmp_path / "model.onnx"
    with pytest.raises(ExportParityError, match="declared feature order differs") as err:
        export_onnx(model, target, reordered, parity_data=evaluation_window)
    assert names[0] in str(err.value)
    assert not target.exists()


def test_training_that_is_not_reproducible_fails_the_reproducibility_gate(
    reference_system: Any,
) -> None:
    """The infra-1 gate (tests/gates/test_infra_gates.py) compares two trainings of one
    config bit for bit; a training whose randomness is not pinned (here: another seed with
    row and column subsampling, as an unseeded run would draw) must fail it."""
    from mlgates.gates import model_parity
    from mlref.train.fit import train

    first = reference_system.run.result
    config = first.config
    unpinned = config.with_(
        seed=config.seed + 1,
        hyperparams={**dict(config.hyperparams), "subsample": 0.8, "colsample_bytree": 0.8},
    )
    again = train(unpinned, reference_system.frame)
    window = first.split.test
    result = model_parity(first.scores(window), again.scores(window), atol=0.0)
    assert result.verdict == "fail", result.explain()
    assert "differ by more than" in result.message, result.message
