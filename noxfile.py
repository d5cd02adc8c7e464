"""Development sessions. `nox -l` lists them; `nox` runs tests and lint.

Every session runs inside the project's uv environment (`uv run --locked`), so nox adds no
second resolver and the lockfile stays the single source of versions.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from collections.abc import Iterator

import nox

nox.options.default_venv_backend = "none"
nox.options.sessions = ["tests", "lint"]


def _uv(session: nox.Session, *args: str) -> None:
    session.run("uv", "run", "--locked", *args, external=True)


@nox.session
def tests(session: nox.Session) -> None:
    """Run the unit tests, the plugin tests and the gates (pytest --mlgates)."""
    _uv(session, "pytest", "--mlgates", *session.posargs)


# A CPU-bound neighbour: spins until its parent (this nox process) is gone or an hour has
# passed, so it cannot outlive the session even when nox itself is killed with SIGKILL.
_HOG = """
import os, time
parent, end = os.getppid(), time.monotonic() + 3600
while os.getppid() == parent and time.monotonic() < end:
    for _ in range(200_000):
        pass
"""


@contextlib.contextmanager
def _cpu_hogs(count: int) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``count`` CPU-bound processes for the duration of the block, killed on the way out
    whatever happens (an exception, Ctrl-C, SIGTERM to nox: turned into an exception here)."""

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, stop)
    hogs: list[subprocess.Popen[bytes]] = []
    try:
        hogs = [subprocess.Popen([sys.executable, "-c", _HOG]) for _ in range(count)]
        yield hogs
    finally:
        for hog in hogs:
            hog.kill()
        for hog in hogs:
            hog.wait(timeout=10)
        signal.signal(signal.SIGTERM, previous)


@nox.session
def noisy(session: nox.Session) -> None:
    """pytest --mlgates with two CPU-bound processes beside it (a busy CI runner)."""
    with _cpu_hogs(2) as hogs:
        session.log(f"CPU-bound neighbours: pids {[h.pid for h in hogs]}")
        _uv(session, "pytest", "--mlgates", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff lint + format check and mypy on src/."""
    _uv(session, "ruff", "check", ".")
    _uv(session, "ruff", "format", "--check", ".")
    _uv(session, "mypy")
    _uv(session, "python", "docs/gen_gates_table.py", "--check")
    _uv(session, "python", "scripts/make_template.py", "--check")


@nox.session
def demo(session: nox.Session) -> None:
    """Run the reference system end to end (mlref demo) in ./.mlref, the default workdir."""
    _uv(session, "mlref", "demo", *session.posargs)


@nox.session
def load(session: nox.Session) -> None:
    """Locust load on 127.0.0.1 against the demo's model in ./.mlref; fails when a budget breaks."""
    # no --workdir: the same default as every mlref command ($MLREF_HOME or ./.mlref)
    args = session.posargs or ["-u", "20", "-r", "5", "-t", "30s"]
    _uv(session, "python", "-m", "mlref.load", *args)


@nox.session
def perf(session: nox.Session) -> None:
    """Benchmarks as ratios (model, server vs LitServe/BentoML, Feast, gates) -> benchmarks/results."""
    # not ./.mlref: the benchmark builds (and may rebuild) a system of fixed size in its own
    # workdir (benchmarks/_perfutil.py, ./.mlref-perf), which must not overwrite the demo's;
    # the peers group (LitServe, BentoML, Evidently) is installed for this session only
    # the peers must answer mlref's JSON before their figures mean anything
    session.env["MLREF_PEERS"] = "1"
    _uv(session, "--group", "peers", "pytest", "-q", "tests/benchmarks/test_peers_json.py")
    _uv(session, "--group", "peers", "python", "benchmarks/run_perf.py", *session.posargs)


@nox.session
def overload(session: nox.Session) -> None:
    """Bursts at 1x/2x/10x measured capacity, admission on vs off -> benchmarks/results/overload.*"""
    # the perf system (./.mlref-perf), shared with `nox -s perf`: built once, reused
    _uv(session, "python", "benchmarks/bench_overload.py", *session.posargs)


@nox.session
def template(session: nox.Session) -> None:
    """The copier template: render it twice, run each project's demo and gates; take an update."""
    # each generated project locks and syncs its own environment (sharing the uv cache), runs
    # its demo and its whole `pytest --mlgates`: far too slow for the main run, which only
    # checks that template/ is regenerated (tests/template/test_lockstep.py)
    session.env["MLREF_TEMPLATE"] = "1"
    _uv(session, "pytest", "tests/template", "-p", "no:cacheprovider", *session.posargs)


@nox.session
def scale(session: nox.Session) -> None:
    """Scale-out on real engines: Feast on Redis, Spark batch scoring, replicas behind nginx, Locust."""
    session.run("bash", "scripts/scale_setup.sh", external=True)
    session.env["MLREF_SCALE"] = "1"
    session.run(
        "uv", "run", "--locked", "--extra", "scale", "pytest", "tests/scale", "-q", external=True
    )
    session.run(
        "uv",
        "run",
        "--locked",
        "--extra",
        "scale",
        "python",
        "-m",
        "mlref.scale",
        "--out",
        ".mlref-scale",
        *session.posargs,
        external=True,
    )
