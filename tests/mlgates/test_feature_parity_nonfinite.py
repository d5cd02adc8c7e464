"""feature_parity on infinite values: an infinity matches only the same infinity.

A ratio feature (amount / a tiny average) is +inf on one path; the relative tolerance
``rtol * |offline|`` is then infinite and used to accept any online value.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlgates.gates import feature_parity


@pytest.mark.parametrize(
    ("offline", "online", "verdict"),
    [
        (np.inf, np.inf, "pass"),
        (-np.inf, -np.inf, "pass"),
        (np.inf, -np.inf, "fail"),
        (np.inf, 1.0, "fail"),
        (1.0, np.inf, "fail"),
        (-np.inf, 0.0, "fail"),
        (np.inf, np.nan, "fail"),
        (np.nan, np.nan, "pass"),
    ],
)
def test_an_infinity_matches_only_itself(offline: float, online: float, verdict: str) -> None:
    result = feature_parity(
        pd.DataFrame({"k": [1], "ratio": [offline]}),
        pd.DataFrame({"k": [1], "ratio": [online]}),
        "k",
    )
    assert result.verdict == verdict, result.explain()
    if verdict == "fail":
        assert "ratio" in result.message
