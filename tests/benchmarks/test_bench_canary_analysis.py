"""The canary routing benchmark's figures from its points (``benchmarks/bench_canary.py``):
throughput at the p99 budget per server, each routed server's ratio to routing off and the
goal flag, on hand-made points (the benchmark itself runs servers: ``nox -s perf``)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def _bench() -> Any:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location(
        "bench_canary_under_test", ROOT / "benchmarks" / "bench_canary.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def point(offered: float, achieved: float, p99: float | None) -> dict[str, Any]:
    return {
        "offered_rps": offered,
        "achieved_rps": achieved,
        "p99_ms": p99,
        "p50_ms": 5.0,
        "error_share": 0.0,
        "generator_lagging": False,
    }


def test_ratios_and_goal_from_points() -> None:
    bench = _bench()
    points = {
        "routing_off": [point(400, 400, 10), point(800, 790, 30), point(1600, 900, 400)],
        "routing_share_0.1": [point(400, 400, 11), point(800, 780, 45), point(1600, 850, 500)],
        "routing_share_0.5": [point(400, 399, 20), point(800, 600, 300)],
    }
    out = bench._analyse(points, 50.0, {})
    assert out["throughput_at_budget_rps"] == {
        "routing_off": 790,
        "routing_share_0.1": 780,
        "routing_share_0.5": 399,
    }
    assert out["ratio_to_routing_off"]["routing_share_0.1"] == 780 / 790
    assert out["goal_met"] is (780 / 790 >= 0.98)
    assert out["p99_ms_at_lightest_load"]["routing_share_0.5"] == 20
    text = bench.markdown_section(out)
    assert "| routing_share_0.1 | 780 | 0.987 |" in text


def test_a_saturated_machine_gives_no_ratio_not_a_made_up_one() -> None:
    bench = _bench()
    points = {name: [point(100, 100, 160)] for name in ("routing_off", "routing_share_0.1")}
    out = bench._analyse(points, 50.0, {})
    assert out["ratio_to_routing_off"] == {"routing_share_0.1": None}
    assert out["goal_met"] is None
