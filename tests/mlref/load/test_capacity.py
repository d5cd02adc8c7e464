"""The capacity ladder's rules, on synthetic points (no server): held / broke / unclear /
starved, where it stops, and the interval it reports."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mlref.load import capacity
from mlref.load.capacity import PointResult, judge_point, search_capacity

BUDGET = 50.0


def point(
    rate: float, p99_like_ms: float, *, n: int = 400, failed: int = 0, lag: float = 1.0
) -> PointResult:
    """``n`` latencies uniform on [1, p99_like_ms] (so the max is about ``p99_like_ms``)."""
    lat = np.linspace(1.0, p99_like_ms, n)
    return PointResult(
        offered_rps=rate,
        duration_s=n / rate,
        latencies_ms=lat,
        ok_latencies_ms=lat,
        statuses=(200,) * (n - failed) + (503,) * failed,
        achieved_rps=rate * 0.98,
        generator_lag_p99_ms=lag,
        summary={},
    )


def test_outcomes() -> None:
    judge = lambda p: judge_point(p, BUDGET, 0.95, 12.5, 1).outcome  # noqa: E731
    assert judge(point(50, 30.0)) == "held"  # the max of 400 is the upper bound
    assert judge(point(50, 300.0)) == "broke"  # lower bound (rank 392 of 400) ~ 294 ms
    assert judge(point(50, 30.0, failed=1)) == "broke"
    assert judge(point(50, 30.0, n=250)) == "unclear"  # no upper bound from 250 requests
    # a generator 20 ms behind its schedule: the machine, not the server, set the pace
    assert judge(point(50, 300.0, lag=20.0)) == "starved"
    assert judge(point(50, 30.0, n=250, lag=20.0)) == "starved"
    # ... but a point that held despite the lag held: waiting for a core only adds latency
    assert judge(point(50, 30.0, lag=20.0)) == "held"
    straddle = np.r_[np.full(395, 10.0), np.full(5, 60.0)]  # p99 bounds across 50 ms
    p = point(50, 30.0)
    p = PointResult(**{**p.__dict__, "latencies_ms": straddle})
    assert judge(p) == "unclear"


def ladder(
    monkeypatch: pytest.MonkeyPatch, outcomes: dict[float, list[PointResult]]
) -> list[float]:
    calls: list[float] = []

    def fake_run_point(
        url: str, env: dict[str, str], out_dir: Path, *, rate: float, **_: object
    ) -> PointResult:
        calls.append(rate)
        return outcomes[rate].pop(0)

    monkeypatch.setattr(capacity, "run_point", fake_run_point)
    return calls


def test_ladder_stops_at_the_first_break(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls = ladder(
        monkeypatch,
        {
            25: [point(25, 20.0)],
            50: [point(50, 45.0, n=250)],  # unclear: the ladder goes on
            100: [point(100, 30.0)],
            200: [point(200, 400.0)],
        },
    )
    r = search_capacity("http://127.0.0.1:1", {}, tmp_path, p99_budget_ms=BUDGET)
    assert calls == [25, 50, 100, 200]
    assert r.interval == (pytest.approx(98.0), 200)
    assert r.stopped == "broke"
    assert [p.outcome for p in r.points] == ["held", "unclear", "held", "broke"]


def test_starved_point_is_remeasured_once_then_ends_the_ladder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls = ladder(
        monkeypatch,
        {
            25: [point(25, 90.0, lag=30.0), point(25, 20.0)],  # starved, then fine
            50: [point(50, 80.0, lag=30.0), point(50, 500.0, lag=40.0)],  # starved twice
        },
    )
    r = search_capacity("http://127.0.0.1:1", {}, tmp_path, p99_budget_ms=BUDGET, pause_s=0)
    assert calls == [25, 25, 50, 50]
    assert r.interval == (pytest.approx(24.5), None)  # capacity at least 24.5 req/s
    assert r.starved
    assert r.stopped.startswith("starved")


def test_rate_and_time_caps(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ladder(monkeypatch, {rate: [point(rate, 20.0)] for rate in (25, 50, 100, 200)})
    r = search_capacity("http://127.0.0.1:1", {}, tmp_path, p99_budget_ms=BUDGET, max_rps=200)
    assert r.interval == (pytest.approx(196.0), None)
    assert r.stopped == "rate cap"
    # a point at 25 req/s needs 320 requests = 12.8 s: a 10 s cap measures nothing
    r = search_capacity("http://127.0.0.1:1", {}, tmp_path, p99_budget_ms=BUDGET, max_seconds=10)
    assert r.points == ()
    assert r.stopped == "time cap"
    assert r.interval == (0.0, None)
    with pytest.raises(ValueError, match="max_rps"):
        search_capacity("http://127.0.0.1:1", {}, tmp_path, p99_budget_ms=BUDGET, start_rps=0)


def test_run_point_retrying_measures_a_starved_phase_once_more(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The one re-measure rule the ladder and the gate suite's load phase share: a starved
    judgement is measured again (next seed, its own folder), at most once; anything else is
    final at once."""
    runs: list[tuple[Path, int]] = []
    lags = [30.0, 1.0, 30.0, 40.0, 1.0]

    def fake_run_point(
        url: str, env: dict[str, str], out_dir: Path, *, rate: float, seed: int, **_: object
    ) -> PointResult:
        runs.append((out_dir, seed))
        return point(rate, 20.0, lag=lags.pop(0))

    monkeypatch.setattr(capacity, "run_point", fake_run_point)

    def retrying() -> list[tuple[float, int]]:
        return capacity.run_point_retrying(
            "http://127.0.0.1:1",
            {},
            tmp_path,
            name="raw",
            rate=50,
            duration_s=1.0,
            seed=7,
            judge=lambda p, attempt: (p.generator_lag_p99_ms, attempt),
            starved=lambda judged: judged[0] > 10.0,
            pause_s=0,
        )

    assert retrying() == [(30.0, 1), (1.0, 2)]  # starved, then a verdict
    assert runs == [(tmp_path / "raw-1", 7), (tmp_path / "raw-2", 8)]
    assert retrying() == [(30.0, 1), (40.0, 2)]  # starved twice: two attempts, no third
    assert retrying() == [(1.0, 1)]  # not starved: measured once
    assert len(runs) == 5
    assert not lags
