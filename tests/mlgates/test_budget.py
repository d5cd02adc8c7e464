"""latency_budget, cost_budget and the seed's cost model."""

from __future__ import annotations

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


def test_latency_within_noise() -> None:
    samples = np.random.default_rng(2).gamma(4.0, 3.0, 400)
    p99 = float(np.percentile(samples, 99))
    just_above = latency_budget(samples, p99_ms=p99 * 1.01)
    assert just_above.verdict == "warn"
    assert "within noise" in just_above.message
    just_below = latency_budget(samples, p99_ms=p99 * 0.99)
    assert just_below.verdict == "inconclusive"
    assert "probably over" in just_below.message


def test_latency_too_few_samples_and_bad_input() -> None:
    r = latency_budget(np.full(40, 5.0))
    assert r.verdict == "inconclusive"
    assert "at least 100 (60 more)" in r.message
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
        ({"n_resamples": 0}, "n_resamples must be >= 10"),
        ({"n_resamples": 100.0}, "n_resamples must be an integer"),
        ({"min_samples": 1}, "min_samples must be >= 2"),
        ({"seed": -1}, "seed must be >= 0"),
    ],
)
def test_latency_bad_arguments_are_input_errors(kwargs: dict[str, object], match: str) -> None:
    samples = np.random.default_rng(3).gamma(4.0, 3.0, 300)
    with pytest.raises(GateInputError, match=match):
        latency_budget(samples, **kwargs)  # type: ignore[arg-type]
    # the same samples with sane arguments measure fine (numpy integers accepted)
    n_resamples: int = np.int64(200)  # type: ignore[assignment]
    ok = latency_budget(samples, confidence=0.9, n_resamples=n_resamples, min_samples=100)
    assert ok.verdict == "pass", ok.explain()
    assert ok.details["p99_ci_low"] <= ok.measured <= ok.details["p99_ci_high"]
