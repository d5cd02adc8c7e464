"""Server replicas: several scoring processes sharing nothing but the feature store and the model.

Two ways, both loopback-only and bounded here:

* :class:`ReplicaSet`: N server processes on N ports (``python -m mlref.load.server``, the
  load helper's server entry), each with its own workdir (prediction log, logs), health
  checked one by one (``/healthz``, ``/readyz``); what a process manager or a Kubernetes
  Deployment does, one replica per pod behind a load balancer. Each replica's ``/metrics``
  counts only its own requests. The balancer in front is nginx, configured by
  :func:`mlref.scale.balancer.nginx_conf` (tests/scale runs it against a ReplicaSet).
* :class:`WorkerPool`: one port, ``uvicorn --workers N --factory
  mlref.scale.replicas:app_from_env``; the kernel spreads connections over the workers and
  uvicorn's supervisor health-checks and restarts them. One URL for a load test; a scrape of
  ``/metrics`` reaches one worker (per-process metrics, as with any pre-fork server: scrape the
  replicas separately, or run a ReplicaSet, to see them all).

What a replica shares: the Feast registry and online store (SQLite file or Redis; its
``feature_store.yaml`` is a copy of the shared one, with absolute paths / the Redis connection
string) and the ONNX model file (+ card). What it does not: prediction log, metrics, batcher,
ONNX Runtime session, process.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

# the launcher imports only the standard library at module level: cheap to import here
from mlref.load.launcher import http_get, stop_process, tail_log

if TYPE_CHECKING:
    from fastapi import FastAPI

    from mlref.load.launcher import ServerHandle, ServerProcess
    from mlref.settings import Settings

logger = logging.getLogger(__name__)

MAX_REPLICAS = 8
SHARED_ENV = "MLREF_REPLICA_SHARED"  # the shared workdir (feature repo) for app_from_env
MODEL_ENV = "MLREF_REPLICA_MODEL"  # the ONNX file every worker serves


def _check_count(n: int) -> int:
    if not 1 <= int(n) <= MAX_REPLICAS:
        raise ValueError(f"replicas must be 1..{MAX_REPLICAS} on one machine, got {n}")
    return int(n)


def replica_settings(shared: Settings, name: str) -> Settings:
    """Settings for one replica: its own workdir under ``shared.workdir/replicas/<name>`` with
    a copy of the shared ``feature_store.yaml`` (the store itself stays shared) and the shared
    registry URI."""
    source = shared.feature_repo / "feature_store.yaml"
    if not source.is_file():
        raise FileNotFoundError(
            f"no feature repo at {shared.feature_repo}; build the feature store first "
            "(mlref.features.store.build_feature_store or `mlref demo`)"
        )
    replica = shared.with_(
        workdir=shared.workdir / "replicas" / name, tracking_uri=shared.registry_uri
    )
    replica.feature_repo.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, replica.feature_repo / "feature_store.yaml")
    replica.prediction_log.parent.mkdir(parents=True, exist_ok=True)
    return replica


def champion_model_path(settings: Settings) -> Path:
    """The ONNX file the registry's champion points at (loaded once, by the parent)."""
    from mlref.registry import CHAMPION, Registry

    return Path(Registry(settings).load(CHAMPION).onnx_path)


def _get(url: str, path: str, timeout: float = 5.0) -> tuple[int, str]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.hostname != "127.0.0.1" or parts.port is None:
        raise ValueError(f"replicas are reached on loopback only, not {url}")
    return http_get(parts.port, path, timeout=timeout)


@dataclass(frozen=True)
class ReplicaHealth:
    name: str
    url: str
    pid: int
    alive: bool
    ready: bool
    detail: str


class ReplicaSet:
    """N scoring processes on N loopback ports (``with ReplicaSet(...) as replicas``)."""

    def __init__(
        self,
        shared: Settings,
        n: int,
        *,
        model_path: str | os.PathLike[str] | None = None,
        run_dir: str | os.PathLike[str] | None = None,
        ready_timeout_s: float = 240.0,
        stop_timeout_s: float = 30.0,
        server_options: dict[str, Any] | None = None,
    ) -> None:
        self.shared = shared
        self.n = _check_count(n)
        self.model_path = Path(model_path) if model_path else None
        self.run_dir = Path(run_dir) if run_dir else shared.workdir / "replicas" / "run"
        self.ready_timeout_s = ready_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.server_options = dict(server_options or {})
        self.processes: list[ServerProcess] = []
        self.handles: list[ServerHandle] = []

    @property
    def urls(self) -> list[str]:
        return [h.url for h in self.handles]

    def start(self) -> ReplicaSet:
        """Start every replica, then wait for all (their start-ups overlap)."""
        from mlref.load.launcher import ServerProcess

        model = self.model_path or champion_model_path(self.shared)
        try:
            for i in range(self.n):
                name = f"replica-{i}"
                settings = replica_settings(self.shared, name)
                proc = ServerProcess(
                    settings.workdir,
                    self.run_dir,
                    model_path=model,
                    name=name,
                    **self.server_options,
                )
                self.processes.append(proc.start())
            self.handles = [p.wait_ready(self.ready_timeout_s) for p in self.processes]
        except BaseException:
            self.stop()
            raise
        logger.info("%d replicas ready: %s", self.n, ", ".join(self.urls))
        return self

    def health(self) -> list[ReplicaHealth]:
        """``/healthz`` and ``/readyz`` of every replica, each asked directly."""
        out = []
        for proc, handle in zip(self.processes, self.handles, strict=True):
            alive = proc.proc is not None and proc.proc.poll() is None
            ready, detail = False, "process exited"
            if alive:
                try:
                    live, _ = _get(handle.url, "/healthz")
                    status, body = _get(handle.url, "/readyz")
                    ready = live == 200 and status == 200
                    detail = f"healthz {live}, readyz {status}: {body[:200]}"
                except OSError as exc:
                    detail = f"{type(exc).__name__}: {exc}"
            out.append(ReplicaHealth(proc.name, handle.url, handle.pid, alive, ready, detail))
        return out

    def metrics(self) -> list[dict[str, float]]:
        """Each replica's ``/metrics``, parsed (``{'name{labels}': value}``)."""
        return [replica_metrics(url) for url in self.urls]

    def stop(self) -> None:
        for proc in self.processes:
            with contextlib.suppress(Exception):
                proc.stop(self.stop_timeout_s)

    def __enter__(self) -> ReplicaSet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def replica_metrics(url: str) -> dict[str, float]:
    """One replica's ``/metrics``, parsed (``{'name{labels}': value}``)."""
    from mlref.serve.metrics import parse_metrics

    status, text = _get(url, "/metrics")
    if status != 200:
        raise RuntimeError(f"{url}/metrics answered {status}: {text[:200]}")
    return parse_metrics(text)


def requests_total(metrics: dict[str, float], path: str = "/predict", status: str = "200") -> int:
    """``mlref_requests_total{path=..., status=...}`` from parsed metrics (0 when absent)."""
    key = f'mlref_requests_total{{path="{path}",status="{status}"}}'
    return int(metrics.get(key, 0.0))


# ----------------------------------------------------------------------------- uvicorn workers
def app_from_env() -> FastAPI:
    """``uvicorn --factory`` entry: the scoring app for this worker process.

    Reads the shared workdir from ``MLREF_REPLICA_SHARED`` and the ONNX model from
    ``MLREF_REPLICA_MODEL``; each worker gets its own replica workdir (``worker-<pid>``).
    """
    from mlref.serve.app import ServeConfig, create_app
    from mlref.settings import make_settings

    shared_dir = os.environ.get(SHARED_ENV)
    model = os.environ.get(MODEL_ENV)
    if not shared_dir or not model:
        raise RuntimeError(
            f"set {SHARED_ENV} (the shared workdir) and {MODEL_ENV} (the ONNX model) for "
            "mlref.scale.replicas:app_from_env"
        )
    settings = replica_settings(make_settings(shared_dir), f"worker-{os.getpid()}")
    config = ServeConfig.from_settings(settings, model_path=Path(model), shadow_alias=None)
    return create_app(settings, config=config)


class WorkerPool:
    """``uvicorn --workers N`` on one loopback port (``with WorkerPool(...) as url``)."""

    def __init__(
        self,
        shared: Settings,
        workers: int,
        *,
        model_path: str | os.PathLike[str] | None = None,
        log_path: str | os.PathLike[str] | None = None,
        ready_timeout_s: float = 240.0,
        stop_timeout_s: float = 30.0,
    ) -> None:
        self.shared = shared
        self.workers = _check_count(workers)
        self.model_path = Path(model_path) if model_path else None
        self.log_path = Path(log_path) if log_path else shared.workdir / "replicas" / "pool.log"
        self.ready_timeout_s = ready_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "uvicorn",
            "mlref.scale.replicas:app_from_env",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            "--no-access-log",
            "--timeout-graceful-shutdown",
            "20",
        ]

    def start(self) -> WorkerPool:
        from mlref.pipeline import free_port

        model = self.model_path or champion_model_path(self.shared)
        self.port = free_port()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, SHARED_ENV: str(self.shared.workdir), MODEL_ENV: str(model)}
        with self.log_path.open("w") as log:
            self.proc = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
            )
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(self) -> None:
        """Until ``/readyz`` answers 200 on ``4 * workers`` fresh connections in a row (any
        connection can land on any worker; uvicorn starts them together)."""
        assert self.proc is not None
        deadline = time.monotonic() + self.ready_timeout_s
        last = "no answer yet"
        ready_in_a_row = 0
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"uvicorn workers exited with code {self.proc.returncode}; log "
                    f"{self.log_path}:\n{tail_log(self.log_path)}"
                )
            try:
                status, body = _get(self.url, "/readyz", timeout=2.0)
                last = f"{status} {body[:200]}"
                ready_in_a_row = ready_in_a_row + 1 if status == 200 else 0
            except OSError as exc:
                last = f"{type(exc).__name__}: {exc}"
                ready_in_a_row = 0
            # new connections land on any worker: several ready answers in a row
            if ready_in_a_row >= 4 * self.workers:
                logger.info("uvicorn pool of %d workers ready at %s", self.workers, self.url)
                return
            time.sleep(0.1 if ready_in_a_row else 0.5)
        raise TimeoutError(
            f"worker pool not ready after {self.ready_timeout_s:.0f} s (last /readyz: {last}); "
            f"log {self.log_path}:\n{tail_log(self.log_path)}"
        )

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, self.stop_timeout_s)

    def __enter__(self) -> WorkerPool:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def replicas(shared: Settings, n: int, **kwargs: Any) -> Iterator[ReplicaSet]:
    """``with replicas(settings, 3, model_path=...) as rs: rs.urls``."""
    replica_set = ReplicaSet(shared, n, **kwargs).start()
    try:
        yield replica_set
    finally:
        replica_set.stop()


def send_to_each(urls: Sequence[str], bodies: Sequence[dict[str, Any]]) -> list[int]:
    """POST ``bodies`` to ``/predict`` round-robin over ``urls`` (sequential, bounded by the
    number of bodies); returns how many each URL answered with 200."""
    import json
    from urllib.parse import urlsplit

    counts = [0] * len(urls)
    for i, body in enumerate(bodies):
        k = i % len(urls)
        port = urlsplit(urls[k]).port
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.request("POST", "/predict", json.dumps(body), {"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            counts[k] += int(response.status == 200)
        finally:
            conn.close()
    return counts
