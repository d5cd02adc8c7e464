"""no_worse slices: the overall guards apply to every slice; undecided slices are reported."""

from __future__ import annotations

import numpy as np

from mlgates import no_worse


def _models(n: int, seed: int, rate: float = 0.2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < rate).astype(int)
    champion = rng.normal(size=n) + 1.5 * y
    # a retrain: nearly the same ranking, so the whole set can show "not worse"
    return y, champion, champion + 0.05 * rng.normal(size=n)


def _separating_slice(
    y: np.ndarray, champ: np.ndarray, cand: np.ndarray, mask: np.ndarray, n_pos: int, seed: int
) -> None:
    """Make the slice ``mask`` hold ``n_pos`` positives that both models rank perfectly."""
    rng = np.random.default_rng(seed)
    idx = np.flatnonzero(mask)
    y[idx] = 0
    y[idx[:n_pos]] = 1
    champ[idx] = np.where(y[idx] == 1, rng.uniform(5, 6, idx.size), rng.uniform(-6, -5, idx.size))
    cand[idx] = np.where(y[idx] == 1, rng.uniform(5, 6, idx.size), rng.uniform(-6, -5, idx.size))


def test_a_slice_with_few_positives_cannot_pass_and_makes_the_gate_inconclusive() -> None:
    y, champ, cand = _models(6000, 1)
    region = np.where(np.arange(y.size) < 200, "rare", "main")
    # both models separate the rare slice's 5 positives perfectly: a bootstrap of it is
    # degenerate (CI [0, 0]), and 5 positives cannot resolve a margin of 0.005
    _separating_slice(y, champ, cand, region == "rare", 5, 2)
    r = no_worse(y, champ, cand, slices=region)
    rare = r.details["slices"]["rare"]
    assert rare["verdict"] == "inconclusive", rare
    assert "too few rows of one class: 5 positive(s)" in rare["reason"]
    assert r.details["overall_verdict"] == "pass"
    assert r.verdict == "inconclusive", r.explain()
    assert "undecided slice(s)" in r.message
    assert "'rare' (too few rows of one class: 5 positive(s)" in r.message
    # relaxing the guard explicitly lets the widened DeLong CI decide
    relaxed = no_worse(y, champ, cand, slices=region, min_class_rows=5)
    assert relaxed.details["slices"]["rare"]["degenerate"] is True


def test_a_single_class_slice_is_not_judged_by_auc_and_is_listed() -> None:
    # AUC is undefined on one class: no number of such rows settles it, so the slice is
    # listed as not judged instead of holding the gate inconclusive for ever
    y, champ, cand = _models(4000, 3)
    region = np.where(np.arange(y.size) < 100, "no_fraud", "rest")
    y[:100] = 0
    r = no_worse(y, champ, cand, slices=region)
    row = r.details["slices"]["no_fraud"]
    assert row["verdict"] == "skipped", row
    assert "one class (0 positives of 100 rows)" in row["reason"]
    assert "not judged: 'no_fraud' (one class" in r.message
    assert r.verdict == r.details["overall_verdict"] == "pass", r.explain()


def test_a_single_class_slice_blocks_a_probability_metric() -> None:
    # Brier is defined on one class, but a slice without both classes cannot meet the
    # class-size guard: undecided, so the gate does not pass
    y, champ, cand = _models(4000, 3)
    p_a, p_b = 1 / (1 + np.exp(-champ)), 1 / (1 + np.exp(-cand))
    region = np.where(np.arange(y.size) < 100, "no_fraud", "rest")
    y[:100] = 0
    r = no_worse(y, p_a, p_b, metric="brier", slices=region, n_resamples=300)
    assert r.details["slices"]["no_fraud"]["verdict"] == "inconclusive"
    assert r.verdict == "inconclusive", r.explain()


def test_slices_are_held_to_the_slice_margin() -> None:
    # a candidate slightly worse on one slice: undecided at the whole set's margin, a pass
    # at a wider per-slice margin, and still a fail when it is clearly worse there
    y, champ, cand = _models(6000, 11)
    region = np.where(np.arange(y.size) % 3 == 0, "small", "large")
    small = region == "small"
    rng = np.random.default_rng(12)
    slightly = cand.copy()
    slightly[small] += 0.15 * rng.normal(size=int(small.sum()))
    tight = no_worse(y, champ, slightly, slices=region, margin=0.005)
    assert tight.details["slices"]["small"]["verdict"] == "inconclusive", tight.explain()
    wide = no_worse(y, champ, slightly, slices=region, margin=0.005, slice_margin=0.03)
    assert wide.details["slices"]["small"]["verdict"] == "pass", wide.explain()
    assert wide.details["slice_margin"] == 0.03
    clearly = cand.copy()
    clearly[small] = rng.permutation(clearly[small])
    bad = no_worse(y, champ, clearly, slices=region, margin=0.005, slice_margin=0.03)
    assert bad.details["slices"]["small"]["verdict"] == "fail", bad.explain()
    assert bad.verdict == "fail"


def test_a_slice_that_clearly_fails_wins_over_undecided_ones() -> None:
    y, champ, cand = _models(8000, 4)
    region = np.where(np.arange(y.size) % 4 == 0, "FR", "DE").astype(object)
    region[:150] = "tiny_rare"
    _separating_slice(y, champ, cand, region == "tiny_rare", 4, 5)
    fr = region == "FR"
    cand[fr] = np.random.default_rng(6).permutation(cand[fr])
    r = no_worse(y, champ, cand, slices=region)
    assert r.details["slices"]["tiny_rare"]["verdict"] == "inconclusive"
    assert r.details["slices"]["FR"]["verdict"] == "fail"
    assert r.verdict == "fail", r.explain()
    assert "worse on slice(s): 'FR'" in r.message
    assert "'tiny_rare'" in r.message  # the undecided slice is still reported


def test_small_slices_are_listed_in_the_message() -> None:
    y, champ, cand = _models(2000, 7)
    region = np.where(np.arange(y.size) < 10, "tiny", "big")
    r = no_worse(y, champ, cand, slices=region)
    assert r.details["slices"]["tiny"]["verdict"] == "skipped"
    assert "not judged: 'tiny' (10 rows < min_slice_rows 30)" in r.message


def test_the_result_says_which_test_decided() -> None:
    y, champ, cand = _models(3000, 8)
    p_a, p_b = 1 / (1 + np.exp(-champ)), 1 / (1 + np.exp(-cand))
    slices = np.where(np.arange(y.size) % 2 == 0, "a", "b")
    auc = no_worse(y, champ, cand, slices=slices)
    assert auc.details["test"] == "delong"
    assert {row["test"] for row in auc.details["slices"].values()} == {"delong"}
    assert "by DeLong's paired test" in auc.message
    brier = no_worse(y, p_a, p_b, metric="brier", slices=slices, n_resamples=300)
    assert brier.details["test"] == "paired_bootstrap"
    assert {row["test"] for row in brier.details["slices"].values()} == {"paired_bootstrap"}
    assert "by paired bootstrap (300 resamples)" in brier.message


def test_bootstrap_slices_can_fail_after_holm_over_40_slices() -> None:
    """A resampled p-value is >= 1/1001; Holm over 40 slices needs < 0.025/40 = 0.000625.

    The slices' p-values come from the bootstrap SE (normal), so a clearly broken slice
    still fails.
    """
    rng = np.random.default_rng(9)
    y, champ, cand = _models(16000, 10)
    p_a = 1 / (1 + np.exp(-(champ - 1.5)))
    p_b = 1 / (1 + np.exp(-(cand - 1.5)))
    region = (np.arange(y.size) % 40).astype(str)
    broken = region == "0"
    p_b[broken] = rng.permutation(p_b[broken])
    r = no_worse(y, p_a, p_b, metric="brier", slices=region, margin=0.0)
    row = r.details["slices"]["0"]
    assert row["verdict"] == "fail", row
    assert row["pvalue_worse_holm"] < 0.025
    assert r.verdict == "fail", r.explain()


def test_a_candidate_that_separates_the_sample_perfectly_is_judged_by_wald() -> None:
    # on the logit scale an AUC of exactly 1 sits at infinity and the delta-method SE
    # explodes: a perfect candidate against a 0.98 champion came out inconclusive with the
    # CI [-0.985, 0.025]
    rng = np.random.default_rng(21)
    y = np.r_[np.ones(90, int), np.zeros(150, int)]
    champion = rng.normal(size=y.size) + 3.0 * y
    candidate = np.where(y == 1, rng.uniform(5, 6, y.size), rng.uniform(-6, -5, y.size))
    r = no_worse(y, champion, candidate, margin=0.01)
    assert r.details["candidate"] == 1.0
    assert r.verdict == "pass", r.explain()
    assert -0.01 < r.details["ci_low"] < r.details["difference"], r.details
