"""The server benchmark's verdicts from its measured points (``benchmarks/bench_server.py``).

The benchmark itself runs servers under load (``nox -s perf``); its analysis is a pure
function of the points, checked here on hand-made ones: which throughput counts, the share of
the floor, when batching counts as worse than batching off (p99 CIs that do not overlap), and
the flag for a floor the generator could not saturate.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    path = ROOT / "benchmarks" / "bench_server.py"
    spec = importlib.util.spec_from_file_location("bench_server_under_test", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def point(rate: float, achieved: float, p99: float, ci: tuple[float, float], **extra: Any) -> dict:
    return {
        "offered_rps": rate,
        "achieved_rps": achieved,
        "p99_ms": p99,
        "p99_ci_ms": list(ci),
        "error_share": 0.0,
        "generator_lagging": False,
        **extra,
    }


def ladder(bench: ModuleType, batching_p99_at_50: tuple[float, float]) -> dict[str, Any]:
    lo, hi = batching_p99_at_50
    points = {
        "batching_off": [
            point(50, 50, 10, (8, 12)),
            point(100, 100, 30, (20, 40)),
            point(200, 150, 900, (700, 1100)),
        ],
        "batching_wait_0ms": [
            point(50, 50, (lo + hi) / 2, (lo, hi)),
            point(100, 100, 12, (10, 14)),
            point(200, 200, 20, (15, 25)),
            point(400, 400, 45, (35, 60)),
            point(800, 600, 800, (600, 900)),
        ],
        "floor": [
            point(50, 50, 3, (2, 4)),
            point(100, 100, 3, (2, 4)),
            point(200, 200, 3, (2, 4)),
            point(400, 400, 3, (2, 4)),
            point(800, 790, 4, (3, 6), generator_lagging=True),
        ],
    }
    return bench._analyse(points, 50.0, 3.0)


def test_share_of_floor_uses_throughput_at_the_budget(bench: ModuleType) -> None:
    result = ladder(bench, (9, 13))
    share = result["goals"]["server_share_of_floor"]
    assert result["goals"]["basis"] == "throughput_at_budget_rps"
    assert result["configs"]["batching_wait_0ms"]["throughput_at_budget_rps"] == 400
    assert result["configs"]["floor"]["throughput_at_budget_rps"] == 790
    assert share["value"] == pytest.approx(400 / 790)
    assert share["met"] is False  # 0.506 < 0.6
    assert share["floor_limited_by_generator"] is True
    assert share["floor_unsaturated_at_ladder_top"] is False  # it stopped: the generator lagged


def test_batching_is_worse_only_when_its_p99_ci_lies_above_off(bench: ModuleType) -> None:
    overlapping = ladder(bench, (9, 13))["goals"]["batching_wait_0ms_not_worse_than_off"]
    assert overlapping["met"] is True
    assert overlapping["throughput_ratio"] == pytest.approx(400 / 100)
    clearly = ladder(bench, (14, 20))["goals"]["batching_wait_0ms_not_worse_than_off"]
    assert clearly["met"] is False
    assert list(clearly["loads_with_p99_clearly_above_off"]) == ["50"]


def test_a_floor_saturated_by_itself_is_not_flagged(bench: ModuleType) -> None:
    points = {
        "batching_wait_0ms": [point(50, 50, 10, (8, 12)), point(100, 60, 900, (800, 990))],
        "floor": [point(50, 50, 3, (2, 4)), point(100, 70, 900, (800, 990))],
    }
    result = bench._analyse(points, 50.0, 3.0)
    share = result["goals"]["server_share_of_floor"]
    assert share["floor_limited_by_generator"] is False
    assert share["floor_unsaturated_at_ladder_top"] is False
    assert share["value"] == pytest.approx(1.0)
    assert share["met"] is True


def test_a_floor_still_keeping_up_at_the_top_of_the_ladder_is_flagged(
    bench: ModuleType,
) -> None:
    """The ladder ended before the floor saturated: its figure is only a lower bound."""
    points = {
        "batching_wait_0ms": [point(50, 50, 10, (8, 12)), point(100, 60, 900, (800, 990))],
        "floor": [point(50, 50, 3, (2, 4)), point(100, 100, 3, (2, 4))],
    }
    share = bench._analyse(points, 50.0, 3.0)["goals"]["server_share_of_floor"]
    assert share["floor_unsaturated_at_ladder_top"] is True
    assert share["floor_limited_by_generator"] is False
    assert share["value"] == pytest.approx(0.5)


def test_framework_floor_splits_the_cost_and_never_counts_as_a_scoring_server(
    bench: ModuleType,
) -> None:
    """floor 1000/s, framework floor 500/s, server 250/s at the budget: 1, 1 and 2 ms per
    request go to uvicorn, the framework and the scoring work; the framework floor, though
    faster than every scoring server, is never the "best config"."""
    points = {
        "batching_off": [point(50, 50, 10, (8, 12)), point(100, 60, 900, (800, 990))],
        "batching_wait_0ms": [point(250, 250, 40, (30, 45)), point(500, 300, 900, (800, 990))],
        "framework_floor": [point(500, 500, 20, (15, 25)), point(1000, 600, 900, (800, 990))],
        "floor": [point(1000, 1000, 5, (4, 6)), point(2000, 1500, 900, (800, 990))],
    }
    result = bench._analyse(points, 50.0, 3.0)
    assert result["goals"]["server_share_of_floor"]["best_config"] == "batching_wait_0ms"
    assert result["goals"]["server_share_of_floor"]["value"] == pytest.approx(0.25)
    assert "framework_floor_not_worse_than_off" not in result["goals"]
    split = result["cost_split"]
    assert split["best_config"] == "batching_wait_0ms"
    assert split["server_share_of_framework_floor"] == pytest.approx(0.5)
    assert split["framework_floor_share_of_floor"] == pytest.approx(0.5)
    assert split["ms_per_request"] == pytest.approx(
        {
            "floor": 1.0,
            "framework_and_validation": 1.0,
            "features_model_batching_log": 2.0,
            "server": 4.0,
        }
    )
    fw = result["configs"]["framework_floor"]
    assert fw["at_budget_vs_floor"] == pytest.approx(0.5)
    assert "at_budget_vs_batching_off" not in fw


def test_no_cost_split_without_the_framework_floor(bench: ModuleType) -> None:
    points = {
        "batching_wait_0ms": [point(50, 50, 10, (8, 12))],
        "floor": [point(50, 50, 3, (2, 4))],
    }
    assert bench._analyse(points, 50.0, 3.0)["cost_split"] is None


def test_p99_ci_is_order_statistics_and_unbounded_when_the_sample_is_small(
    bench: ModuleType,
) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    small = rng.exponential(10.0, 150)
    low, high = bench.p99_ci(small)
    assert high is None  # 150 requests cannot bound a p99 from above
    assert low in small
    large = rng.exponential(10.0, 2000)
    low, high = bench.p99_ci(large)
    assert low in large
    assert high in large
    assert low < np.quantile(large, 0.99) < high
    # exact binomial coverage: P(order statistic bounds contain the true p99) >= 95%
    ranks = np.searchsorted(np.sort(large), [low, high]) + 1
    from scipy import stats as sps

    coverage = sps.binom.cdf(ranks[1] - 1, 2000, 0.99) - sps.binom.cdf(ranks[0] - 1, 2000, 0.99)
    assert coverage >= 0.95
    assert bench.p99_ci([1.0]) is None


def test_a_load_without_a_bounded_ci_is_not_comparable_not_worse(bench: ModuleType) -> None:
    points = {
        "batching_off": [point(50, 50, 10, (8, None))],  # type: ignore[arg-type]
        "batching_wait_0ms": [point(50, 50, 30, (25, 40))],
        "floor": [point(50, 50, 3, (2, 4))],
    }
    goal = bench._analyse(points, 50.0, 3.0)["goals"]["batching_wait_0ms_not_worse_than_off"]
    assert goal["loads_with_p99_clearly_above_off"] == {}
    assert goal["loads_not_comparable"] == ["50"]


def test_points_last_long_enough_for_a_p99(bench: ModuleType) -> None:
    assert bench.point_duration(50, 3.0) == 20.0
    assert bench.point_duration(200, 3.0) == 5.0
    assert bench.point_duration(1000, 3.0) == 3.0


def test_peers_are_compared_with_mlref_and_never_move_its_basis(bench: ModuleType) -> None:
    """A peer that never met the budget neither becomes mlref's best config nor switches the
    goals' basis; the better peer is chosen by throughput at the budget; CPU is compared raw
    and less idle CPU; a peer's wins are listed."""
    points = {
        "batching_wait_0ms": [point(100, 100, 10, (8, 12)), point(400, 400, 40, (30, 45))],
        "floor": [point(100, 100, 3, (2, 4)), point(800, 800, 5, (4, 6))],
        "framework_floor": [point(100, 100, 5, (4, 6)), point(800, 500, 900, (800, 990))],
        "litserve": [point(100, 100, 4, (3, 5)), point(400, 200, 900, (800, 990))],
        "bentoml": [point(100, 20, 8000, (7000, 9000))],
    }
    cpu = {
        "batching_wait_0ms": {
            "cpu_ms_per_request": 1.0,
            "cpu_s": 1.0,
            "wall_s": 10.0,
            "idle_cpu_ms_per_s": 0.0,
            "answered": 1000,
        },
        "litserve": {
            "cpu_ms_per_request": 2.0,
            "cpu_s": 2.0,
            "wall_s": 10.0,
            "idle_cpu_ms_per_s": 150.0,  # polls: 1.5 s of the 2 s with no traffic
            "answered": 1000,
        },
    }
    result = bench._analyse(points, 50.0, 3.0, peers=frozenset({"litserve", "bentoml"}), cpu=cpu)
    goals = result["goals"]
    assert goals["basis"] == "throughput_at_budget_rps"  # bentoml's 0 does not switch it
    assert goals["server_share_of_floor"]["best_config"] == "batching_wait_0ms"
    vs = goals["mlref_vs_best_peer"]
    assert vs["peer_config"] == "litserve"
    assert vs["value"] == pytest.approx(400 / 100)
    assert vs["met"] is True
    cpu_goal = goals["mlref_cpu_vs_best_peer"]
    assert cpu_goal["value"] == pytest.approx(0.5)
    assert cpu_goal["met"] is True
    assert cpu_goal["busy_value"] == pytest.approx(1.0 / 0.5)  # less idle: litserve 0.5 ms
    assert cpu_goal["busy_met"] is False
    assert goals["peer_wins"] == ["litserve: p99 clearly lower at 100 req/s"]
    assert goals["server_share_of_framework_floor"]["value"] == pytest.approx(400 / 100)
    assert result["configs"]["litserve"]["kind"] == "peer"
    assert "at_budget_vs_batching_off" not in result["configs"]["litserve"]


def test_a_lower_p99_of_a_saturated_peer_is_not_a_win(bench: ModuleType) -> None:
    points = {
        "batching_wait_0ms": [point(100, 100, 10, (8, 12)), point(400, 300, 2000, (1900, 2100))],
        "floor": [point(100, 100, 3, (2, 4))],
        "litserve": [point(100, 100, 12, (10, 14)), point(400, 250, 900, (800, 990))],
    }
    goals = bench._analyse(points, 50.0, 3.0, peers=frozenset({"litserve"}))["goals"]
    assert goals["peer_wins"] == []
