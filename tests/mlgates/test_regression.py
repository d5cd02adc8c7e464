"""no_worse: the candidate must not be worse than the champion."""

from __future__ import annotations

import re

import numpy as np
import pytest

from mlgates import no_worse
from mlgates.result import GateInputError


def _scores(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.2).astype(int)
    latent = rng.normal(size=n)
    champion = 1 / (1 + np.exp(-(1.5 * y + latent - 1.5)))
    candidate = 1 / (1 + np.exp(-(1.7 * y + latent + 0.3 * rng.normal(size=n) - 1.5)))
    return y, champion, candidate


def test_better_candidate_passes_with_delong() -> None:
    y, champ, cand = _scores(3000, 0)
    r = no_worse(y, champ, cand, n_resamples=300)
    assert r.verdict == "pass", r.explain()
    assert r.measured is not None
    assert r.measured > -0.005
    assert r.threshold == -0.005
    assert r.details["delong"]["pvalue_noninferiority"] < 0.05
    assert "DeLong" in r.message
    assert r.rubric == ("infra-4",)


def test_shuffled_candidate_fails() -> None:
    y, champ, _ = _scores(3000, 1)
    shuffled = np.random.default_rng(2).permutation(champ)
    r = no_worse(y, champ, shuffled, n_resamples=300)
    assert r.verdict == "fail"
    assert "worse than the champion by more than the margin" in r.message
    assert r.details["ci_high"] < -0.005
    assert r.details["delong"]["z"] < -5
    assert "keep the champion" in r.explain()


@pytest.mark.parametrize("metric", ["pr_auc", "log_loss", "brier", "recall_at_precision"])
def test_other_metrics_orientation(metric: str) -> None:
    y, champ, _ = _scores(3000, 3)
    shuffled = np.random.default_rng(4).permutation(champ)
    worse = no_worse(y, champ, shuffled, metric=metric, n_resamples=200)
    better = no_worse(y, shuffled, champ, metric=metric, n_resamples=200)
    assert worse.verdict == "fail", worse.explain()
    assert better.verdict == "pass", better.explain()
    assert worse.details["difference"] < 0 < better.details["difference"]


def test_tiny_indistinguishable_data_is_inconclusive_with_rows_needed() -> None:
    rng = np.random.default_rng(5)
    y = np.r_[np.zeros(40, int), np.ones(20, int)]
    a = y * 0.5 + rng.normal(size=60)
    b = y * 0.5 + rng.normal(size=60)
    r = no_worse(y, a, b, n_resamples=300)
    assert r.verdict == "inconclusive"
    assert not r.passed
    assert "Minimum detectable effect" in r.message
    assert r.details["minimum_detectable_effect"] > 0.05
    needed = r.details["rows_to_settle"]
    assert needed is None or needed > 60


def test_first_deploy_passes_with_note() -> None:
    y, _, cand = _scores(200, 6)
    r = no_worse(y, None, cand)
    assert r.verdict == "note"  # does not block, earns nothing
    assert r.passed
    assert r.rubric == ()
    assert "first deploy" in r.message
    assert r.details["first_deploy"] is True


def test_slice_failure_fails_gate_naming_slice() -> None:
    y, champ, _ = _scores(4000, 7)
    region = np.where(np.arange(4000) % 4 == 0, "FR", "DE")
    cand = champ.copy()
    fr = region == "FR"
    cand[fr] = np.random.default_rng(8).permutation(champ[fr])  # broken on FR only
    r = no_worse(y, champ, cand, slices=region, n_resamples=300, margin=0.05)
    assert r.verdict == "fail", r.explain()
    assert "worse on slice(s): 'FR'" in r.message
    assert r.details["slices"]["FR"]["verdict"] == "fail"
    assert r.details["slices"]["DE"]["verdict"] == "pass"
    assert "model-6" in r.rubric
    ok = no_worse(y, champ, champ + 1e-3 * y, slices={"FR": fr, "DE": ~fr}, n_resamples=200)
    assert ok.verdict == "pass", ok.explain()


def test_slices_too_small_are_skipped() -> None:
    y, champ, cand = _scores(500, 9)
    slices = np.where(np.arange(500) < 10, "tiny", "big")
    r = no_worse(y, champ, cand, slices=slices, n_resamples=100)
    assert r.details["slices"]["tiny"]["verdict"] == "skipped"


def test_bad_inputs() -> None:
    y, champ, cand = _scores(100, 10)
    with pytest.raises(GateInputError, match="has 99 values"):
        no_worse(y, champ[:99], cand)
    with pytest.raises(GateInputError, match="NaN label"):
        no_worse(np.r_[y[:-1], np.nan], champ, cand)
    with pytest.raises(GateInputError, match="both classes"):
        no_worse(np.zeros(100), champ, cand)
    with pytest.raises(GateInputError, match="unknown metric"):
        no_worse(y, champ, cand, metric="f1")
    with pytest.raises(GateInputError, match="slices has shape"):
        no_worse(y, champ, cand, slices=["a"] * 3)


def _hanley_mcneil_se(auc: float, n_pos: int, n_neg: int) -> float:
    """Hanley & McNeil (1982), eq. 2, written out independently of the gate."""
    q1 = auc / (2 - auc)
    q2 = 2 * auc**2 / (1 + auc)
    var = auc * (1 - auc) + (n_pos - 1) * (q1 - auc**2) + (n_neg - 1) * (q2 - auc**2)
    return float(np.sqrt(var / (n_pos * n_neg)))


def _separating(n_pos: int, n_neg: int, seed: int) -> tuple[np.ndarray, ...]:
    """Two different models that both rank every positive above every negative."""
    rng = np.random.default_rng(seed)
    y = np.r_[np.ones(n_pos, int), np.zeros(n_neg, int)]
    champ = np.where(y == 1, rng.uniform(0.6, 1.0, y.size), rng.uniform(0.0, 0.5, y.size))
    cand = np.where(y == 1, rng.uniform(0.55, 1.0, y.size), rng.uniform(0.0, 0.5, y.size))
    return y, champ, cand


def test_perfect_separation_on_a_tiny_sample_is_inconclusive_not_pass() -> None:
    from sklearn.metrics import roc_auc_score

    y, champ, cand = _separating(6, 54, 11)
    assert roc_auc_score(y, champ) == roc_auc_score(y, cand) == 1.0
    r = no_worse(y, champ, cand, n_resamples=300)
    assert r.verdict == "inconclusive", r.explain()
    assert r.details["test"] == "delong"
    assert r.details["delong"]["se"] == 0.0  # no discordant pair: DeLong's SE is 0
    assert r.details["degenerate"] is True
    assert "too few rows of one class: 6 positive(s) and 54 negative(s)" in r.message
    assert "DeLong's variance is degenerate" in r.message
    # the CI is widened by the Hanley-McNeil SE at the rule-of-three AUC 1 - 3/(6*54)
    se = _hanley_mcneil_se(1 - 3 / (6 * 54), 6, 54)
    half = 1.959964 * np.sqrt(2) * se
    assert r.details["ci_low"] == pytest.approx(-half, rel=1e-4)
    assert r.details["ci_high"] == pytest.approx(half, rel=1e-4)
    assert r.details["rows_to_settle"] > 60
    assert f"about {r.details['rows_to_settle']} rows (now 60)" in r.message
    assert "positives at the current rate (now 6)" in r.message


def test_perfect_separation_on_enough_rows_passes() -> None:
    y, champ, cand = _separating(300, 3000, 12)
    r = no_worse(y, champ, cand, n_resamples=200)
    assert r.verdict == "pass", r.explain()
    assert r.details["degenerate"] is True
    se = _hanley_mcneil_se(1 - 3 / (300 * 3000), 300, 3000)
    assert r.details["ci_floor_half_width"] == pytest.approx(1.959964 * np.sqrt(2) * se, rel=1e-4)
    assert r.details["ci_low"] > -0.005


def test_too_few_positives_blocks_a_pass_until_min_class_rows_is_met() -> None:
    rng = np.random.default_rng(13)
    y = np.r_[np.ones(20, int), np.zeros(400, int)]
    champ = y * 1.0 + rng.normal(size=y.size)
    cand = 1 / (1 + np.exp(-champ))  # recalibrated: same ranking, the CI is [0, 0]
    small = no_worse(y, champ, cand, n_resamples=200)
    assert small.verdict == "inconclusive", small.explain()
    assert "too few rows of one class: 20 positive(s)" in small.message
    # 30 positives at the current 20/420 rate
    assert small.details["rows_to_settle"] >= int(np.ceil(30 * 420 / 20))
    assert "at least 30 of each class: 630 rows" in small.message
    relaxed = no_worse(y, champ, cand, n_resamples=200, min_class_rows=20)
    assert relaxed.verdict == "pass", relaxed.explain()
    with pytest.raises(GateInputError, match="min_class_rows"):
        no_worse(y, champ, cand, min_class_rows=0)


def test_small_sample_does_not_hide_a_clear_failure() -> None:
    y, champ, _ = _scores(300, 14)  # ~60 positives, but a shuffled model is far worse
    shuffled = np.random.default_rng(15).permutation(champ)
    r = no_worse(y, champ, shuffled, n_resamples=200, min_class_rows=100)
    assert r.verdict == "fail", r.explain()
    assert "note: small sample" in r.message


@pytest.mark.parametrize("metric", ["log_loss", "brier"])
@pytest.mark.parametrize("label", [0, 1])
def test_single_class_labels_are_refused_for_probability_metrics(metric: str, label: int) -> None:
    p = np.random.default_rng(16).uniform(0.1, 0.9, 200)
    with pytest.raises(GateInputError, match="one class only") as info:
        no_worse(np.full(200, label), p, p + 0.001, metric=metric, n_resamples=100)
    only = "negative" if label == 0 else "positive"
    assert f"all 200 labels are {only}" in str(info.value)
    assert "both classes" in str(info.value)


def test_two_class_labels_with_a_probability_metric_run() -> None:
    y, champ, _ = _scores(2000, 17)
    r = no_worse(y, champ, champ, metric="log_loss", n_resamples=100)
    assert r.verdict == "pass", r.explain()
    assert r.details["difference"] == 0.0


def _explained_measured(text: str) -> float:
    found = re.search(r"measured (\S+) \(threshold >= (\S+)\)", text.splitlines()[0])
    assert found, text
    return float(found.group(1))


def test_measured_is_the_widened_bound_the_verdict_used() -> None:
    # 30 positives (= min_class_rows): only the degenerate bootstrap can keep it from passing
    y, champ, cand = _separating(30, 300, 12)
    r = no_worse(y, champ, cand, n_resamples=100)
    assert r.details["degenerate"] is True
    assert r.details["delong"]["se"] == 0.0  # the raw DeLong CI [0, 0] meets -margin ...
    assert r.verdict == "inconclusive", r.explain()  # ... but the widened CI straddles it
    assert r.measured == r.details["ci_low"]
    assert r.threshold is not None
    assert r.measured < r.threshold
    assert _explained_measured(r.explain()) == pytest.approx(
        r.details["ci_low"], abs=5e-5, rel=1e-3
    )


@pytest.mark.parametrize("case", ["better", "shuffled", "degenerate_small", "degenerate_large"])
def test_measured_meets_the_threshold_iff_the_gate_passes(case: str) -> None:
    if case.startswith("degenerate"):
        y, champ, cand = _separating(
            *((30, 300) if case == "degenerate_small" else (100, 1000)), 12
        )
    else:
        y, champ, cand = _scores(2000, 18)
        if case == "shuffled":
            cand = np.random.default_rng(19).permutation(champ)
    r = no_worse(y, champ, cand, n_resamples=100)
    assert r.measured is not None
    assert r.threshold is not None
    assert r.measured == r.details["ci_low"]
    assert (r.measured > r.threshold) == (r.verdict == "pass"), r.explain()
    assert (r.details["ci_high"] < r.threshold) == (r.verdict == "fail"), r.explain()
    assert _explained_measured(r.explain()) == pytest.approx(r.measured, abs=5e-5, rel=1e-3)
