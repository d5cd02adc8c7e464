"""The canary's pieces on their own: the user split, the rollout file, the cost per
transaction, and the decision (with its backstop) on outcomes whose truth is known."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mlref.canary.decide import evaluate, excess_loss_path
from mlref.canary.outcomes import ArmOutcomes, arm_outcomes, transaction_costs
from mlref.canary.state import (
    DecisionKnobs,
    RolloutError,
    new_rollout,
    read_rollout,
    write_rollout,
)
from mlref.serve.routing import in_canary


@pytest.mark.parametrize("share", [0.05, 0.1, 0.5])
def test_the_split_takes_its_share_within_binomial_noise(share: float) -> None:
    n = 20_000
    hits = sum(in_canary(u, "salt-a", share) for u in range(n))
    # two-sided binomial test at 1e-4: a biased hash fails, noise does not
    assert stats.binomtest(hits, n, share).pvalue > 1e-4, (hits, n * share)


def test_the_split_is_sticky_and_a_new_salt_splits_users_anew() -> None:
    users = range(10_000)
    a = np.array([in_canary(u, "salt-a", 0.5) for u in users])
    again = np.array([in_canary(u, "salt-a", 0.5) for u in users])
    b = np.array([in_canary(u, "salt-b", 0.5) for u in users])
    assert (a == again).all()
    # independent splits overlap on about share^2 of users, not on all of them
    both = int((a & b).sum())
    assert stats.binomtest(both, len(a), 0.25).pvalue > 1e-4, both


def test_rollout_file_round_trip_and_bad_input(tmp_path: Path) -> None:
    assert read_rollout(tmp_path) is None
    rollout = new_rollout("7", "6", 0.1, knobs=DecisionKnobs(margin=0.2))
    write_rollout(tmp_path, rollout)
    assert read_rollout(tmp_path) == rollout
    ended = rollout.ended("rolled_back")
    write_rollout(tmp_path, ended)
    back = read_rollout(tmp_path)
    assert back is not None
    assert not back.active
    assert back.ended_at is not None
    for share in (0.01, 0.6, float("nan")):
        with pytest.raises(RolloutError, match="share must be between"):
            new_rollout("7", "6", share)
    with pytest.raises(RolloutError, match="alpha"):
        DecisionKnobs(alpha=5)
    (tmp_path / "canary" / "rollout.json").write_text(json.dumps({"rollout_id": "x"}))
    with pytest.raises(RolloutError, match="not a rollout record"):
        read_rollout(tmp_path)


def test_cost_per_transaction_by_hand() -> None:
    knobs = DecisionKnobs(review_cost=5.0, missed_fraud_share=0.5, cost_cap=100.0)
    fraud = np.array([1, 1, 1, 0, 0])
    flagged = np.array([0, 0, 1, 1, 0])
    amount = np.array([60.0, 900.0, 300.0, 20.0, 20.0])
    # missed 60 -> 30; missed 900 -> 450 capped at 100; caught -> 0; false alarm -> 5; 0
    assert transaction_costs(fraud, flagged, amount, knobs).tolist() == [30.0, 100.0, 0.0, 5.0, 0.0]


def test_outcomes_judge_only_matured_labels_once_per_transaction() -> None:
    knobs = DecisionKnobs()
    t0 = pd.Timestamp("2026-05-01T00:00:00Z").timestamp()
    rows = pd.DataFrame(
        {
            "request_id": ["a", "b", "c", "d", "e"],
            "ts": [t0, t0 + 1, t0 + 2, t0 + 3, t0 + 4],
            "event_timestamp": [t0, t0 + 1, t0 + 2, t0 + 3, t0 + 4],
            "transaction_id": ["t1", "t2", "t3", "t1", "t4"],  # t1 retried
            "user_id": [1, 2, 3, 1, 4],
            "arm": ["champion", "canary", "canary", "champion", "champion"],
            "model_version": ["1", "2", "2", "1", "1"],
            "score": [0.9, 0.1, 0.1, 0.9, 0.1],
            "decision": [1, 0, 0, 1, 0],
            "threshold": [0.5] * 5,
            "latency_ms": [1.0, 2.0, 3.0, 4.0, 5.0],
        }
    )
    labels = pd.DataFrame(
        {
            "transaction_id": ["t1", "t2", "t3", "t4"],
            "is_fraud": [0, 1, 0, 1],
            "label_timestamp": pd.to_datetime(
                ["2026-05-02", "2026-05-02", "2026-05-09", "2026-05-02"], utc=True
            ),
            "amount": [10.0, 40.0, 10.0, 70.0],
        }
    )
    arms = arm_outcomes(rows, labels, knobs, as_of=pd.Timestamp("2026-05-03T00:00:00Z"))
    assert arms["champion"].requests == 3
    assert arms["champion"].costs.tolist() == [5.0, 70.0]  # t1 once (false alarm), t4 missed
    assert arms["canary"].costs.tolist() == [40.0]  # t3's label has not arrived
    with pytest.raises(ValueError, match="time zone"):
        arm_outcomes(rows, labels, knobs, as_of=pd.Timestamp("2026-05-03"))


def _arm(name: str, costs: np.ndarray, errors: int = 0) -> ArmOutcomes:
    return ArmOutcomes(name, (name,), len(costs), errors, costs, np.full(len(costs), 5.0))


def _costs(rng: np.random.Generator, n: int, miss_rate: float, alarm_rate: float) -> np.ndarray:
    fraud = rng.random(n) < 0.01
    flagged = np.where(fraud, rng.random(n) > miss_rate, rng.random(n) < alarm_rate)
    amount = rng.lognormal(5.5, 1.0, n)
    return transaction_costs(fraud, flagged, amount, DecisionKnobs())


def test_a_worse_canary_is_rolled_back_and_an_equal_one_is_not() -> None:
    rng = np.random.default_rng(3)
    knobs = DecisionKnobs(max_loss=1e9)
    rollout = new_rollout("2", "1", 0.5, knobs=knobs)
    champion = _arm("champion", _costs(rng, 4000, 0.08, 0.02))
    # a canary flagging 30% of traffic (a threshold not carried over): $5 a false alarm
    worse = evaluate(
        rollout, {"champion": champion, "canary": _arm("canary", _costs(rng, 4000, 0.08, 0.3))}
    )
    assert worse.action == "rollback", worse.summary()
    assert worse.gate.verdict == "fail"
    same = evaluate(
        rollout, {"champion": champion, "canary": _arm("canary", _costs(rng, 4000, 0.08, 0.02))}
    )
    assert same.action in ("continue", "promote"), same.summary()


def test_the_backstop_rolls_back_when_the_loss_budget_is_spent_first() -> None:
    rng = np.random.default_rng(4)
    knobs = DecisionKnobs(max_loss=50.0, min_samples=10_000, max_samples=20_000)
    rollout = new_rollout("2", "1", 0.5, knobs=knobs)
    arms = {
        "champion": _arm("champion", _costs(rng, 2000, 0.08, 0.02)),
        "canary": _arm("canary", _costs(rng, 2000, 0.9, 0.02)),
    }
    judged = evaluate(rollout, arms)
    assert judged.gate.verdict == "inconclusive"  # min_samples not reached
    assert judged.action == "rollback"
    assert "backstop" in judged.reason
    assert excess_loss_path(arms)[-1] == pytest.approx(judged.excess_loss)


def test_errors_on_the_canary_arm_roll_it_back() -> None:
    rng = np.random.default_rng(5)
    rollout = new_rollout("2", "1", 0.5)
    costs = _costs(rng, 3000, 0.08, 0.02)
    judged = evaluate(
        rollout, {"champion": _arm("champion", costs), "canary": _arm("canary", costs, errors=600)}
    )
    assert judged.action == "rollback"
    assert "error_rate" in judged.gate.message
