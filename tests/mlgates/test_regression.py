"""no_worse: the candidate must not be worse than the champion."""

from __future__ import annotations

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
    assert r.rubric == ("infra-4", "monitor-7")


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
    assert r.verdict == "pass"
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
