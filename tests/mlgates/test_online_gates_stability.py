"""numeric_stability (monitor-5): each defect it names, on plain arrays and frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlgates import GateInputError, numeric_stability
from mlgates.gates import GATES


def _clean(n: int = 500, seed: int = 0) -> tuple[np.ndarray, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    features = pd.DataFrame(
        {
            "amount": rng.lognormal(3, 1, n),
            "hour_of_day": rng.integers(0, 24, n).astype(float),
            "merchant": rng.choice(["a", "b"], n),  # not numeric: not checked
        }
    )
    return rng.beta(1, 20, n), features


def test_clean_scores_and_features_pass() -> None:
    scores, features = _clean()
    result = numeric_stability(scores, features, feature_ranges={"hour_of_day": (0, 23)})
    assert result.verdict == "pass", result.explain()
    assert result.measured == 0
    assert result.rubric == ("monitor-5",)
    assert result.details["features_checked"] == 2


def test_a_nan_score_fails_with_its_row() -> None:
    scores, _ = _clean()
    scores[17] = np.nan
    scores[40] = np.inf
    result = numeric_stability(scores)
    assert result.verdict == "fail"
    assert result.measured == 2
    assert "2 NaN/inf score(s) (rows [17, 40])" in result.message
    assert "never act on a NaN score" in result.explain()


def test_a_nan_injected_into_a_feature_fails_naming_it() -> None:
    scores, features = _clean()
    features.loc[5, "amount"] = np.nan
    result = numeric_stability(scores, features)
    assert result.verdict == "fail"
    assert "feature 'amount': 1 nan (rows [5])" in result.message
    assert result.details["features"]["amount"]["nan"] == 1
    # NaN as a declared missing-value marker is fine; inf never is
    assert numeric_stability(scores, features, allow_missing=["amount"]).verdict == "pass"
    features.loc[6, "amount"] = -np.inf
    assert numeric_stability(scores, features, allow_missing=["amount"]).verdict == "fail"


def test_out_of_range_values_fail() -> None:
    scores, features = _clean()
    features.loc[[3, 9], "hour_of_day"] = 24.0
    result = numeric_stability(scores, features, feature_ranges={"hour_of_day": (0, 23)})
    assert result.verdict == "fail"
    assert "feature 'hour_of_day': 2 out of range (rows [3, 9])" in result.message
    scores[0] = 1.5  # a margin where a probability was expected
    result = numeric_stability(scores)
    assert result.verdict == "fail"
    assert "outside [0, 1]" in result.message


def test_constant_scores_fail_and_saturated_ones_warn() -> None:
    assert numeric_stability(np.full(200, 0.3)).verdict == "fail"
    assert numeric_stability(np.full(50, 0.3)).verdict == "pass"  # below min_rows
    scores, _ = _clean()
    scores[:100] = 1.0  # 20% at the top end
    result = numeric_stability(scores)
    assert result.verdict == "warn"
    assert "20.0% of scores saturated" in result.message
    assert numeric_stability(scores, max_saturated_share=0.25).verdict == "pass"


def test_default_share_warns() -> None:
    scores, _ = _clean()
    defaulted = np.zeros(scores.size, bool)
    defaulted[:50] = True
    result = numeric_stability(scores, defaulted=defaulted)
    assert result.verdict == "warn"
    assert "10.0% of requests served default features" in result.message
    assert numeric_stability(scores, defaulted=defaulted, max_default_share=0.2).verdict == "pass"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"score_range": (1, 0)}, "score_range"),
        ({"max_saturated_share": 5}, "max_saturated_share"),
        ({"defaulted": [True]}, "defaulted"),
        ({"feature_ranges": {"x": (0, 1)}}, "need features"),
        ({"min_rows": 1}, "min_rows"),
    ],
)
def test_bad_input_names_the_argument(kwargs: dict, match: str) -> None:
    with pytest.raises(GateInputError, match=match):
        numeric_stability(np.linspace(0, 1, 10), **kwargs)


def test_features_must_match_scores() -> None:
    scores, features = _clean()
    with pytest.raises(GateInputError, match="features has 499 rows"):
        numeric_stability(scores, features.iloc[1:])
    with pytest.raises(GateInputError, match="not in features"):
        numeric_stability(scores, features, feature_ranges={"nope": (0, 1)})


def test_registered() -> None:
    assert GATES["numeric_stability"] is numeric_stability
