"""``python -m mlref.scale`` exits non-zero when a measured part shows a broken engine.

CI runs the measurements at a small size (``.ci/run``) to keep the worker pool and Locust's
``--processes`` mode honest; this pins what counts as broken on hand-made reports (no engine
needed): Spark parity, replica accounting and health, and failed or missing load requests.
Throughput and latency never fail it (a shared machine makes them figures, not verdicts).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mlref.scale.run import MAX_LOAD_ERROR_RATE, problems

HEALTHY: dict[str, Any] = {
    "spark_batch": {"parity_ok": True, "parity_max_abs_diff": 1e-7, "spark_vs_single_ratio": 0.1},
    "replicas": {
        "health": [{"ready": True}, {"ready": True}],
        "answered_200_per_replica": [20, 20],
        "metrics_count_per_replica": [20, 20],
        "metrics_sum_equals_sent": True,
    },
    "distributed_load": {"requests": 2900, "error_rate": 0.0, "p99_ms": 5000.0, "passed": False},
}


def _broken(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    report = copy.deepcopy(HEALTHY)
    node = report
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return report


def test_a_healthy_report_passes_even_when_slow() -> None:
    # p99 5 s and the load gate's own verdict False: figures on a shared machine, not breakage
    assert problems(HEALTHY) == []
    assert problems({}) == []  # parts not run are not failures


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("spark_batch", "parity_ok"), False, "Spark scores differ"),
        (("replicas", "metrics_sum_equals_sent"), False, "replica /metrics counted"),
        (("replicas", "health"), [{"ready": True}, {"ready": False}], "not ready"),
        (("distributed_load", "requests"), 0, "sent no requests"),
        (("distributed_load", "error_rate"), MAX_LOAD_ERROR_RATE + 0.001, "requests failed"),
    ],
)
def test_a_broken_engine_fails_the_run(path: tuple[str, ...], value: Any, expected: str) -> None:
    found = problems(_broken(path, value))
    assert len(found) == 1
    assert expected in found[0]


def test_the_error_budget_is_inclusive() -> None:
    assert problems(_broken(("distributed_load", "error_rate"), MAX_LOAD_ERROR_RATE)) == []
