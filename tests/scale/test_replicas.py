"""Server replicas: N processes on N loopback ports sharing only the Feast store and the model.

Each replica is health-checked on its own port; each one's /metrics counts only the requests
it served, so the sum over replicas equals the requests sent.
"""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = [
    pytest.mark.filterwarnings(
        "ignore:On demand feature view is an experimental feature:RuntimeWarning"
    ),
    pytest.mark.filterwarnings("ignore:fetch_arrow_table\\(\\) is deprecated:DeprecationWarning"),
]

N_REPLICAS = 2


@pytest.fixture(scope="module")
def replica_set(feast_world_factory: Any, tiny_model: Any, tmp_path_factory: Any) -> Any:
    from mlref.scale.replicas import ReplicaSet

    world = feast_world_factory("sqlite")
    replicas = ReplicaSet(
        world.settings,
        N_REPLICAS,
        model_path=tiny_model.onnx_path,
        run_dir=tmp_path_factory.mktemp("replicas"),
        ready_timeout_s=240.0,
        stop_timeout_s=20.0,
    ).start()
    try:
        yield world, replicas
    finally:
        replicas.stop()


def test_each_replica_is_healthy_on_its_own_port(replica_set: Any) -> None:
    _world, replicas = replica_set
    health = replicas.health()
    assert len({h.url for h in health}) == N_REPLICAS
    assert len({h.pid for h in health}) == N_REPLICAS
    assert all(h.alive and h.ready for h in health), [h.detail for h in health]


def test_metrics_stay_per_process(replica_set: Any, make_bodies: Any) -> None:
    from mlref.scale.replicas import requests_total, send_to_each

    world, replicas = replica_set
    before = [requests_total(m) for m in replicas.metrics()]
    bodies = make_bodies(world.held_out.head(7))
    sent = send_to_each(replicas.urls, bodies)
    assert sum(sent) == len(bodies)  # every request answered 200
    after = [requests_total(m) for m in replicas.metrics()]
    counted = [a - b for a, b in zip(after, before, strict=True)]
    assert counted == sent  # each replica counted exactly what it served
    assert sum(counted) == len(bodies)
    # separate prediction logs: nothing shared but the feature store and the model
    logs = {
        (world.settings.workdir / "replicas" / f"replica-{i}" / "logs" / "predictions.sqlite")
        for i in range(N_REPLICAS)
    }
    assert len(logs) == N_REPLICAS


def test_health_reports_a_dead_replica(replica_set: Any) -> None:
    """Runs last in this module: stops one replica and sees the health check say so."""
    _world, replicas = replica_set
    victim = replicas.processes[-1]
    victim.stop(20.0)
    health = replicas.health()
    assert [h.alive for h in health] == [True] * (N_REPLICAS - 1) + [False]
    assert not health[-1].ready
    assert health[-1].detail == "process exited"


def test_replica_count_is_bounded(tmp_path: Any) -> None:
    from mlref.scale.replicas import ReplicaSet
    from mlref.settings import make_settings

    with pytest.raises(ValueError, match=r"replicas must be 1\.\.8"):
        ReplicaSet(make_settings(tmp_path), 0)
