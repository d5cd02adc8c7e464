"""explanation_consistency (infra-5): hand-built additive explanations and XGBoost's own
pred_contribs (an independent implementation of the contributions)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlgates import GateInputError, explanation_consistency
from mlgates.gates import GATES


def _linear(n: int = 200, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, float, np.ndarray]:
    """Features, weights, bias and the margin of a linear model (contributions x * w)."""
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(rng.normal(size=(n, 3)), columns=["amount", "velocity", "hour"])
    w = np.array([0.8, -1.2, 0.3])
    return x, w, -2.0, x.to_numpy() @ w - 2.0


def test_additive_contributions_pass() -> None:
    x, w, b, margin = _linear()
    result = explanation_consistency(x * w, margin, bias=b)
    assert result.verdict == "pass", result.explain()
    assert result.rubric == ("infra-5",)
    assert result.measured is not None
    assert result.measured <= 1e-12


def test_contributions_on_the_wrong_features_fail_naming_rows() -> None:
    x, w, b, margin = _linear()
    stale = x.copy()
    stale.loc[7, "velocity"] += 0.5  # explained with a stale feature value for one request
    result = explanation_consistency(stale * w, margin, bias=b)
    assert result.verdict == "fail"
    assert result.details["rows_over_tolerance"] == 1
    worst = result.details["worst_rows"][0]
    assert worst["row"] == 7
    assert worst["error"] == pytest.approx(0.6)
    # 0.5 more velocity at weight -1.2: the explanation sums 0.6 under the served margin
    assert worst["reconstructed"] - worst["served_margin"] == pytest.approx(-0.6)
    assert "row 7: contributions + bias" in result.message
    shuffled = (x * w).sample(frac=1.0, random_state=0).reset_index(drop=True)
    assert explanation_consistency(shuffled, margin, bias=b).verdict == "fail"


def test_probabilities_through_the_logit_link() -> None:
    x, w, b, margin = _linear()
    prob = 1.0 / (1.0 + np.exp(-margin))
    assert explanation_consistency(x * w, prob, bias=b, link="logit").verdict == "pass"
    # a probability read as a margin is the classic mix-up
    assert explanation_consistency(x * w, prob, bias=b).verdict == "fail"


def test_bias_as_last_column_and_nan_contribution() -> None:
    x, w, b, margin = _linear()
    contribs = (x * w).to_numpy()
    with_bias = np.column_stack([contribs, np.full(len(x), b)])
    assert explanation_consistency(with_bias, margin).verdict == "pass"
    with_bias[3, 0] = np.nan
    result = explanation_consistency(with_bias, margin)
    assert result.verdict == "fail"
    assert result.details["worst_rows"][0]["row"] == 3


def test_xgboost_pred_contribs_reproduce_its_margin() -> None:
    xgb = pytest.importorskip("xgboost")
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 4)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(0, 0.5, 400) > 0).astype(int)
    booster = xgb.train(
        {"max_depth": 3, "eta": 0.3, "objective": "binary:logistic", "nthread": 1},
        xgb.DMatrix(x, label=y),
        num_boost_round=20,
    )
    matrix = xgb.DMatrix(x)
    contribs = booster.predict(matrix, pred_contribs=True)  # last column: bias
    margin = booster.predict(matrix, output_margin=True)
    result = explanation_consistency(contribs, margin)
    assert result.verdict == "pass", result.explain()
    # explained on the wrong rows' features: fails
    wrong = booster.predict(xgb.DMatrix(x[::-1].copy()), pred_contribs=True)
    assert explanation_consistency(wrong, margin).verdict == "fail"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"tolerance": -1.0}, "tolerance"),
        ({"link": "probit"}, "link"),
        ({"bias": [0.0, 1.0]}, "bias"),
        ({"served_scores": [1.0, 2.0]}, "served_scores has 2 rows"),
        ({"contributions": np.ones(5)}, "contributions must be a non-empty 2-d"),
    ],
)
def test_bad_input_names_the_argument(kwargs: dict, match: str) -> None:
    args = {"contributions": np.ones((5, 2)), "served_scores": np.full(5, 2.0), "bias": 0.0}
    with pytest.raises(GateInputError, match=match):
        explanation_consistency(**{**args, **kwargs})


def test_registered() -> None:
    assert GATES["explanation_consistency"] is explanation_consistency
