"""The seed's cost formulas, checked against its own worked examples computed by hand."""

from __future__ import annotations

import pytest

from mlref.costs import cost_report, inference_cost, training_sweep


def test_training_sweep_reproduces_the_seed_example() -> None:
    sweep = training_sweep(10_000_000, 50_000, epochs=10, trials=20, hourly_usd=3.50)
    hours = 10_000_000 / 50_000 * 10 * 20 / 3600  # 40,000 s
    assert sweep.hours == pytest.approx(hours)
    assert sweep.usd == pytest.approx(hours * 3.50)
    assert sweep.usd == pytest.approx(38.89, abs=0.01)
    assert "$38.89" in sweep.formula()


def test_inference_cost_both_formulas() -> None:
    cost = inference_cost(3.50, latency_s=0.020, batch_size=16)
    assert cost.usd_per_million_formula == pytest.approx(3.50 / 3600 * 0.020 / 16 * 1e6)
    assert cost.usd_per_million_formula == pytest.approx(1.215, abs=0.001)
    assert cost.usd_per_million_measured is None
    measured = inference_cost(0.10, throughput_rps=250.0)
    assert measured.usd_per_million_measured == pytest.approx(0.10 / (3600 * 250) * 1e6)
    assert "per million" in measured.formula()


def test_inference_cost_needs_its_inputs() -> None:
    with pytest.raises(ValueError, match="pass throughput_rps"):
        inference_cost(1.0)
    with pytest.raises(ValueError, match="latency_s and batch_size together"):
        inference_cost(1.0, latency_s=0.01)


def test_bad_figures_are_refused_by_the_gate_functions() -> None:
    from mlgates import GateInputError

    with pytest.raises(GateInputError, match="throughput_rps must be a positive number"):
        inference_cost(0.1, throughput_rps=0.0)
    with pytest.raises(GateInputError, match="rows_per_s must be a positive number"):
        training_sweep(1_000, 0, 1, 1, 0.1)


def test_report_prints_both_formulas_with_the_inputs() -> None:
    report = cost_report(
        train_rows_per_s=8_000,
        serve_throughput_rps=400.0,
        serve_latency_s=0.030,
        serve_batch_size=64,
        hourly_usd=0.10,
    )
    assert report["training_sweep"]["rows_per_s"] == 8_000
    assert report["inference"]["usd_per_million_measured"] == pytest.approx(
        0.10 / (3600 * 400) * 1e6
    )
    assert report["seed_training_sweep"]["usd"] == pytest.approx(38.89, abs=0.01)
    text = report["text"]
    assert "8,000" in text
    assert "400.0/s" in text
    assert "30 ms / 64" in text
