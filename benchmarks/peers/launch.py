"""Start, wait for and stop a peer server (LitServe or BentoML) on 127.0.0.1.

Each peer runs in its own session (``start_new_session``): LitServe and BentoML start child
processes (LitServe's inference worker, BentoML's supervisor and worker), so stopping signals
the whole group this launcher created, and the CPU counters sum the whole process tree.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
PEERS = ("litserve", "bentoml")
# the health route each framework serves once its workers are up
HEALTH = {"litserve": "/health", "bentoml": "/readyz"}


def free_port() -> int:
    """An ephemeral loopback port (closed again: the peer binds it itself; LitServe and
    BentoML take a port number, not a socket)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def command(kind: str, port: int, options: dict[str, str]) -> list[str]:
    if kind == "litserve":
        cmd = [sys.executable, str(HERE / "litserve_app.py"), "--port", str(port)]
        if "fast_queue" in options:
            cmd += ["--fast-queue", options["fast_queue"]]
        return cmd
    if kind == "bentoml":
        bentoml = Path(sys.executable).with_name("bentoml")
        return [
            str(bentoml),
            "serve",
            "bentoml_service:FraudService",
            "--working-dir",
            str(HERE),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
    raise ValueError(f"unknown peer {kind!r}; choose from {PEERS}")


@dataclass
class PeerProcess:
    """One peer server: ``kind`` with ``max_batch_size`` and ``wait_ms`` (LitServe's
    batch_timeout, BentoML's max_latency_ms), serving ``model_path`` over ``workdir``'s store."""

    kind: str
    workdir: Path
    model_path: Path
    run_dir: Path
    max_batch_size: int = 64
    wait_ms: float = 2.0
    name: str = ""
    options: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None, "start() first"
        return self.proc.pid

    @property
    def log_path(self) -> Path:
        return self.run_dir / f"{self.name or self.kind}.log"

    def start(self) -> PeerProcess:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        env = {
            **os.environ,
            "MLREF_PEER_WORKDIR": str(self.workdir),
            "MLREF_PEER_MODEL": str(self.model_path),
            "MLREF_PEER_MAX_BATCH": str(self.max_batch_size),
            "MLREF_PEER_WAIT_MS": str(self.wait_ms),
            # BentoML keeps a home (model store, logs) and reports usage: a private home here,
            # and no usage reports (the machine has no network beyond loopback)
            "BENTOML_HOME": str(self.run_dir / "bentoml-home"),
            "BENTOML_DO_NOT_TRACK": "True",
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(HERE), os.environ.get("PYTHONPATH", "")) if p
            ),
        }
        with self.log_path.open("w") as log:
            self.proc = subprocess.Popen(
                command(self.kind, self.port, self.options),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=HERE,
                start_new_session=True,
            )
        return self

    def wait_ready(self, timeout_s: float = 240.0) -> PeerProcess:
        from mlref.load.launcher import http_get, tail_log

        assert self.proc is not None, "start() first"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.kind} exited with code {self.proc.returncode}; its log "
                    f"({self.log_path}) ends:\n{tail_log(self.log_path)}"
                )
            try:
                status, _ = http_get(self.port, HEALTH[self.kind])
            except OSError:
                status = 0
            if status == 200:
                return self
            time.sleep(0.2)
        self.stop()
        raise TimeoutError(
            f"{self.kind} not ready after {timeout_s:.0f} s; its log ({self.log_path}) ends:\n"
            f"{tail_log(self.log_path)}"
        )

    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM to the group this launcher started; SIGKILL to it after ``timeout_s``."""
        if self.proc is None or self.proc.poll() is not None:
            return
        pgid = os.getpgid(self.proc.pid)
        os.killpg(pgid, signal.SIGTERM)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(pgid, signal.SIGKILL)
            self.proc.wait(10)
        # children that outlived the leader (a worker still draining): the group goes too
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
