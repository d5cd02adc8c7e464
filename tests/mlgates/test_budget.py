"""latency_budget, cost_budget and the seed's cost model."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlgates import (
    accelerator_cost_per_request,
    cost_budget,
    cost_per_request,
    latency_budget,
    training_sweep_cost,
)
from mlgates.result import GateInputError


def test_latency_within_budget_passes() -> None:
    samples = np.random.default_rng(0).gamma(4.0, 3.0, 5000)  # p99 ~ 30 ms
    r = latency_budget(samples, p99_ms=50.0)
    assert r.verdict == "pass", r.explain()
    assert r.details["p99_ci_high"] <= 50.0
    assert r.measured == pytest.approx(np.percentile(samples, 99))
    assert r.rubric == ("monitor-6",)


def test_latency_over_budget_fails() -> None:
    samples = np.random.default_rng(1).gamma(4.0, 6.0, 5000)  # p99 ~ 60 ms
    r = latency_budget(samples, p99_ms=50.0)
    assert r.verdict == "fail"
    assert "p99 over budget 50 ms by" in r.message
    assert r.details["p99_ci_low"] > 50.0


def test_latency_within_noise_is_inconclusive_either_side() -> None:
    # a point p99 just under the budget with bounds across it is not evidence of a pass
    samples = np.random.default_rng(2).gamma(4.0, 3.0, 400)
    p99 = float(np.percentile(samples, 99))
    just_above = latency_budget(samples, p99_ms=p99 * 1.01)
    assert just_above.verdict == "inconclusive"
    assert "within noise" in just_above.message
    assert "probably fine" in just_above.message
    just_below = latency_budget(samples, p99_ms=p99 * 0.99)
    assert just_below.verdict == "inconclusive"
    assert "probably over" in just_below.message


def test_too_few_samples_for_an_upper_bound_is_inconclusive_never_pass() -> None:
    """250 samples far under the budget: the bootstrap called this a pass, but no order
    statistic of 250 values is a 95% upper bound of p99 (1 - 0.99**250 = 0.92 < 0.95)."""
    samples = np.random.default_rng(4).gamma(4.0, 3.0, 250)  # p99 ~ 30 ms, max ~ 40 ms
    r = latency_budget(samples, p99_ms=50.0)
    assert r.verdict == "inconclusive", r.explain()
    assert "needs at least 299 (49 more)" in r.message
    assert r.details["p99_ci_high"] == math.inf
    assert r.details["samples_for_upper_bound"] == 299
    # 299 samples: the maximum is the bound, and it is under the budget
    r = latency_budget(np.random.default_rng(4).gamma(4.0, 3.0, 299), p99_ms=50.0)
    assert r.verdict == "pass", r.explain()
    assert r.details["p99_high_rank"] == 299
    # a lower confidence needs fewer: 1 - 0.99**n >= 0.9 from n = 230
    r = latency_budget(samples[:229], p99_ms=50.0, confidence=0.9)
    assert "needs at least 230 (1 more)" in r.message
    assert latency_budget(samples[:230], p99_ms=50.0, confidence=0.9).verdict == "pass"
    # a small sample can still fail: its lower bound exists
    slow = np.random.default_rng(5).gamma(4.0, 3.0, 150) + 80.0
    r = latency_budget(slow, p99_ms=50.0)
    assert r.verdict == "fail", r.explain()


def test_latency_false_pass_and_false_fail_rates_by_simulation() -> None:
    """Lognormal latencies, 4000 seeded samples of 400 requests. With the budget at the true
    p99 scaled by 0.97 (over budget) the gate passes in <= 5% of samples; at 1.03 x (within
    budget) it fails in <= 5%; and it has power: with the budget at 2 x the true p99 it passes
    in > 85% (the price of an honest bound from 400 samples: the maximum; 2000 samples pass
    at 1.2 x in 91%), at 0.6 x it fails in > 95%. Exact binomial: the upper bound is X_(400), P(cover) =
    1 - 0.99**400 = 0.982; the lower bound X_(392), P(cover) = P(Binom(400, .99) >= 392)."""
    from scipy import stats as sps

    rng = np.random.default_rng(11)
    sigma = 0.6
    true_p99 = float(np.exp(sigma * sps.norm.ppf(0.99)))
    runs = 4000
    x = np.sort(rng.lognormal(0.0, sigma, size=(runs, 400)), axis=1)
    # the gate on a few of these rows agrees with the vectorised order statistics
    for row in x[:20]:
        r = latency_budget(row, p99_ms=true_p99)
        assert r.details["p99_ci_high"] == row[399]
        assert r.details["p99_ci_low"] == row[391]
    high, low = x[:, 399], x[:, 391]
    assert (high >= true_p99).mean() >= 0.95  # upper bound covers the true p99
    assert (low <= true_p99).mean() >= 0.95
    assert (high <= 0.97 * true_p99).mean() <= 0.05  # false pass
    assert (low > 1.03 * true_p99).mean() <= 0.05  # false fail
    assert (high <= 2.0 * true_p99).mean() > 0.85  # power to pass (measured 0.90)
    assert (low > 0.6 * true_p99).mean() > 0.95  # power to fail (measured 1.0)


def test_quantile_bounds_match_scipy_quantile_test() -> None:
    from scipy import stats as sps

    from mlgates import stats

    for n, q, confidence in [
        (150, 0.99, 0.95),
        (299, 0.99, 0.95),
        (400, 0.99, 0.9),
        (2000, 0.95, 0.99),
        (60, 0.5, 0.95),
    ]:
        x = np.random.default_rng(n).exponential(10.0, n)
        b = stats.quantile_bounds(x, q, confidence)
        ref_high = (
            sps.quantile_test(x, q=1.0, p=q, alternative="less")
            .confidence_interval(confidence)
            .high
        )
        ref_low = (
            sps.quantile_test(x, q=1.0, p=q, alternative="greater")
            .confidence_interval(confidence)
            .low
        )
        assert b.high == ref_high if np.isfinite(b.high) else np.isnan(ref_high), (n, q)
        assert b.low == ref_low, (n, q)
        # exact coverage of the chosen order statistics
        if b.high_rank is not None:
            assert sps.binom.cdf(b.high_rank - 1, n, q) >= confidence
            assert sps.binom.cdf(b.high_rank - 2, n, q) < confidence  # the tightest
    # the smallest sample with an upper bound: 1 - q**n >= confidence, by hand
    assert stats.quantile_upper_bound_min_samples(0.99, 0.95) == 299
    assert 1 - 0.99**299 >= 0.95 > 1 - 0.99**298
    assert stats.quantile_upper_bound_min_samples(0.95, 0.95) == 59
    assert stats.quantile_upper_bound_min_samples(0.999, 0.99) == 4603
    assert np.isinf(stats.quantile_bounds(np.arange(298.0), 0.99).high)
    assert stats.quantile_bounds(np.arange(299.0), 0.99).high == 298.0
    with pytest.raises(GateInputError, match="NaN/inf"):
        stats.quantile_bounds([1.0, np.nan], 0.99)
    with pytest.raises(GateInputError, match="q must be a fraction"):
        stats.quantile_bounds([1.0, 2.0], 99)
    with pytest.raises(GateInputError, match="no values"):
        stats.quantile_bounds([], 0.99)


def test_latency_too_few_samples_and_bad_input() -> None:
    r = latency_budget(np.full(40, 5.0))
    assert r.verdict == "inconclusive"
    assert "at least 299 (259 more)" in r.message
    assert (
        "at least 100" in latency_budget(np.full(40, 5.0), min_samples=100, confidence=0.5).message
    )
    with pytest.raises(GateInputError, match="negative"):
        latency_budget([1.0, -2.0] * 100)
    with pytest.raises(GateInputError, match="empty"):
        latency_budget([])


def test_seed_cost_examples() -> None:
    # $3.50/h A100, 20 ms, batch 16 -> ~$1.20 per million requests
    per_request = accelerator_cost_per_request(3.50, 0.020, 16)
    assert per_request * 1e6 == pytest.approx(3.50 / 3600 * 0.020 / 16 * 1e6)
    assert per_request * 1e6 == pytest.approx(1.20, abs=0.02)
    # 10M rows, 50k rows/s, 10 epochs, 20 trials at $3.50/h -> 40,000 s -> ~$39
    sweep = training_sweep_cost(10_000_000, 50_000, 10, 20, 3.50)
    assert sweep == pytest.approx(40_000 / 3600 * 3.50)
    assert round(sweep) == 39
    # the accelerator formula is the throughput formula at throughput = batch / latency
    assert cost_per_request(16 / 0.020, 3.50) == pytest.approx(per_request)


def test_cost_budget() -> None:
    ok = cost_budget(throughput_rps=800, hourly_usd=3.50, max_usd_per_million=1.5)
    assert ok.verdict == "pass"
    assert ok.measured == pytest.approx(3.50 / (3600 * 800) * 1e6)
    over = cost_budget(throughput_rps=50, hourly_usd=3.50, max_usd_per_million=1.0)
    assert over.verdict == "fail"
    assert "over by $" in over.message
    # measured throughput worse than the ideal full-batch figure: the larger cost counts
    both = cost_budget(200, 3.50, 1.0, latency_s=0.020, batch_size=16)
    assert both.details["basis"] == "throughput"
    assert both.verdict == "fail"
    accel = cost_budget(None, 3.50, 1.0, latency_s=0.020, batch_size=16)
    assert accel.verdict == "fail"
    assert accel.measured == pytest.approx(1.215, abs=1e-3)
    with pytest.raises(GateInputError, match="throughput_rps must be a positive"):
        cost_budget(0, 3.5)
    with pytest.raises(GateInputError, match="both latency_s and batch_size"):
        cost_budget(100, 3.5, latency_s=0.02)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"confidence": 95}, r"confidence must be a fraction in \(0, 1\)"),
        ({"confidence": 0.0}, r"confidence must be a fraction in \(0, 1\)"),
        ({"confidence": 1.0}, r"confidence must be a fraction in \(0, 1\)"),
        ({"confidence": "0.95"}, "confidence must be a number"),
        ({"min_samples": 1}, "min_samples must be >= 2"),
        ({"min_samples": 100.0}, "min_samples must be an integer"),
    ],
)
def test_latency_bad_arguments_are_input_errors(kwargs: dict[str, object], match: str) -> None:
    samples = np.random.default_rng(3).gamma(4.0, 3.0, 300)
    with pytest.raises(GateInputError, match=match):
        latency_budget(samples, **kwargs)  # type: ignore[arg-type]
    # the same samples with sane arguments measure fine (numpy integers accepted)
    min_samples: int = np.int64(100)  # type: ignore[assignment]
    ok = latency_budget(samples, confidence=0.9, min_samples=min_samples)
    assert ok.verdict == "pass", ok.explain()
    assert ok.details["p99_ci_low"] <= ok.measured <= ok.details["p99_ci_high"]


def test_cost_from_a_capacity_interval_uses_the_pessimistic_end() -> None:
    """Capacity held at 100 req/s, broke at 200: the cost lies in [cost(200), cost(100)]."""
    per_million = lambda rps: 0.10 / (3600 * rps) * 1e6  # noqa: E731
    ok = cost_budget(None, 0.10, 0.5, capacity_rps=(100.0, 200.0))
    assert ok.verdict == "pass", ok.explain()
    assert ok.measured == pytest.approx(per_million(100))  # the pessimistic end
    assert "between 100 and 200 req/s" in ok.message
    # the budget between cost(200) = $0.139 and cost(100) = $0.278: cannot tell
    unsure = cost_budget(None, 0.10, 0.2, capacity_rps=(100.0, 200.0))
    assert unsure.verdict == "inconclusive", unsure.explain()
    assert "inside the interval" in unsure.message
    assert unsure.details["usd_per_million_best_case"] == pytest.approx(per_million(200))
    # even the optimistic end is over: the capacity is below 200 req/s
    over = cost_budget(None, 0.10, 0.1, capacity_rps=(100.0, 200.0))
    assert over.verdict == "fail"
    assert "over by at least $0.0389" in over.message
    # nothing held: an unbounded pessimistic cost, still a fail when 20 req/s is too few
    none_held = cost_budget(None, 0.10, 1.0, capacity_rps=(0.0, 20.0))
    assert none_held.verdict == "fail"
    assert none_held.measured is None
    assert "no rate measured held" in none_held.message
    # never broke: the capacity is at least the top of the ladder, a pass if that suffices
    assert cost_budget(None, 0.10, 1.0, capacity_rps=(400.0, None)).verdict == "pass"
    short = cost_budget(None, 0.10, 1.0, capacity_rps=(10.0, None))
    assert short.verdict == "inconclusive"  # 10 req/s held, more never tried
    with pytest.raises(GateInputError, match="not both"):
        cost_budget(40, 0.10, capacity_rps=(10.0, 20.0))
    with pytest.raises(GateInputError, match="low <= high"):
        cost_budget(None, 0.10, capacity_rps=(30.0, 20.0))
    with pytest.raises(GateInputError, match="a pair"):
        cost_budget(None, 0.10, capacity_rps=30.0)  # type: ignore[arg-type]


def test_cost_from_the_offered_rate_cannot_tell_servers_apart() -> None:
    """Why the reference suite measures capacity: the old input, the offered 40 req/s, gives
    $0.69 per million for any server; two capacity intervals of different servers do not."""
    offered = [cost_budget(40.0, 0.10).measured for _ in ("fast server", "slow server")]
    assert offered[0] == offered[1] == pytest.approx(0.694, abs=1e-3)
    fast = cost_budget(None, 0.10, 0.25, capacity_rps=(200.0, 400.0))
    slow = cost_budget(None, 0.10, 0.25, capacity_rps=(50.0, 100.0))
    assert (fast.verdict, slow.verdict) == ("pass", "fail")
