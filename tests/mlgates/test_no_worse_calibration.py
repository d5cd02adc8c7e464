"""no_worse is calibrated: its false-fail rate and its power, measured by simulation.

Design (binormal, so the true AUCs are known exactly): a latent score is N(0, 1) for
negatives and N(MU, 1) for positives; a model scores ``latent + N(0, sigma^2)`` noise of its
own. Its true AUC is ``Phi(MU / sqrt(2 (1 + sigma^2)))``. Two models with the same
``sigma`` and independent noise are exchangeable, so the null is exactly "equal AUC" (they
share the latent score, so they are correlated like a champion and its retrain). Every
figure comes from ``no_worse`` itself, one call per seed (the code path the gate uses).
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pytest

from mlgates import no_worse

MU = 1.5
SIGMA = 0.5
SEEDS = 1000


def true_auc(sigma: float, mu: float = MU) -> float:
    return NormalDist().cdf(mu / np.sqrt(2 * (1 + sigma**2)))


def sigma_for_auc(auc: float, mu: float = MU) -> float:
    """The noise SD whose model has true AUC ``auc``."""
    ratio = mu / NormalDist().inv_cdf(auc)
    return float(np.sqrt(ratio**2 / 2 - 1))


def _draw(
    rng: np.random.Generator,
    n_pos: int,
    n_neg: int,
    sigma_a: float,
    sigma_b: float,
    mu: float = MU,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y = np.r_[np.ones(n_pos, int), np.zeros(n_neg, int)]
    latent = rng.normal(size=y.size) + mu * y
    a = latent + sigma_a * rng.normal(size=y.size)
    b = latent + sigma_b * rng.normal(size=y.size)
    return y, a, b


def _verdicts(
    seeds: int,
    n_pos: int,
    n_neg: int,
    sigma_a: float,
    sigma_b: float,
    mu: float = MU,
    **kw: object,
) -> np.ndarray:
    out = []
    for seed in range(seeds):
        y, a, b = _draw(np.random.default_rng(seed), n_pos, n_neg, sigma_a, sigma_b, mu)
        out.append(no_worse(y, a, b, **kw).verdict)  # type: ignore[arg-type]
    return np.asarray(out)


def test_sigma_for_auc_inverts_true_auc() -> None:
    assert true_auc(sigma_for_auc(0.8)) == pytest.approx(0.8, abs=1e-12)
    assert true_auc(SIGMA) - true_auc(sigma_for_auc(true_auc(SIGMA) - 0.02)) == pytest.approx(
        0.02, abs=1e-12
    )


@pytest.mark.parametrize("margin", [0.0, 0.005])
def test_a_a_false_fail_rate_is_at_most_one_minus_confidence(margin: float) -> None:
    """Same true AUC, 1000 seeds, 2,000 rows (400 positives): the gate rarely fails.

    At margin 0 the fail rule (the whole 95% CI below 0) is a one-sided test at 2.5%:
    the measured rate must sit near that size, not only below 5% (a test that never
    fails would also be below 5%). At the default margin it is more conservative still.
    """
    verdicts = _verdicts(SEEDS, 400, 1600, SIGMA, SIGMA, margin=margin)
    rate = float(np.mean(verdicts == "fail"))
    assert rate <= 0.05, rate
    if margin == 0.0:
        # 2.5% +- 3 binomial SDs (0.5%) for 1000 seeds: the test is at its size
        assert 0.01 <= rate <= 0.04, rate
        # and symmetric: "better than the champion" is claimed about as often
        assert 0.01 <= float(np.mean(verdicts == "pass")) <= 0.04


def test_a_worse_model_by_0_02_auc_fails_in_95_percent_of_seeds() -> None:
    """True AUC 0.02 lower, 20,000 rows (4,000 positives), default margin 0.005."""
    worse = sigma_for_auc(true_auc(SIGMA) - 0.02)
    verdicts = _verdicts(200, 4000, 16000, SIGMA, worse)
    power = float(np.mean(verdicts == "fail"))
    assert power >= 0.95, power


def test_a_worse_model_on_one_of_60_slices_fails_after_holm() -> None:
    """Holm over 60 slices needs p < 0.025 / 60: DeLong's analytic p-value gets there.

    A resampled p-value cannot go below 1 / (n_resamples + 1) (1/1001 by default), and
    60/1001 > 0.025, so with bootstrap p-values no slice could ever fail here.
    """
    rng = np.random.default_rng(7)
    n_slices, per = 60, 400
    y, champ, cand = _draw(rng, 80 * n_slices, 320 * n_slices, SIGMA, SIGMA)
    region = np.arange(y.size) % n_slices
    broken = region == 0
    cand[broken] = rng.permutation(cand[broken])  # a defect on one slice only
    assert per * n_slices == y.size
    r = no_worse(y, champ, cand, slices=region.astype(str))
    assert r.details["slices"]["0"]["verdict"] == "fail", r.details["slices"]["0"]
    assert r.verdict == "fail", r.explain()
    assert "worse on slice(s): '0'" in r.message
    assert "DeLong" in r.message


def test_bootstrap_fallback_a_a_false_fail_rate() -> None:
    """Brier (bootstrap-decided) on the same A/A design, margin 0: 200 seeds x 400 rows.

    The bootstrap is slower, so fewer seeds. The fail rule is one-sided at 2.5%; at most
    15 fails of 200 (7.5%) is the check: 15 or fewer happens with probability 0.98 at a
    true 5% rate, so this bounds gross miscalibration only (measured: 7 of 200).
    """
    verdicts = []
    for seed in range(200):
        y, a, b = _draw(np.random.default_rng(seed), 80, 320, SIGMA, SIGMA)
        pa, pb = 1 / (1 + np.exp(-(a - MU / 2))), 1 / (1 + np.exp(-(b - MU / 2)))
        r = no_worse(y, pa, pb, metric="brier", margin=0.0, n_resamples=400, seed=seed)
        assert r.details["test"] == "paired_bootstrap"
        verdicts.append(r.verdict)
    fails = sum(v == "fail" for v in verdicts)
    assert fails <= 15, fails


@pytest.mark.parametrize(("n_pos", "n_neg"), [(15, 45), (50, 950)])
def test_a_a_false_fail_rate_on_small_samples(n_pos: int, n_neg: int) -> None:
    """The small-sample guard blocks passes only; a fail must be earned on its own.

    60 rows (15 positives) or 1,000 rows at a 5% rate: the fail side stays at its
    one-sided 2.5% (measured 2.2% and 1.8% over 1000 seeds).
    """
    verdicts = _verdicts(SEEDS, n_pos, n_neg, SIGMA, SIGMA, margin=0.0)
    assert float(np.mean(verdicts == "fail")) <= 0.04
    if n_pos < 30:  # min_class_rows: no pass on 15 positives, whatever the CI says
        assert not (verdicts == "pass").any()


@pytest.mark.parametrize(
    ("n_pos", "n_neg", "margin"),
    [(400, 1600, 0.005), (30, 300, 0.005), (13, 131, 0.01), (77, 21, 0.01)],
)
def test_false_pass_rate_at_the_margin(n_pos: int, n_neg: int, margin: float) -> None:
    """A candidate worse by exactly the margin must pass in at most 1 - confidence of seeds.

    This is the error that promotes a worse model. The pass rule (whole 95% CI above
    -margin) is one-sided at 2.5%; measured 2.7%, 3.0%, 2.3%, 3.2% (1000 seeds). The two
    small cases are the slice sizes of examples/sklearn_breast_cancer (13 malignant small
    tumours, 21 benign large ones), run with ``min_class_rows=1`` to measure the interval
    itself rather than the guard.
    """
    worse = sigma_for_auc(true_auc(SIGMA) - margin)
    verdicts = _verdicts(SEEDS, n_pos, n_neg, SIGMA, worse, margin=margin, min_class_rows=1)
    assert float(np.mean(verdicts == "pass")) <= 0.05


NEAR_1 = 3.5  # MU for a true AUC of 0.987, where fraud models live


@pytest.mark.parametrize(("n_pos", "n_neg"), [(13, 131), (30, 300), (90, 152)])
def test_near_auc_1_false_fail_rate(n_pos: int, n_neg: int) -> None:
    """True AUC 0.987, equal AUCs, margin 0: measured 0.3%, 0.6%, 1.4% (1000 seeds)."""
    same = _verdicts(SEEDS, n_pos, n_neg, SIGMA, SIGMA, NEAR_1, margin=0.0, min_class_rows=1)
    assert float(np.mean(same == "fail")) <= 0.05


def _near_1_false_pass_rate(n_pos: int, n_neg: int) -> float:
    worse = sigma_for_auc(true_auc(SIGMA, mu=NEAR_1) - 0.01, mu=NEAR_1)
    verdicts = _verdicts(SEEDS, n_pos, n_neg, SIGMA, worse, NEAR_1, margin=0.01, min_class_rows=1)
    return float(np.mean(verdicts == "pass"))


@pytest.mark.parametrize(("n_pos", "n_neg"), [(13, 131), (90, 152)])
def test_near_auc_1_false_pass_rate(n_pos: int, n_neg: int) -> None:
    """True AUC 0.987, candidate worse by exactly the margin 0.01: measured 3.8%, 3.2%.

    DeLong's symmetric Wald interval alone passed 13% and 5.3% here (the percentile
    bootstrap before it 12% and 4.8%); the gate's interval is the hull of the Wald and the
    logit-scale one (``stats.auc_difference_ci``).
    """
    assert _near_1_false_pass_rate(n_pos, n_neg) <= 0.05


@pytest.mark.xfail(
    strict=True,
    reason="known gap: measured 5.2% false passes at 30 positives near AUC 0.99 (Wald alone "
    "9.7%, the old bootstrap 8.8%); the one-sided rule claims 2.5%",
)
def test_near_auc_1_false_pass_rate_on_30_positives() -> None:
    """Kept failing on purpose (strict xfail) so the remaining gap stays visible."""
    assert _near_1_false_pass_rate(30, 300) <= 0.05


def test_a_near_copy_of_the_champion_passes_near_auc_1() -> None:
    """A retrain that barely moves the scores (AUC 0.987, 120 positives in 13,120 rows).

    An interval built from each AUC's own skewed interval (MOVER on logit limits) does not
    shrink when the two models are nearly the same: it gave CI [-0.011, 0.011] to mlref's
    retrained champion (difference 2.5e-6). The gate's interval must pass it.
    """
    passes = 0
    for seed in range(50):
        rng = np.random.default_rng(seed)
        y, champ, _ = _draw(rng, 120, 13_000, SIGMA, SIGMA, NEAR_1)
        retrain = champ + 1e-3 * rng.normal(size=champ.size)
        passes += no_worse(y, champ, retrain).verdict == "pass"
    assert passes == 50
