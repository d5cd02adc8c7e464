"""The canary gate's decisions, guardrails and input checks (its statistics:
test_canary_simulation.py)."""

from __future__ import annotations

import numpy as np
import pytest

from mlgates import GateInputError, canary
from mlgates.gates import GATES


def _bernoulli(p: float, n: int, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).random(n) < p).astype(np.float64)


def test_worse_canary_is_rolled_back() -> None:
    result = canary(_bernoulli(0.1, 3000, 1), _bernoulli(0.25, 3000, 2))
    assert result.verdict == "fail"
    assert result.rubric == ("infra-6",)
    interval = result.details["intervals"]["metric"]
    assert interval["low"] > 0
    assert result.measured == interval["low"]
    text = result.explain()
    assert "rollback" in text
    assert "route all traffic back to the champion" in text


def test_better_canary_is_promoted() -> None:
    result = canary(_bernoulli(0.25, 3000, 1), _bernoulli(0.1, 3000, 2))
    assert result.verdict == "pass"
    assert result.details["intervals"]["metric"]["high"] <= 0


def test_equal_canary_is_promoted_only_with_a_margin() -> None:
    champion, candidate = _bernoulli(0.1, 20_000, 3), _bernoulli(0.1, 20_000, 4)
    without = canary(champion, candidate, max_samples=50_000)
    assert without.verdict == "inconclusive"
    assert not without.details["stop"]
    assert "continue" in without.message
    assert "per arm would" in without.message
    with_margin = canary(champion, candidate, margin=0.03)
    assert with_margin.verdict == "pass", with_margin.explain()
    assert with_margin.threshold == 0.03


def test_higher_is_better_flips_the_sign() -> None:
    low, high = _bernoulli(0.1, 3000, 1), _bernoulli(0.25, 3000, 2)
    assert canary(low, high, higher_is_better=True).verdict == "pass"
    assert canary(high, low, higher_is_better=True).verdict == "fail"


def test_no_decision_before_min_samples() -> None:
    result = canary(_bernoulli(0.0, 150, 1), _bernoulli(1.0, 150, 2), min_samples=200)
    assert result.verdict == "inconclusive"
    assert "needs 200 per arm" in result.message
    assert canary(_bernoulli(0.0, 150, 1), _bernoulli(1.0, 150, 2), min_samples=100).verdict == (
        "fail"
    )


def test_max_samples_stops_inconclusive_keeping_the_champion() -> None:
    champion, candidate = _bernoulli(0.1, 5000, 3), _bernoulli(0.1, 5000, 4)
    result = canary(champion, candidate, min_samples=100, max_samples=5000)
    assert result.verdict == "inconclusive"
    assert result.details["stop"] is True
    assert "keep the champion" in result.explain()


def test_error_rate_guardrail_rolls_back_a_canary_good_on_the_metric() -> None:
    champion, candidate = _bernoulli(0.2, 4000, 1), _bernoulli(0.1, 4000, 2)
    assert canary(champion, candidate).verdict == "pass"
    result = canary(
        champion,
        candidate,
        champion_errors=_bernoulli(0.001, 4000, 5),
        canary_errors=_bernoulli(0.05, 4000, 6),
    )
    assert result.verdict == "fail"
    assert "guardrail error_rate" in result.message
    assert result.threshold == 0.005
    assert result.measured == result.details["intervals"]["error_rate"]["low"]
    assert result.details["alpha_per_arm_interval"] == pytest.approx(0.05 / 4)


def test_latency_guardrail_compares_the_share_over_the_threshold() -> None:
    champion, candidate = _bernoulli(0.2, 4000, 1), _bernoulli(0.1, 4000, 2)
    rng = np.random.default_rng(9)
    fast = rng.lognormal(np.log(10), 0.3, 4000)
    slow = rng.lognormal(np.log(30), 0.3, 4000)  # p99 about 60 ms against about 20
    rolled_back = canary(
        champion,
        candidate,
        champion_latency_ms=fast,
        canary_latency_ms=slow,
        latency_threshold_ms=25.0,
    )
    assert rolled_back.verdict == "fail"
    assert "latency_over_25ms" in rolled_back.message
    promoted = canary(
        champion,
        candidate,
        champion_latency_ms=fast,
        canary_latency_ms=rng.lognormal(np.log(10), 0.3, 4000),
        latency_threshold_ms=25.0,
        latency_margin=0.02,
    )
    assert promoted.verdict == "pass", promoted.explain()
    with pytest.raises(GateInputError, match="latency_threshold_ms"):
        canary(champion, candidate, champion_latency_ms=fast, canary_latency_ms=slow)


def test_batches_are_looks_and_the_first_decisive_one_is_named() -> None:
    champion = np.split(_bernoulli(0.1, 3000, 1), 30)
    candidate = np.split(_bernoulli(0.3, 3000, 2), 30)
    result = canary(champion, candidate, min_samples=100)
    assert result.verdict == "fail"
    first = result.details["decided_at_batch"]
    assert 1 <= first < 30
    earlier = canary(champion[:first], candidate[:first], min_samples=100)
    assert earlier.verdict == "fail"
    before = canary(champion[: first - 1], candidate[: first - 1], min_samples=100)
    assert before.verdict == "inconclusive"


def test_bounded_metric_is_rescaled() -> None:
    rng = np.random.default_rng(4)
    champion = rng.uniform(0, 100, 4000)  # cost per transaction, mean 50
    candidate = rng.uniform(20, 100, 4000)  # mean 60
    result = canary(champion, candidate, bounds=(0.0, 100.0))
    assert result.verdict == "fail"
    interval = result.details["intervals"]["metric"]
    assert interval["low"] <= 10 <= interval["high"]
    with pytest.raises(GateInputError, match="bounds"):
        canary(champion, candidate)
    with pytest.raises(GateInputError, match="outside bounds"):
        canary(champion, candidate, bounds=(0.0, 50.0))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"alpha": 5}, "alpha"),
        ({"margin": -0.1}, "margin"),
        ({"min_samples": 0}, "min_samples"),
        ({"max_samples": 10}, "max_samples"),
        ({"bounds": (1.0, 0.0)}, "bounds"),
        ({"champion_errors": [0, 1]}, "canary_errors"),
        ({"champion_errors": [0, 2], "canary_errors": [0, 1]}, "champion_errors"),
    ],
)
def test_bad_input_names_the_argument(kwargs: dict, match: str) -> None:
    with pytest.raises(GateInputError, match=match):
        canary([0.0, 1.0] * 100, [1.0, 0.0] * 100, **kwargs)


def test_bad_streams_name_the_argument() -> None:
    with pytest.raises(GateInputError, match="canary_values"):
        canary([0.1, 0.2], [0.1, np.nan])
    with pytest.raises(GateInputError, match="champion_values is empty"):
        canary([], [0.1])
    with pytest.raises(GateInputError, match="batches"):
        canary([[0.1], [0.2]], [[0.1], [0.2], [0.3]])


def test_registered_and_configurable() -> None:
    from mlgates.config import tunable_parameters

    assert GATES["canary"] is canary
    knobs = tunable_parameters(canary)
    assert {"margin", "alpha", "min_samples", "max_samples", "error_margin"} <= set(knobs)


def test_samples_needed_is_about_what_settles_it() -> None:
    # undecided at 400 per arm; the projected sample (fresh draws, same rates) decides
    early = canary(_bernoulli(0.1, 400, 21), _bernoulli(0.2, 400, 22), min_samples=100)
    assert early.verdict == "inconclusive"
    need = early.details["samples_needed"]
    assert 400 < need < 10_000
    decided = [
        canary(_bernoulli(0.1, need, s), _bernoulli(0.2, need, s + 100)).verdict for s in range(20)
    ]
    # the projection holds the estimate: about half of fresh draws land past it, and
    # three times the projected sample settles nearly all
    assert decided.count("fail") >= 5
    assert all(
        canary(_bernoulli(0.1, 3 * need, s), _bernoulli(0.2, 3 * need, s + 100)).verdict == "fail"
        for s in range(20)
    )
