"""Feast's Redis online store for the same feature definitions: a local redis-server and the
settings that point the feature repo at it.

Switching the online store is configuration only: ``settings.with_(online_store="redis",
redis_url="host:port")`` makes ``write_feature_repo`` emit Feast's ``type: redis`` online
store with that connection string; every feature definition, the offline store (parquet via
DuckDB), materialisation, pushes and ``online_model_features`` stay as they are.

:class:`RedisServer` runs the Debian ``redis-server`` on 127.0.0.1 on a free port for a test
session or a benchmark: no persistence (``--save ''``, ``--appendonly no``), protected mode,
its own working directory, stopped (``SHUTDOWN NOSAVE``, then SIGTERM, then SIGKILL) on exit.
In production, point ``redis_url`` at the managed Redis instead; nothing else changes.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from mlref.settings import Settings

logger = logging.getLogger(__name__)

REDIS_SERVER = "redis-server"
INSTALL_HINT = (
    "install it with `apt-get install -y redis-server` (scripts/scale_setup.sh does it) or "
    "point settings.redis_url at a running Redis"
)


def redis_server_binary() -> str | None:
    """Path of ``redis-server`` on PATH (or in /usr/bin, /usr/sbin), None when missing."""
    found = shutil.which(REDIS_SERVER)
    if found:
        return found
    for folder in ("/usr/bin", "/usr/sbin", "/usr/local/bin"):
        candidate = Path(folder) / REDIS_SERVER
        if candidate.is_file():
            return str(candidate)
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A throw-away ``redis-server`` on 127.0.0.1 (``start()`` / ``stop()`` or ``with``)."""

    def __init__(
        self,
        *,
        port: int | None = None,
        workdir: str | Path | None = None,
        start_timeout_s: float = 20.0,
        maxmemory: str = "256mb",
    ) -> None:
        binary = redis_server_binary()
        if binary is None:
            raise FileNotFoundError(f"redis-server is not installed; {INSTALL_HINT}")
        self.binary = binary
        self.requested_port = port
        self.port = 0
        self.start_timeout_s = start_timeout_s
        self.maxmemory = maxmemory
        self._own_dir = workdir is None
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="mlref-redis-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Feast's connection string for this server."""
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "redis.log"

    def _command(self, port: int) -> list[str]:
        return [
            self.binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--protected-mode",
            "yes",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--dir",
            str(self.workdir),
            "--logfile",
            str(self.log_path),
            "--maxmemory",
            self.maxmemory,
            "--maxmemory-policy",
            "noeviction",  # a full store must fail loudly, not forget features
        ]

    def start(self) -> RedisServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        attempts = 1 if self.requested_port else 3  # a free port can be taken meanwhile
        last = ""
        for _ in range(attempts):
            port = self.requested_port or _free_port()
            self.proc = subprocess.Popen(
                self._command(port),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                stdin=subprocess.DEVNULL,
            )
            self.port = port
            ok, last = self._wait_ping()
            if ok:
                logger.info("redis-server (pid %d) on %s", self.proc.pid, self.url)
                return self
            self._terminate()
        raise RuntimeError(f"redis-server did not start on 127.0.0.1: {last}")

    def _wait_ping(self) -> tuple[bool, str]:
        import redis

        assert self.proc is not None
        deadline = time.monotonic() + self.start_timeout_s
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False, f"exited with code {self.proc.returncode}; log: {self._log_tail()}"
            client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1.0)
            try:
                if client.ping():
                    return True, ""
            except redis.exceptions.RedisError as exc:
                last = f"{type(exc).__name__}: {exc}"
            finally:
                client.close()
            time.sleep(0.05)
        return False, f"no PING reply after {self.start_timeout_s:.0f} s ({last})"

    def _log_tail(self, lines: int = 10) -> str:
        try:
            return " | ".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def client(self) -> Any:
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5.0)

    def _terminate(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

    def stop(self) -> None:
        """SHUTDOWN NOSAVE, then SIGTERM / SIGKILL if it lingers; removes its own temp dir."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(Exception):
                client = self.client()
                try:
                    client.shutdown(nosave=True)
                except Exception:  # the connection drops when the server exits: expected
                    pass
                finally:
                    client.close()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self._terminate()
            logger.info("redis-server (pid %d) stopped", self.proc.pid)
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def redis_server(**kwargs: Any) -> Iterator[RedisServer]:
    """``with redis_server() as server: ... server.url``."""
    server = RedisServer(**kwargs).start()
    try:
        yield server
    finally:
        server.stop()


def redis_settings(
    settings: Settings, redis_url: str, *, workdir: str | Path | None = None
) -> Settings:
    """The same settings with Feast's Redis online store at ``redis_url`` (configuration only).

    ``workdir`` (optional) keeps the Redis-backed feature repo apart from a SQLite one.
    """
    changes: dict[str, object] = {"online_store": "redis", "redis_url": redis_url}
    if workdir is not None:
        changes["workdir"] = Path(workdir).resolve()
    return settings.with_(**changes)


def online_store_type(store: Any) -> str:
    """``sqlite`` / ``redis`` / ...: what a Feast ``FeatureStore`` actually reads from."""
    return str(store.config.online_store.type)


def lookup_latency_ms(
    store: Any,
    requests: pd.DataFrame,
    *,
    repeats: int = 20,
    warmup: int = 2,
) -> list[float]:
    """Wall time (ms) of ``online_model_features(store, requests)``: one batched online read
    plus the request transforms, as the server does per batch. Bounded by ``repeats``."""
    from mlref.features.store import online_model_features

    if not 1 <= repeats <= 10_000:
        raise ValueError(f"repeats must be 1..10000, got {repeats}")
    for _ in range(warmup):
        online_model_features(store, requests)
    out = []
    for _ in range(repeats):
        started = time.perf_counter()
        online_model_features(store, requests)
        out.append((time.perf_counter() - started) * 1000.0)
    return out
