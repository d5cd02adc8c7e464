"""The canary gate's statistics, checked by hand and by simulation (seeded, vectorised).

Figures (measured with ``uv run pytest tests/mlgates/test_canary_simulation.py -q -s``, on a
shared 2-core machine, so the timings are inflated): 1,000 seeded A/A rollouts of 4,000
requests per arm, looked at after every batch of 100 (40 looks): the sequential gate made
a false promote-or-rollback decision in 1 of 1,000 (0.001, alpha 0.05; the PrPl-EB sequence
with a union bound over the arms is conservative), a fixed-horizon two-sample z-test at 0.05
re-run at every look in 312 of 1,000 (0.312; looked at once, at the end: 0.067). A canary
with a bad-outcome rate of 0.20 against the champion's 0.10 is rolled back within 2,000
requests per arm in 998 of 1,000 seeds (docs/canary.md promises 95% by 2,000). Through
the gate itself, with both guardrails (alpha split six ways): 0 of 1,000 A/A rollouts
decided. The simulations take about 15 s together.

Which test guards what: the difference interval is built from per-arm intervals, whose
widths add, so it is conservative; with a fixed-horizon (Wald) interval per arm in place of
the sequence the A/A difference tests still pass (measured: 0.020 false decisions over 40
looks). Anytime validity itself is guarded by the per-arm coverage test: the Wald interval
misses the mean at some sample size in 0.549 of 1,000 sequences (the PrPl-EB sequence: at
most 0.05), and by the hand computation of the formula.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as scipy_stats

from mlgates import canary
from mlgates.gates.sequential import confidence_sequence

SEEDS = 1000
N = 4000
BATCH = 100
ALPHA = 0.05
LOOKS = np.arange(BATCH - 1, N, BATCH)  # index of the last request of each batch


def _hand_prpl_eb(x: list[float], alpha: float) -> list[tuple[float, float]]:
    """Waudby-Smith & Ramdas (2023) Theorem 2, written out as a loop, without intersection.

    The same bets, centre and radius as confseq's ``predmix_empbern_cs`` (the authors'
    package), except that v_i centres on the regularised mean mu_{i-1} as in the paper
    (confseq uses the plain running mean; any predictable centre is valid)."""
    log_term = math.log(2 / alpha)
    mu_prev, var_prev = 0.5, 0.25
    sum_x = sum_sq = sum_bet = sum_bet_x = sum_pen = 0.0
    out = []
    for t, xt in enumerate(x, start=1):
        bet = min(math.sqrt(2 * log_term / (var_prev * t * math.log(1 + t))), 0.5)
        psi = (-math.log(1 - bet) - bet) / 4
        sum_pen += 4 * (xt - mu_prev) ** 2 * psi
        sum_bet += bet
        sum_bet_x += bet * xt
        centre = sum_bet_x / sum_bet
        radius = (log_term + sum_pen) / sum_bet
        out.append((max(centre - radius, 0.0), min(centre + radius, 1.0)))
        sum_x += xt
        mu = (0.5 + sum_x) / (t + 1)
        sum_sq += (xt - mu) ** 2
        var_prev = (0.25 + sum_sq) / (t + 1)
        mu_prev = mu
    return out


def test_sequence_matches_the_papers_formula_by_hand() -> None:
    x = [0.2, 0.9, 0.4, 0.4, 0.0, 1.0, 0.3, 0.5] * 40
    low, high = confidence_sequence(x, 0.05)
    hand = _hand_prpl_eb(x, 0.05)
    run_low = np.maximum.accumulate([h[0] for h in hand])
    run_high = np.minimum.accumulate([h[1] for h in hand])
    np.testing.assert_allclose(low, run_low, rtol=0, atol=1e-12)
    np.testing.assert_allclose(high, run_high, rtol=0, atol=1e-12)
    # first step by hand: lambda_1 = min(sqrt(2 log 40 / (1/4 * 1 * log 2)), 1/2) = 1/2
    bet = 0.5
    psi = (-math.log(0.5) - 0.5) / 4
    radius = (math.log(40) + 4 * (0.2 - 0.5) ** 2 * psi) / bet
    assert high[0] == min(0.2 + radius, 1.0)
    assert low[0] == max(0.2 - radius, 0.0)
    assert np.all(np.diff(low) >= 0)
    assert np.all(np.diff(high) <= 0)


def test_sequence_covers_the_mean_at_every_sample_size() -> None:
    rng = np.random.default_rng(7)
    x = rng.beta(2, 5, size=(SEEDS, 2000))  # mean 2/7
    low, high = confidence_sequence(x, ALPHA)
    ever_missed = ((low > 2 / 7) | (high < 2 / 7)).any(axis=1)
    assert ever_missed.mean() <= ALPHA


def _rollouts(p_champion: float, p_canary: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    champion = (rng.random((SEEDS, N)) < p_champion).astype(np.float64)
    candidate = (rng.random((SEEDS, N)) < p_canary).astype(np.float64)
    return champion, candidate


def _sequential_looks(
    champion: np.ndarray, candidate: np.ndarray, looks: np.ndarray = LOOKS
) -> tuple[np.ndarray, np.ndarray]:
    """The gate's primary interval (canary - champion) at every look, for every seed: the
    gate gives each arm's sequence alpha / 2 when no guardrail is passed."""
    ch_low, ch_high = confidence_sequence(champion, ALPHA / 2)
    ca_low, ca_high = confidence_sequence(candidate, ALPHA / 2)
    low = ca_low[:, looks] - ch_high[:, looks]
    high = ca_high[:, looks] - ch_low[:, looks]
    return low, high


def _peeked_z_test(champion: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """A fixed-horizon two-sample z-test at ALPHA, re-run at every look: rejects per look."""
    n = LOOKS + 1.0
    m_ch = np.cumsum(champion, axis=1)[:, LOOKS] / n
    m_ca = np.cumsum(candidate, axis=1)[:, LOOKS] / n
    var = (m_ch * (1 - m_ch) + m_ca * (1 - m_ca)) / n
    z = np.divide(m_ca - m_ch, np.sqrt(var), out=np.zeros_like(var), where=var > 0)
    return np.abs(z) > scipy_stats.norm.ppf(1 - ALPHA / 2)


def test_aa_rollout_looked_at_every_batch_rarely_decides_and_peeking_does() -> None:
    champion, candidate = _rollouts(0.1, 0.1, seed=2026)
    low, high = _sequential_looks(champion, candidate)
    # margin 0: promote needs the canary shown better, rollback shown worse; both are wrong
    false_decision = ((low > 0) | (high <= 0)).any(axis=1).mean()
    peeked = _peeked_z_test(champion, candidate).any(axis=1).mean()
    single_look = _peeked_z_test(champion, candidate)[:, -1].mean()
    print(
        f"\nA/A, {SEEDS} seeds, {len(LOOKS)} looks: sequential false decisions "
        f"{false_decision:.3f}; z-test peeked at every look {peeked:.3f} (one look at the "
        f"end: {single_look:.3f})"
    )
    assert false_decision <= ALPHA
    # the z-test is fine when looked at once (within 3 simulation SEs of alpha) ...
    assert single_look <= ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / SEEDS)
    # ... and not when re-run at every look: the inflation the sequence avoids
    assert peeked > 3 * ALPHA


def test_gate_agrees_with_the_vectorised_simulation() -> None:
    champion, candidate = _rollouts(0.1, 0.2, seed=5)
    low, high = _sequential_looks(champion[:3], candidate[:3])
    for seed in range(3):
        result = canary(champion[seed], candidate[seed], min_samples=1, max_samples=N)
        interval = result.details["intervals"]["metric"]
        assert math.isclose(interval["low"], low[seed, -1], abs_tol=1e-12)
        assert math.isclose(interval["high"], high[seed, -1], abs_tol=1e-12)


def test_worse_canary_is_rolled_back_within_the_promised_sample() -> None:
    # docs/canary.md: bad-outcome rate 0.20 vs 0.10 -> rolled back by 2,000 per arm in >= 95%
    champion, candidate = _rollouts(0.1, 0.2, seed=11)
    low, _ = _sequential_looks(champion, candidate, LOOKS[LOOKS < 2000])
    rolled_back = (low > 0).any(axis=1).mean()
    print(f"\nworse by 0.10: rolled back within 2,000 per arm in {rolled_back:.3f} of seeds")
    assert rolled_back >= 0.95


def test_a_decision_once_reached_stays() -> None:
    # the running intersection nests the intervals, so "decided at some look" is "decided
    # at the last look": one gate call on the whole rollout tells whether any look decided
    champion, candidate = _rollouts(0.1, 0.13, seed=3)
    low, high = _sequential_looks(champion, candidate)
    assert np.array_equal((low > 0).any(axis=1), low[:, -1] > 0)
    assert np.array_equal((high <= 0).any(axis=1), high[:, -1] <= 0)
    assert np.all(np.diff(low, axis=1) >= 0)
    assert np.all(np.diff(high, axis=1) <= 0)


def test_aa_through_the_gate_with_both_guardrails() -> None:
    # end to end: the gate itself, primary metric + error-rate + latency guardrails (alpha
    # split six ways), all margins 0, so any promote or rollback of an A/A rollout is false
    rng = np.random.default_rng(99)
    seeds, n = 1000, 2000
    verdicts = []
    for _ in range(seeds):
        cost = rng.random((2, n)) < 0.1
        errors = rng.random((2, n)) < 0.02
        latency = rng.lognormal(np.log(20), 0.4, (2, n))
        verdicts.append(
            canary(
                cost[0].astype(float),
                cost[1].astype(float),
                champion_errors=errors[0].astype(float),
                canary_errors=errors[1].astype(float),
                error_margin=0.0,
                champion_latency_ms=latency[0],
                canary_latency_ms=latency[1],
                latency_threshold_ms=40.0,
                latency_margin=0.0,
                max_samples=10 * n,
            ).verdict
        )
    false_decisions = sum(v in ("pass", "fail") for v in verdicts) / seeds
    print(f"\nA/A through the gate with guardrails: false decisions {false_decisions:.3f}")
    assert false_decisions <= ALPHA
    assert set(verdicts) <= {"pass", "fail", "inconclusive"}
