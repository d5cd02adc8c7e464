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
