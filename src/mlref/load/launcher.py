"""The scoring server (or a floor app) as a subprocess on 127.0.0.1, for load runs and benchmarks.

``ServerProcess`` starts ``python -m mlref.load.server`` (uvicorn on an ephemeral port the
server binds itself and writes to a port file), waits for ``GET /readyz`` = 200, and stops it
(SIGTERM, graceful drain; SIGKILL after a timeout). ``running_server`` is the same as a context
manager. The server never shares a process with the load generator or with pytest.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerHandle:
    url: str
    port: int
    pid: int
    log_path: Path


class ServerStartError(RuntimeError):
    """The server exited, or reported a failed start-up, before it was ready.

    ``reason`` is the server's own account in one line, passed through as it gave it (the last
    line it logged before exiting, or the reason of its ``/readyz`` answer); ``str()`` adds the
    tail of its log for a developer, ``one_line()`` is what a command line prints.
    """

    def __init__(self, name: str, reason: str, log_path: Path) -> None:
        self.name = name
        self.reason = reason
        self.log_path = log_path
        super().__init__(
            f"{name} could not start: {reason}; its log ({log_path}) ends:\n{tail_log(log_path)}"
        )

    def one_line(self) -> str:
        return f"{self.name} could not start: {self.reason} (its log: {self.log_path})"


def tail_log(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def http_get(port: int, path: str, timeout: float = 2.0) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        conn.close()


def stop_process(proc: subprocess.Popen[Any], timeout: float = 30.0) -> int:
    """SIGTERM, wait up to ``timeout``, then SIGKILL. Returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            logger.warning("pid %d ignored SIGTERM for %.0f s; killing it", proc.pid, timeout)
            proc.kill()
            proc.wait(10)
    return int(proc.returncode)


class ServerProcess:
    """The scoring server (or the floor app) as a subprocess on 127.0.0.1.

    ``start()`` launches it, ``wait_ready()`` polls ``/readyz`` until 200 (raising with the
    tail of the server log if it exits, reports a start-up failure, or times out), ``stop()``
    sends SIGTERM and kills after a timeout. Start several before waiting to overlap their
    start-up (imports of Feast and ONNX Runtime dominate it).
    """

    def __init__(
        self,
        workdir: str | os.PathLike[str],
        run_dir: str | os.PathLike[str],
        *,
        app: str = "mlref",
        model_path: str | os.PathLike[str] | None = None,
        batching: bool | None = None,
        max_wait_ms: float | None = None,
        max_batch_size: int | None = None,
        max_queue: int | None = None,
        name: str = "server",
    ) -> None:
        self.run_dir = Path(run_dir)
        self.name = name
        self.port_file = self.run_dir / f"{name}.port"
        self.log_path = self.run_dir / f"{name}.log"
        self.cmd = [
            sys.executable,
            "-m",
            "mlref.load.server",
            "--workdir",
            str(workdir),
            "--port-file",
            str(self.port_file),
            "--app",
            app,
            "--log-level",
            "INFO",
        ]
        options = {
            "--model-path": model_path,
            "--batching": None if batching is None else ("on" if batching else "off"),
            "--max-wait-ms": max_wait_ms,
            "--max-batch-size": max_batch_size,
            "--max-queue": max_queue,
        }
        for flag, value in options.items():
            if value is not None:
                self.cmd += [flag, str(value)]
        self.proc: subprocess.Popen[bytes] | None = None
        self.handle: ServerHandle | None = None

    def start(self) -> ServerProcess:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.port_file.unlink(missing_ok=True)
        with self.log_path.open("w") as log:
            self.proc = subprocess.Popen(
                self.cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        logger.info("started %s (pid %d): %s", self.name, self.proc.pid, " ".join(self.cmd[1:]))
        return self

    def wait_ready(self, timeout_s: float = 180.0) -> ServerHandle:
        assert self.proc is not None, "start() first"
        port = _wait_ready(self.proc, self.port_file, self.log_path, timeout_s, self.name)
        self.handle = ServerHandle(f"http://127.0.0.1:{port}", port, self.proc.pid, self.log_path)
        return self.handle

    def stop(self, timeout_s: float = 30.0) -> int | None:
        if self.proc is None:
            return None
        code = stop_process(self.proc, timeout_s)
        logger.info("stopped %s (pid %d, exit code %d)", self.name, self.proc.pid, code)
        return code


@contextlib.contextmanager
def running_server(
    workdir: str | os.PathLike[str],
    run_dir: str | os.PathLike[str],
    *,
    ready_timeout_s: float = 180.0,
    stop_timeout_s: float = 30.0,
    **options: Any,
) -> Iterator[ServerHandle]:
    """A ``ServerProcess`` started, ready, and stopped on the way out (options: see it)."""
    server = ServerProcess(workdir, run_dir, **options).start()
    try:
        yield server.wait_ready(ready_timeout_s)
    finally:
        server.stop(stop_timeout_s)


def _start_up_cause(log_path: Path, body: str) -> str:
    """The server's own line on why start-up failed (its log): the ``/readyz`` reason is public
    and keeps the cause (paths, exception text) out of the answer."""
    said = [line for line in tail_log(log_path, 50).splitlines() if "start-up failed" in line]
    return said[-1].strip() if said else _readyz_reason(body)


def _readyz_reason(body: str) -> str:
    """The ``reason`` of a ``/readyz`` 503 (``NotReadyStatus``), else the body itself."""
    try:
        reason = json.loads(body).get("reason")
    except (ValueError, AttributeError):
        reason = None
    return str(reason) if reason else body[:500]


def _wait_ready(
    proc: subprocess.Popen[Any], port_file: Path, log_path: Path, timeout: float, name: str
) -> int:
    started = time.monotonic()
    deadline = started + timeout
    port: int | None = None
    last = "no answer yet"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            said = [line.strip() for line in tail_log(log_path, 10).splitlines() if line.strip()]
            last_line = said[-1] if said else "no output"
            raise ServerStartError(
                name, f"exited with code {proc.returncode}: {last_line}", log_path
            )
        if port is None:
            if port_file.exists():
                port = int(port_file.read_text())
            else:
                time.sleep(0.05)
                continue
        try:
            status, body = http_get(port, "/readyz")
        except OSError as exc:
            last = f"{type(exc).__name__}: {exc}"
        else:
            if status == 200:
                logger.info("%s ready in %.1f s", name, time.monotonic() - started)
                return port
            last = f"{status} {body[:300]}"
            if "start-up failed" in body:
                raise ServerStartError(name, _start_up_cause(log_path, body), log_path)
        time.sleep(0.1)
    raise TimeoutError(
        f"{name} not ready after {timeout:.0f} s (last /readyz: {last}); its log ({log_path}) "
        f"ends:\n{tail_log(log_path)}"
    )
