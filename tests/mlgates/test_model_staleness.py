"""``model_staleness`` (monitor-4) on ages and limits known by construction, and its limit
taken from ``staleness_impact`` on windows whose true AUC decay is known (the binormal
simulator of test_model_gates_staleness)."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from mlgates.gates import model_staleness, staleness_impact
from mlgates.result import GateInputError


def _sibling(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


aging = _sibling("test_model_gates_staleness").aging


def test_age_is_exact_and_held_to_the_cap() -> None:
    young = model_staleness("2024-01-01T00:00:00Z", "2024-01-29T00:00:00Z", max_age_weeks=5)
    assert young.verdict == "pass", young.explain()
    assert young.measured == 4.0
    assert young.threshold == 5.0
    assert young.unit == " weeks"
    assert young.rubric == ("monitor-4",)
    old = model_staleness("2024-01-01T00:00:00Z", "2024-01-29T00:00:00Z", max_age_weeks=3.5)
    assert old.verdict == "fail"
    assert "0.5 weeks over the limit 3.5" in old.message, old.message
    # the limit itself is still young enough
    assert model_staleness("2024-01-01", "2024-01-29", max_age_weeks=4).verdict == "pass"


def test_naive_timestamps_are_utc_and_zones_are_converted() -> None:
    # 2024-01-29 02:00+02:00 is 00:00 UTC: exactly 4 weeks after a naive (UTC) midnight
    result = model_staleness(dt.datetime(2024, 1, 1), "2024-01-29T02:00:00+02:00", max_age_weeks=10)
    assert result.measured == 4.0


def test_the_limit_is_staleness_impacts_cadence() -> None:
    rng = np.random.default_rng(1)
    age, y, s = aging(rng, 6, 4000, 0.92, 0.015)  # decays ~0.015 AUC per week
    decay = staleness_impact(age, y, s, max_loss=0.02)
    weeks = decay.details["max_retrain_interval_weeks"]
    assert 0.5 < weeks < 2.5
    trained = "2024-03-01T00:00:00Z"
    ok = model_staleness(trained, "2024-03-04T00:00:00Z", staleness=decay)  # 3 days
    assert ok.verdict == "pass"
    assert ok.threshold == pytest.approx(weeks)
    over = model_staleness(trained, "2024-03-22T00:00:00Z", staleness=decay)  # 3 weeks
    assert over.verdict == "fail", over.explain()
    assert "staleness_impact" in over.message
    # the tighter of the decay's limit and the policy cap holds
    capped = model_staleness(trained, "2024-03-02T00:00:00Z", staleness=decay, max_age_weeks=0.1)
    assert capped.verdict == "fail"
    assert capped.threshold == 0.1
    # a JSON report's copy of the result (inf and all) works like the result
    as_json = json.loads(decay.to_json())
    assert model_staleness(trained, "2024-03-22", staleness=as_json).verdict == "fail"


def test_no_decay_bound_and_no_cap_is_inconclusive() -> None:
    rng = np.random.default_rng(2)
    age, y, s = aging(rng, 6, 4000, 0.9, -0.01)  # improving: no upper bound on the age
    flat = staleness_impact(age, y, s)
    assert flat.details["max_retrain_interval_weeks"] == float("inf")
    undecided = model_staleness("2024-01-01", "2025-01-01", staleness=flat)
    assert undecided.verdict == "inconclusive"
    assert "no decay" in undecided.message
    assert undecided.measured == pytest.approx(366 / 7)
    assert model_staleness(
        "2024-01-01", "2025-01-01", staleness=flat, max_age_weeks=52
    ).verdict == ("fail")
    assert model_staleness("2024-01-01", "2024-02-01").verdict == "inconclusive"
    few = staleness_impact(*aging(rng, 2, 4000, 0.9, 0.0))
    assert model_staleness("2024-01-01", "2024-02-01", staleness=few).verdict == "inconclusive"


def test_no_training_time_is_inconclusive_never_a_pass() -> None:
    result = model_staleness(None, "2024-01-01", max_age_weeks=4)
    assert result.verdict == "inconclusive"
    assert "no recorded training time" in result.message
    assert result.measured is None


def test_now_defaults_to_the_wall_clock() -> None:
    trained = dt.datetime.now(dt.UTC) - dt.timedelta(weeks=2)
    result = model_staleness(trained, max_age_weeks=3)
    assert result.verdict == "pass"
    assert result.measured == pytest.approx(2.0, abs=1e-3)


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"trained_at": "2024-02-01"}, "after now"),
        ({"trained_at": 1_700_000_000}, "bare number"),
        ({"trained_at": "last tuesday"}, "not a timestamp"),
        ({"now": float("nan")}, "now"),
        ({"max_age_weeks": 0}, "max_age_weeks"),
        ({"max_age_weeks": "soon"}, "max_age_weeks"),
        ({"staleness": {"name": "no_worse", "details": {}}}, "staleness_impact"),
        ({"staleness": [1, 2]}, "staleness"),
    ],
)
def test_bad_input_names_the_argument(kwargs: dict, word: str) -> None:
    args = {"trained_at": "2024-01-01", "now": "2024-01-15", "max_age_weeks": 4, **kwargs}
    with pytest.raises(GateInputError, match=word):
        model_staleness(**args)


def test_the_decay_limit_errs_early_by_simulation() -> None:
    """Known truth: AUC decays 0.01 per week, max_loss 0.02, so the true limit is 2 weeks.
    The limit taken from the decay's upper bound is at most the true one in ~97.5% of
    samples: a model past the true limit fails (power), a model at half of it passes
    (false alarm: how often a young-enough model fails). Figures over 20 seeded runs of
    3,000 rows a week for 6 weeks, 100 resamples each (measured: power 1.0, false alarm 0.0)."""
    true_limit = 2.0
    fails_old = fails_young = 0
    runs = 20
    for seed in range(runs):
        rng = np.random.default_rng(100 + seed)
        decay = staleness_impact(
            *aging(rng, 6, 3000, 0.92, 0.01), max_loss=0.02, n_resamples=100, seed=seed
        )
        start = np.datetime64("2024-01-01T00:00:00")
        old = model_staleness(
            str(start),
            str(start + np.timedelta64(int(1.25 * true_limit * 7 * 24), "h")),
            staleness=decay,
        )
        young = model_staleness(
            str(start),
            str(start + np.timedelta64(int(0.5 * true_limit * 7 * 24), "h")),
            staleness=decay,
        )
        fails_old += old.verdict == "fail"
        fails_young += young.verdict == "fail"
    assert fails_old / runs >= 0.9
    assert fails_young / runs <= 0.05
