"""Online gates: offline_online_agreement (model-2), with simulated false-alarm and power.

Figures (``uv run pytest tests/mlgates/test_online_gates.py -q -s``, seeded): binormal
scores with 2,000 rows per sample at 10% positives, tolerance 0.02, 95% intervals. When the
online AUC is exactly the tolerance below the offline one (the worst case that must not
fail), the gate failed in 9 of 400 seeds (0.022; at most 2.5% is promised); when online is
0.10 lower (a skewed serving path) it failed in 385 of 400 (0.963; at 0.08 lower, 0.80).
About 8 s on a shared 2-core machine.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from mlgates import GateInputError, offline_online_agreement
from mlgates.gates import GATES
from mlgates.metrics import roc_auc


def _binormal(auc: float, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Labels (10% positive) and scores whose true ROC AUC is ``auc``: Phi(mu / sqrt 2)."""
    y = rng.random(n) < 0.1
    mu = math.sqrt(2) * scipy_stats.norm.ppf(auc)
    return y.astype(int), rng.normal(size=n) + mu * y


def test_agreeing_samples_pass_with_the_delong_figures() -> None:
    rng = np.random.default_rng(0)
    y_off, s_off = _binormal(0.85, 20_000, rng)
    y_on, s_on = _binormal(0.85, 20_000, rng)
    result = offline_online_agreement(y_off, s_off, y_on, s_on, tolerance=0.03)
    assert result.verdict == "pass", result.explain()
    assert result.rubric == ("model-2",)
    details = result.details
    assert details["offline"] == pytest.approx(roc_auc(y_off, s_off))
    assert details["online"] == pytest.approx(roc_auc(y_on, s_on))
    assert details["ci_low"] < details["difference"] < details["ci_high"]


def test_offline_optimistic_fails_naming_the_direction() -> None:
    rng = np.random.default_rng(1)
    y_off, s_off = _binormal(0.92, 5000, rng)
    y_on, s_on = _binormal(0.80, 5000, rng)
    result = offline_online_agreement(y_off, s_off, y_on, s_on)
    assert result.verdict == "fail"
    assert "offline optimistic" in result.message
    assert "leakage" in result.explain()
    assert result.measured == result.details["ci_low"]


def test_offline_pessimistic_fails_too() -> None:
    rng = np.random.default_rng(2)
    y_off, s_off = _binormal(0.80, 5000, rng)
    y_on, s_on = _binormal(0.92, 5000, rng)
    result = offline_online_agreement(y_off, s_off, y_on, s_on)
    assert result.verdict == "fail"
    assert "offline pessimistic" in result.message


def test_small_online_sample_is_inconclusive_and_says_how_many_rows() -> None:
    rng = np.random.default_rng(3)
    y_off, s_off = _binormal(0.85, 50_000, rng)
    y_on, s_on = _binormal(0.85, 800, rng)
    result = offline_online_agreement(y_off, s_off, y_on, s_on)
    assert result.verdict == "inconclusive"
    need = result.details["online_rows_needed"]
    assert need > 800
    assert f"{need:,} labelled served rows" in result.message
    # with the promised rows the gate does settle (same AUC, fresh draw)
    y_more, s_more = _binormal(0.85, 2 * need, rng)
    assert offline_online_agreement(y_off, s_off, y_more, s_more).verdict == "pass"


def test_too_few_positives_is_inconclusive() -> None:
    rng = np.random.default_rng(4)
    y_off, s_off = _binormal(0.85, 5000, rng)
    y_on, s_on = _binormal(0.85, 150, rng)
    result = offline_online_agreement(y_off, s_off, y_on, s_on)
    assert result.verdict == "inconclusive"
    assert "too few rows of a class" in result.message


def test_other_metrics_use_the_bootstrap_signed_so_positive_is_optimistic() -> None:
    rng = np.random.default_rng(5)
    y_off = (rng.random(4000) < 0.1).astype(int)
    p_off = np.clip(0.1 + 0.5 * y_off + rng.normal(0, 0.05, 4000), 0, 1)
    y_on = (rng.random(4000) < 0.1).astype(int)
    p_on = np.clip(0.3 + 0.1 * y_on + rng.normal(0, 0.05, 4000), 0, 1)  # worse online
    result = offline_online_agreement(y_off, p_off, y_on, p_on, metric="brier")
    assert result.details["test"].startswith("independent bootstrap")
    assert result.details["difference"] > 0  # brier lower offline = offline better
    assert result.verdict == "fail"
    assert "offline optimistic" in result.message


def test_simulated_false_alarm_and_power() -> None:
    seeds, n, tol = 400, 2000, 0.02
    fails_at_tolerance = 0
    fails_skewed = 0
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        y_off, s_off = _binormal(0.86, n, rng)
        y_on, s_on = _binormal(0.86 - tol, n, rng)
        r = offline_online_agreement(y_off, s_off, y_on, s_on, tolerance=tol)
        fails_at_tolerance += r.verdict == "fail"
        y_sk, s_sk = _binormal(0.76, n, rng)
        fails_skewed += offline_online_agreement(y_off, s_off, y_sk, s_sk).verdict == "fail"
    false_alarm, power = fails_at_tolerance / seeds, fails_skewed / seeds
    print(f"\nfalse alarm at the tolerance {false_alarm:.3f}; power at 0.10 lower {power:.3f}")
    # one-sided 2.5% promised; 3 simulation SEs of slack
    assert false_alarm <= 0.025 + 3 * math.sqrt(0.025 * 0.975 / seeds)
    assert power >= 0.9


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"tolerance": -1}, "tolerance"),
        ({"confidence": 95}, "confidence"),
        ({"metric": "accuracy"}, "unknown metric"),
        ({"min_class_rows": 0}, "min_class_rows"),
        ({"n_resamples": 5}, "n_resamples"),
    ],
)
def test_bad_input_names_the_argument(kwargs: dict, match: str) -> None:
    y = np.array([0, 1] * 50)
    with pytest.raises(GateInputError, match=match):
        offline_online_agreement(y, y * 0.5, y, y * 0.5, **kwargs)


def test_bad_samples_name_which() -> None:
    y = np.array([0, 1] * 50)
    with pytest.raises(GateInputError, match="y_online/scores_online"):
        offline_online_agreement(y, y * 0.5, y, (y * 0.5)[:-1])
    with pytest.raises(GateInputError, match="y_offline/scores_offline"):
        offline_online_agreement(np.zeros(100), y * 0.5, y, y * 0.5)


def test_registered() -> None:
    assert GATES["offline_online_agreement"] is offline_online_agreement
