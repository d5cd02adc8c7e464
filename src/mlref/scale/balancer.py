"""The load balancer in front of a :class:`~mlref.scale.replicas.ReplicaSet`: nginx.

A ``ReplicaSet`` is N scoring processes on N ports; clients need one address. What a user is
expected to put in front is a reverse proxy that spreads requests over the replicas and
routes around one that is down. :func:`nginx_conf` writes that configuration (the sample in
``docs/nginx-replicas.conf`` is its output); :class:`NginxBalancer` runs Debian's nginx with
it on 127.0.0.1 for the scale suite, which checks both promises against real replicas.

The choices in the configuration, and why:

* round robin over the replicas (nginx's default): the replicas are identical and each
  request is short, so nothing is gained by least-connections on one machine;
* ``proxy_next_upstream error http_503 non_idempotent`` with ``max_fails=1
  fail_timeout=5s``: a replica that refuses or drops the connection (killed, restarting) or
  answers 503 is skipped and the request tried on the next one (each replica at most once), then
  left out for 5 s. mlref's 503 means the request was not scored (still loading, draining for
  shutdown, or abandoned behind a hung model call), so a POST is safe to retry: that is what
  ``non_idempotent`` allows (nginx otherwise never retries a POST it has sent). At worst a
  transaction is scored twice; the prediction log keeps both rows and mining counts a
  transaction once. Read timeouts are not retried: a slow replica may still be scoring the
  request, and retrying under overload doubles the load;
* keep-alive connections to the replicas (``keepalive``, HTTP/1.1, empty ``Connection``):
  without them every request pays a TCP handshake on loopback, measurable at ~1000 req/s;
* passive health checks only: open-source nginx has no active ``health_check``; the
  replicas' own ``/readyz`` is for the process manager (or Kubernetes) that restarts them.

One machine or many: the same configuration works with replicas on other hosts (their
addresses in ``upstreams``); this module only ever starts nginx on loopback.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

logger = logging.getLogger(__name__)

INSTALL_HINT = "apt-get install -y nginx-light (or nginx)"


def nginx_binary() -> str | None:
    """The nginx executable: on PATH, or where Debian puts it (/usr/sbin is not on every
    user's PATH)."""
    found = shutil.which("nginx")
    if found:
        return found
    return "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None


def _host_port(url: str) -> str:
    parts = urlsplit(url if "//" in url else f"http://{url}")
    if not parts.hostname or not parts.port:
        raise ValueError(f"an upstream needs host and port, got {url!r}")
    return f"{parts.hostname}:{parts.port}"


def nginx_conf(
    upstreams: Sequence[str],
    *,
    listen: str = "127.0.0.1:8080",
    prefix: str | os.PathLike[str] | None = None,
    user: str | None = None,
) -> str:
    """An nginx.conf balancing ``/`` over ``upstreams`` (``http://host:port`` or
    ``host:port``), listening on ``listen``.

    ``prefix`` puts the pid file, logs and temp files in that directory (to run nginx
    unprivileged, as the tests do); without it nginx's own defaults apply (a system install).
    ``user`` is the worker user line, needed only when nginx starts as root.
    """
    if not upstreams:
        raise ValueError("nginx_conf needs at least one upstream")
    servers = "\n".join(
        f"        server {_host_port(u)} max_fails=1 fail_timeout=5s;" for u in upstreams
    )
    files = ""
    if prefix is not None:
        p = Path(prefix)
        files = f"pid {p / 'nginx.pid'};\nerror_log {p / 'error.log'} warn;\n"
        temp = "\n".join(
            f"    {name}_temp_path {p / (name + '_temp')};"
            for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        http_files = f"    access_log off;\n{temp}\n"
    else:
        http_files = "    access_log /var/log/nginx/mlref-access.log;\n"
    user_line = f"user {user};\n" if user else ""
    return f"""# nginx in front of mlref server replicas (python -m mlref.scale.balancer --upstream URL ...)
{user_line}{files}worker_processes 1;
events {{
    worker_connections 1024;
}}
http {{
{http_files}    upstream mlref_replicas {{
{servers}
        keepalive 32;
    }}
    server {{
        listen {listen};
        location / {{
            proxy_pass http://mlref_replicas;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_next_upstream error http_503 non_idempotent;
            proxy_connect_timeout 2s;
            proxy_read_timeout 30s;
        }}
    }}
}}
"""


class NginxBalancer:
    """nginx on a free 127.0.0.1 port in front of ``upstreams`` (``with NginxBalancer(...)``)."""

    def __init__(
        self,
        upstreams: Sequence[str],
        run_dir: str | os.PathLike[str],
        *,
        ready_timeout_s: float = 20.0,
        stop_timeout_s: float = 10.0,
    ) -> None:
        self.upstreams = list(upstreams)
        self.run_dir = Path(run_dir)
        # the same loopback-subprocess fields as ``WorkerPool`` (``duplicates`` pairs them);
        # no shared base: nginx is checked with -t, stopped by SIGQUIT and has no /readyz
        self.ready_timeout_s = ready_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def conf_path(self) -> Path:
        return self.run_dir / "nginx.conf"

    def start(self) -> NginxBalancer:
        from mlref.pipeline import free_port

        binary = nginx_binary()
        if binary is None:
            raise FileNotFoundError(f"nginx is not installed: {INSTALL_HINT}")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        # started as root, nginx would switch its workers to 'nobody', who cannot write the
        # temp directories made here; keep them as the user who started it
        user = None
        if os.geteuid() == 0:
            import pwd

            user = pwd.getpwuid(os.geteuid()).pw_name
        self.conf_path.write_text(
            nginx_conf(
                self.upstreams, listen=f"127.0.0.1:{self.port}", prefix=self.run_dir, user=user
            )
        )
        # -e: the error log before the configuration is read (the default path is not ours)
        command = [binary, "-p", str(self.run_dir), "-c", str(self.conf_path), "-e", "stderr"]
        check = subprocess.run([*command, "-t"], capture_output=True, text=True, check=False)
        if check.returncode != 0:
            raise RuntimeError(f"nginx rejected {self.conf_path}:\n{check.stderr}")
        log = (self.run_dir / "nginx.out").open("wb")
        with log:
            self.proc = subprocess.Popen(
                [*command, "-g", "daemon off;"],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        try:
            self._wait_listening()
        except BaseException:
            self.stop()
            raise
        logger.info("nginx at %s in front of %s", self.url, ", ".join(self.upstreams))
        return self

    def _wait_listening(self) -> None:
        import socket

        assert self.proc is not None
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                out = (self.run_dir / "nginx.out").read_text(errors="replace")
                raise RuntimeError(f"nginx exited with code {self.proc.returncode}:\n{out}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=1.0),
            ):
                return
            time.sleep(0.1)
        raise TimeoutError(f"nginx not listening on {self.url} after {self.ready_timeout_s} s")

    def stop(self) -> None:
        """SIGQUIT (graceful: finish requests in flight), then kill after the timeout."""
        import signal

        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGQUIT)
        try:
            self.proc.wait(self.stop_timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5.0)

    def __enter__(self) -> NginxBalancer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mlref.scale.balancer --upstream URL [...] [--listen HOST:PORT]``: print the
    nginx.conf for replicas at those addresses."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m mlref.scale.balancer", description=main.__doc__
    )
    parser.add_argument("--upstream", action="append", required=True, help="replica URL")
    parser.add_argument("--listen", default="127.0.0.1:8080", help="address nginx listens on")
    args = parser.parse_args(argv)
    print(nginx_conf(args.upstream, listen=args.listen), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
