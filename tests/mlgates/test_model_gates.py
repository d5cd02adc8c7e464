"""``beats_baseline`` on data whose truth is known: binormal scores of a model and a
baseline on the same rows, correlated as two models of the same data are."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from mlgates.gates import beats_baseline, no_worse
from mlgates.result import GateInputError


def binormal(
    rng: np.random.Generator, n: int, rate: float, auc_model: float, auc_base: float, rho: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels and two correlated score vectors whose true AUCs are the ones given
    (AUC of N(d, 1) positives against N(0, 1) negatives is Phi(d / sqrt(2)))."""
    y = (rng.random(n) < rate).astype(int)
    e = rng.multivariate_normal([0.0, 0.0], [[1.0, rho], [rho, 1.0]], size=n)
    d_model = np.sqrt(2) * norm.ppf(auc_model)
    d_base = np.sqrt(2) * norm.ppf(auc_base)
    return y, y * d_model + e[:, 0], y * d_base + e[:, 1]


def test_a_clearly_better_model_passes_with_the_figures_of_sklearn() -> None:
    rng = np.random.default_rng(0)
    y, model, base = binormal(rng, 4000, 0.1, 0.90, 0.80, 0.5)
    result = beats_baseline(y, model, {"logistic": base})
    assert result.verdict == "pass", result.explain()
    row = result.details["baselines"]["logistic"]
    assert row["model"] == pytest.approx(roc_auc_score(y, model), abs=1e-12)
    assert row["baseline"] == pytest.approx(roc_auc_score(y, base), abs=1e-12)
    assert row["difference"] == pytest.approx(row["model"] - row["baseline"], abs=1e-12)
    assert result.measured == row["ci_low"] > 0
    assert result.rubric == ("model-5",)


def test_the_interval_is_no_worse_s_with_the_baseline_as_champion() -> None:
    """One implementation: the CI of model - baseline is the one no_worse computes."""
    rng = np.random.default_rng(1)
    y, model, base = binormal(rng, 3000, 0.1, 0.86, 0.83, 0.6)
    result = beats_baseline(y, model, base)
    reference = no_worse(y, base, model)
    row = result.details["baselines"]["baseline"]
    assert row["ci_low"] == pytest.approx(reference.details["ci_low"], abs=1e-12)
    assert row["ci_high"] == pytest.approx(reference.details["ci_high"], abs=1e-12)


def test_a_baseline_as_good_as_the_model_fails_naming_it() -> None:
    rng = np.random.default_rng(2)
    y, model, rules = binormal(rng, 4000, 0.1, 0.80, 0.88, 0.5)
    weak = model + rng.normal(scale=3.0, size=y.size)  # the model's scores, blurred
    result = beats_baseline(y, model, {"rules": rules, "weak": weak})
    assert result.verdict == "fail", result.explain()
    assert "'rules'" in result.message
    assert result.details["baselines"]["rules"]["verdict"] == "fail"
    assert result.details["baselines"]["rules"]["ci_high"] < 0
    assert result.details["baselines"]["weak"]["verdict"] == "pass"


def test_a_margin_the_model_does_not_clear_fails() -> None:
    rng = np.random.default_rng(3)
    y, model, base = binormal(rng, 4000, 0.1, 0.86, 0.85, 0.7)
    assert beats_baseline(y, model, base, margin=0.0).verdict != "fail"
    result = beats_baseline(y, model, base, margin=0.05)
    assert result.verdict == "fail", result.explain()
    assert result.threshold == 0.05


def test_few_rows_are_inconclusive_with_rows_to_settle() -> None:
    rng = np.random.default_rng(4)
    y, model, base = binormal(rng, 300, 0.1, 0.85, 0.82, 0.5)
    result = beats_baseline(y, model, base)
    assert result.verdict == "inconclusive", result.explain()
    row = result.details["baselines"]["baseline"]
    assert row["ci_low"] <= 0 <= row["ci_high"]
    assert "would settle it" in result.message or "min_class_rows" in result.message


def test_bootstrap_metric_path() -> None:
    rng = np.random.default_rng(5)
    y, model, base = binormal(rng, 3000, 0.1, 0.92, 0.75, 0.5)
    result = beats_baseline(y, model, base, metric="pr_auc", n_resamples=300)
    assert result.verdict == "pass", result.explain()
    assert result.details["baselines"]["baseline"]["test"] == "paired_bootstrap"


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"model_scores": np.zeros(5)}, "model_scores"),
        ({"baseline_scores": {"rules": np.zeros(5)}}, "baseline_scores['rules']"),
        ({"baseline_scores": {}}, "baseline_scores"),
        ({"y_true": np.zeros(100)}, "one class"),
        ({"confidence": 1.0}, "confidence"),
        ({"min_class_rows": 0}, "min_class_rows"),
    ],
)
def test_bad_input_names_the_argument(kwargs: dict, word: str) -> None:
    rng = np.random.default_rng(6)
    y, model, base = binormal(rng, 100, 0.3, 0.8, 0.7, 0.5)
    args = {"y_true": y, "model_scores": model, "baseline_scores": base, **kwargs}
    with pytest.raises(GateInputError, match=word.replace("[", r"\[").replace("]", r"\]")):
        beats_baseline(**args)


# --- simulation: how often the verdict is wrong, and how often it is right ---------------

SIM_SEEDS = 300


def _rates(auc_model: float, auc_base: float, margin: float) -> dict[str, float]:
    counts = {"pass": 0, "fail": 0, "inconclusive": 0}
    for seed in range(SIM_SEEDS):
        rng = np.random.default_rng(10_000 + seed)
        y, model, base = binormal(rng, 2000, 0.1, auc_model, auc_base, 0.5)
        counts[beats_baseline(y, model, base, margin=margin).verdict] += 1
    return {k: v / SIM_SEEDS for k, v in counts.items()}


def test_simulated_false_pass_rate_when_the_baseline_is_as_good() -> None:
    """Equal true AUCs (0.85, 200 positives, rho 0.5): a pass would claim the complexity
    pays when it does not. The one-sided level is 2.5%; measured 2.3% (7 of 300; the bound
    allows 2.5% + 2.7 binomial SE)."""
    rates = _rates(0.85, 0.85, 0.0)
    assert rates["pass"] <= 0.05, rates


def test_simulated_false_fail_rate_when_the_model_beats_by_exactly_the_margin() -> None:
    """Model 0.87 vs baseline 0.85, margin 0.02: on the boundary a fail is a false alarm.
    One-sided level 2.5% each way; measured fail 3.0%, pass 2.3% (300 seeds, binomial SE
    0.9%)."""
    rates = _rates(0.87, 0.85, 0.02)
    assert rates["fail"] <= 0.05, rates
    assert rates["pass"] <= 0.05, rates


def test_simulated_power_when_the_model_is_better_by_005() -> None:
    """Model 0.90 vs baseline 0.85 at margin 0 (200 positives): passes in 94.7%."""
    rates = _rates(0.90, 0.85, 0.0)
    assert rates["pass"] >= 0.9, rates
    assert rates["fail"] == 0.0, rates


def test_simulated_power_to_fail_a_worse_model() -> None:
    """Model 0.80 vs baseline 0.85 (200 positives): fails in 88.7%, never passes."""
    rates = _rates(0.80, 0.85, 0.0)
    assert rates["fail"] >= 0.85, rates
    assert rates["pass"] == 0.0, rates
