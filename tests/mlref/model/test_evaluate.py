"""Threshold choice, business cost and metrics, checked against brute force and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from mlref.train import DecisionPolicy, business_cost, choose_threshold, evaluate


def sample(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.15).astype(float)
    s = np.clip(0.3 * y + rng.normal(0.3, 0.2, n), 0, 1).round(2)  # rounded: many ties
    a = rng.lognormal(3, 1, n)
    return y, s, a


def test_business_cost_by_hand() -> None:
    y = np.array([1, 1, 0, 0, 0])
    s = np.array([0.9, 0.2, 0.8, 0.1, 0.6])
    a = np.array([100.0, 50.0, 10.0, 10.0, 10.0])
    policy = DecisionPolicy(review_cost=5.0, missed_fraud_share=0.5)
    # threshold 0.5: alerts rows 0, 2, 4; misses the 50 fraud; two false alarms
    assert business_cost(y, s, a, 0.5, policy) == pytest.approx(0.5 * 50 + 2 * 5.0)
    assert business_cost(y, s, a, 0.95, policy) == pytest.approx(0.5 * 150)


def test_cost_threshold_is_the_brute_force_minimum() -> None:
    y, s, a = sample()
    policy = DecisionPolicy(kind="cost", review_cost=8.0)
    chosen = choose_threshold(y, s, policy, a)
    candidates = np.r_[np.unique(s), np.nextafter(s.max(), np.inf)]
    costs = np.array([business_cost(y, s, a, t, policy) for t in candidates])
    assert chosen.expected_cost == pytest.approx(costs.min())
    assert business_cost(y, s, a, chosen.value, policy) == pytest.approx(costs.min())
    # ties resolved towards fewer alerts
    assert chosen.value == candidates[costs == costs.min()].max()


def test_precision_threshold_gives_the_most_recall_at_the_target() -> None:
    y, s, _ = sample(seed=1)
    policy = DecisionPolicy(kind="precision", target_precision=0.6)
    chosen = choose_threshold(y, s, policy)
    best_recall, best_t = -1.0, None
    for t in np.unique(s):
        alert = s >= t
        precision = y[alert].mean()
        recall = y[alert].sum() / y.sum()
        if precision >= 0.6 and recall > best_recall:
            best_recall, best_t = recall, t
    assert chosen.policy_met
    assert chosen.value == best_t
    assert chosen.recall == pytest.approx(best_recall)
    assert chosen.precision is not None
    assert chosen.precision >= 0.6


def test_unreachable_precision_is_reported_not_hidden() -> None:
    y, _s, _ = sample(seed=2)
    noise = np.random.default_rng(3).random(y.size)
    chosen = choose_threshold(y, noise, DecisionPolicy(kind="precision", target_precision=1.0))
    assert not chosen.policy_met
    assert "no threshold reaches precision 1.0" in chosen.note


def test_metrics_and_slices_match_sklearn() -> None:
    y, s, a = sample(n=600, seed=4)
    groups = np.where(np.arange(y.size) % 3 == 0, "a", "b")
    result = evaluate(
        y, s, threshold=0.5, policy=DecisionPolicy(), amounts=a, slices={"group": groups}
    )
    assert result.metrics["roc_auc"] == pytest.approx(roc_auc_score(y, s))
    assert result.metrics["pr_auc"] == pytest.approx(average_precision_score(y, s))
    assert result.metrics["brier"] == pytest.approx(np.mean((s - y) ** 2))
    for value in ("a", "b"):
        mask = groups == value
        row = result.slices["group"][value]
        assert row["n"] == mask.sum()
        assert row["roc_auc"] == pytest.approx(roc_auc_score(y[mask], s[mask]))
        alert = s[mask] >= 0.5
        assert row["recall_at_threshold"] == pytest.approx(y[mask][alert].sum() / y[mask].sum())


def test_single_class_slice_has_undefined_rank_metrics() -> None:
    y, s, _ = sample(seed=5)
    groups = np.where(y == 1, "fraud_only", "legit_only")
    result = evaluate(y, s, threshold=0.5, policy=DecisionPolicy(), slices={"g": groups})
    assert result.slices["g"]["legit_only"]["roc_auc"] is None
    assert result.slices["g"]["fraud_only"]["pr_auc"] is None


def test_broken_scores_are_refused() -> None:
    y, s, _ = sample()
    s = s.copy()
    s[3] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        evaluate(y, s, threshold=0.5, policy=DecisionPolicy())
