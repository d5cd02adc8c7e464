"""Server replicas: N processes on N loopback ports sharing only the Feast store and the model.

Each replica is health-checked on its own port; each one's /metrics counts only the requests
it served, so the sum over replicas equals the requests sent. In front of them, Debian's nginx
with the configuration users are given (``mlref.scale.balancer.nginx_conf``, sample in
docs/nginx-replicas.conf): one address spreads requests over the replicas, and a killed
replica is routed around, every request still answered.
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
THROUGH_BALANCER = 8  # requests per balancer check (sequential, loopback)


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


@pytest.fixture(scope="module")
def balancer(replica_set: Any, nginx_available: None, tmp_path_factory: Any) -> Any:
    from mlref.scale.balancer import NginxBalancer

    _world, replicas = replica_set
    with NginxBalancer(replicas.urls, tmp_path_factory.mktemp("nginx")) as nginx:
        yield nginx


def _counted(replicas: Any) -> list[int]:
    from mlref.scale.replicas import requests_total

    return [requests_total(m) for m in replicas.metrics()]


def test_the_balancer_spreads_requests_over_the_replicas(
    replica_set: Any, balancer: Any, make_bodies: Any
) -> None:
    from mlref.scale.replicas import send_to_each

    world, replicas = replica_set
    before = _counted(replicas)
    bodies = make_bodies(world.held_out.head(THROUGH_BALANCER))
    assert send_to_each([balancer.url], bodies) == [len(bodies)]  # one address, all 200
    counted = [a - b for a, b in zip(_counted(replicas), before, strict=True)]
    assert sum(counted) == len(bodies)
    # round robin over identical replicas: each one served its share
    assert counted == [len(bodies) // N_REPLICAS] * N_REPLICAS


def test_health_reports_a_dead_replica(replica_set: Any) -> None:
    """Runs last in this module: stops one replica and sees the health check say so."""
    _world, replicas = replica_set
    victim = replicas.processes[-1]
    victim.stop(20.0)
    health = replicas.health()
    assert [h.alive for h in health] == [True] * (N_REPLICAS - 1) + [False]
    assert not health[-1].ready
    assert health[-1].detail == "process exited"


def _kill_last(replicas: Any) -> list[str]:
    """Stop the last replica (if the health test has not already); the survivors' URLs."""
    victim = replicas.processes[-1]
    if victim.proc is not None and victim.proc.poll() is None:
        victim.stop(20.0)
    return replicas.urls[:-1]


def _served_by(urls: list[str]) -> list[int]:
    from mlref.scale.replicas import replica_metrics, requests_total

    return [requests_total(replica_metrics(u)) for u in urls]


def test_the_balancer_routes_around_a_killed_replica(
    replica_set: Any, balancer: Any, make_bodies: Any
) -> None:
    from mlref.scale.replicas import send_to_each

    world, replicas = replica_set
    survivors = _kill_last(replicas)
    before = _served_by(survivors)
    bodies = make_bodies(world.held_out.head(THROUGH_BALANCER))
    # every request answered 200 although the balancer still lists the dead replica
    assert send_to_each([balancer.url], bodies) == [len(bodies)]
    counted = [a - b for a, b in zip(_served_by(survivors), before, strict=True)]
    assert sum(counted) == len(bodies)  # the survivors served everything


def test_without_retry_to_the_next_replica_requests_fail(
    replica_set: Any,
    nginx_available: None,
    make_bodies: Any,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The check above can fail: the same balancer with its retry line switched off answers
    the requests that land on the dead replica with an error."""
    import mlref.scale.balancer as balancer_module
    from mlref.scale.balancer import NginxBalancer
    from mlref.scale.replicas import send_to_each

    world, replicas = replica_set
    _kill_last(replicas)
    real = balancer_module.nginx_conf
    retry = "proxy_next_upstream error http_503 non_idempotent;"

    def no_retry(*args: Any, **kwargs: Any) -> str:
        text = real(*args, **kwargs)
        assert retry in text
        return text.replace(retry, "proxy_next_upstream off;")

    monkeypatch.setattr(balancer_module, "nginx_conf", no_retry)
    bodies = make_bodies(world.held_out.head(THROUGH_BALANCER))
    with NginxBalancer(replicas.urls, tmp_path / "nginx") as nginx:
        answered = send_to_each([nginx.url], bodies)
    assert answered[0] < len(bodies)


class _Draining:
    """A stand-in for a replica that is draining: every request answered 503 (as mlref does
    during shutdown), counted so the test knows the balancer really sent some there."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        outer = self
        self.hits = 0

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.hits += 1
                body = b'{"detail": "draining"}'
                self.send_response(503)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _Draining:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("retry", [True, False], ids=["as-shipped", "without-non_idempotent"])
def test_a_draining_replica_is_routed_around(
    replica_set: Any,
    nginx_available: None,
    make_bodies: Any,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
    retry: bool,
) -> None:
    """A replica answering 503 (draining) next to a live one: the shipped configuration
    retries the POST on the live replica; without ``non_idempotent`` nginx passes the 503s
    on (it never retries a POST it has sent), which is why the line is there."""
    import mlref.scale.balancer as balancer_module
    from mlref.scale.balancer import NginxBalancer
    from mlref.scale.replicas import send_to_each

    world, replicas = replica_set
    live = replicas.urls[0]
    if not retry:
        real = balancer_module.nginx_conf

        def without(*args: Any, **kwargs: Any) -> str:
            return real(*args, **kwargs).replace(" non_idempotent;", ";")

        monkeypatch.setattr(balancer_module, "nginx_conf", without)
    bodies = make_bodies(world.held_out.head(THROUGH_BALANCER))
    with _Draining() as draining, NginxBalancer([draining.url, live], tmp_path / "n") as nginx:
        answered = send_to_each([nginx.url], bodies)[0]
    assert draining.hits > 0  # the balancer did send requests to the draining replica
    if retry:
        assert answered == len(bodies)
    else:
        assert answered < len(bodies)


def test_the_shipped_sample_config_is_the_generated_one(
    nginx_available: None, tmp_path: Any
) -> None:
    """docs/nginx-replicas.conf is what ``python -m mlref.scale.balancer`` prints for two
    replicas, and nginx accepts it (``nginx -t``)."""
    import subprocess
    from pathlib import Path

    from mlref.scale.balancer import nginx_binary, nginx_conf

    sample = Path(__file__).resolve().parents[2] / "docs" / "nginx-replicas.conf"
    upstreams = ["http://127.0.0.1:8001", "http://127.0.0.1:8002"]
    assert sample.read_text() == nginx_conf(upstreams), (
        "regenerate: python -m mlref.scale.balancer --upstream http://127.0.0.1:8001 "
        "--upstream http://127.0.0.1:8002 > docs/nginx-replicas.conf"
    )
    # nginx -t on the sample with its files redirected into tmp_path (the sample's own
    # access log and pid paths are a system install's)
    binary = nginx_binary()
    assert binary is not None
    text = sample.read_text().replace("/var/log/nginx/mlref-access.log", str(tmp_path / "a.log"))
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"pid {tmp_path / 'nginx.pid'};\n" + text)
    done = subprocess.run(
        [binary, "-t", "-p", str(tmp_path), "-c", str(conf), "-e", "stderr"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_replica_count_is_bounded(tmp_path: Any) -> None:
    from mlref.scale.replicas import ReplicaSet
    from mlref.settings import make_settings

    with pytest.raises(ValueError, match=r"replicas must be 1\.\.8"):
        ReplicaSet(make_settings(tmp_path), 0)


def test_a_worker_pool_serves_on_one_port_and_stops(
    feast_world_factory: Any, tiny_model: Any, make_bodies: Any, tmp_path: Any
) -> None:
    # uvicorn --workers behind one port (what `python -m mlref.scale` measures against the
    # replicas): ready on 4 * workers answers in a row, scoring, then stopped with SIGTERM
    from mlref.scale.replicas import WorkerPool, send_to_each

    world = feast_world_factory("sqlite")
    pool = WorkerPool(
        world.settings,
        2,
        model_path=tiny_model.onnx_path,
        log_path=tmp_path / "pool.log",
        ready_timeout_s=240.0,
        stop_timeout_s=20.0,
    )
    with pool:
        assert pool.port > 0
        bodies = make_bodies(world.held_out.head(4))
        assert send_to_each([pool.url], bodies) == [len(bodies)]
    assert pool.proc is not None
    assert pool.proc.poll() is not None, "the pool outlived stop()"
