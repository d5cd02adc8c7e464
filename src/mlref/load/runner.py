"""Load test the scoring server: start it, drive it with Locust, hold it to its budgets.

``run_load(settings, users, spawn_rate, run_time, out_dir)``:

1. writes the users file (user ids with their transaction counts from ``settings.raw_path``,
   the popularity skew the locustfile draws with) and the event time (the end of the data);
2. starts the server as a subprocess (``python -m mlref.load.server``: uvicorn on 127.0.0.1,
   an ephemeral port bound by the server itself) and waits for ``GET /readyz`` = 200;
3. runs Locust headless in its own process (``python -m locust -f locustfile.py --headless
   -u USERS -r RATE -t TIME --csv --html --only-summary``). Locust is never imported here:
   it monkey-patches the standard library with gevent, which breaks a later asyncio server
   in the same process;
4. stops the server (SIGTERM, graceful drain; SIGKILL after a timeout);
5. reads the raw per-request records (exact latencies; Locust's own percentiles are bucketed)
   and evaluates them with the mlgates gates ``latency_budget`` (p99 of successful scoring
   requests) and ``cost_budget`` (USD per million predictions at the measured throughput), an
   error-rate check (``error_rate`` gate: server errors + shed (503) over the *valid* requests)
   and an invalid-payload check (``invalid_payloads`` gate: deliberately invalid bodies not
   answered 422, over the invalid bodies sent). The two are kept apart on purpose: invalid
   bodies answered 422 are successes, and counting them in the error rate's denominator would
   dilute the server errors (600 invalid bodies would turn 1.5% server errors into 0.94%).

Outputs in ``out_dir``: ``summary.json`` (``LoadSummary.to_dict()``), Locust's
``locust_stats.csv`` & co and ``locust.html``, the raw records under ``raw/``, and the
server's and Locust's logs. ``main(argv)`` is the command-line face: it prints the summary and
returns 1 when a budget is broken.

Cost: ``hourly_usd`` (default ``DEFAULT_HOURLY_USD`` = $0.10/h, a round on-demand price for a
2-vCPU cloud instance such as the one this runs on; pass your own) divided by the measured
predictions per second. A transaction in a batch call is one prediction. The figure is only a
capacity figure when the test saturates the server: under a light load it overstates the cost
(``nox -s perf`` measures the throughput at the p99 budget).

Distributed mode (load beyond one machine or one core): Locust runs one master and any number
of workers, all with the same locustfile and ``MLREF_LOAD_*`` environment::

    locust -f src/mlref/load/locustfile.py --master --headless -u 500 -r 50 -t 2m \
        --expect-workers 4 --host http://scoring.internal:8000 --csv out/locust
    locust -f src/mlref/load/locustfile.py --worker --master-host MASTER_IP   # on each worker

Each worker writes its own raw file (``requests-<pid>.csv``) into ``MLREF_LOAD_RAW_DIR``;
collect the folders from the workers into one and evaluate them with ``summarize``. On one
machine, ``processes=N`` (Locust's ``--processes N``) forks N workers and a master for you;
here the raw files land in the same folder.

Everything here is bounded: loopback only, users, spawn rate and run time capped, the server
and Locust subprocesses stopped by timeouts.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import logging
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlref.load.rawlog import RAW_DIR_ENV, raw_files, read_raw
from mlref.load.traffic import (
    EVENT_TIME_ENV,
    N_USERS_ENV,
    SEED_ENV,
    UNKNOWN_SHARE_ENV,
    USERS_FILE_ENV,
    write_users_file,
)

if TYPE_CHECKING:
    import pandas as pd

    from mlgates.result import GateResult
    from mlref.settings import Settings

logger = logging.getLogger(__name__)

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
INVALID_NAME = "invalid (expected 422)"  # the locustfile's name for bad bodies
DEFAULT_HOURLY_USD = 0.10
DEFAULT_MAX_USD_PER_MILLION = 1.0
DEFAULT_MAX_ERROR_RATE = 0.01
MAX_USERS = 1_000
MAX_RUN_TIME_S = 3_600
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


# ----------------------------------------------------------------------------- server process
@dataclass(frozen=True)
class ServerHandle:
    url: str
    port: int
    pid: int
    log_path: Path


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _get(port: int, path: str, timeout: float = 2.0) -> tuple[int, str]:
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


def _wait_ready(
    proc: subprocess.Popen[Any], port_file: Path, log_path: Path, timeout: float, name: str
) -> int:
    started = time.monotonic()
    deadline = started + timeout
    port: int | None = None
    last = "no answer yet"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"{name} exited with code {proc.returncode} before it was ready; its log "
                f"({log_path}) ends:\n{_tail(log_path)}"
            )
        if port is None:
            if port_file.exists():
                port = int(port_file.read_text())
            else:
                time.sleep(0.05)
                continue
        try:
            status, body = _get(port, "/readyz")
        except OSError as exc:
            last = f"{type(exc).__name__}: {exc}"
        else:
            if status == 200:
                logger.info("%s ready in %.1f s", name, time.monotonic() - started)
                return port
            last = f"{status} {body[:300]}"
            if "start-up failed" in body:
                raise RuntimeError(
                    f"{name} could not start: {body[:500]}; its log ({log_path}) ends:\n"
                    f"{_tail(log_path)}"
                )
        time.sleep(0.1)
    raise TimeoutError(
        f"{name} not ready after {timeout:.0f} s (last /readyz: {last}); its log ({log_path}) "
        f"ends:\n{_tail(log_path)}"
    )


# ----------------------------------------------------------------------------- the summary
@dataclass(frozen=True)
class LoadSummary:
    """What a load test measured and whether it kept its budgets."""

    duration_s: float
    requests: int
    predictions: int  # transactions scored successfully
    throughput_rps: float  # successful scoring requests per second
    predictions_per_s: float  # successful predictions per second (the cost basis)
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    error_rate: float  # server errors (5xx but 503, no response, unexpected 4xx) / valid
    shed_rate: float  # 503 (queue full, shutting down) / valid requests
    invalid_sent: int
    invalid_rejected: int  # answered 422 as they should be
    invalid_unexpected: int  # answered anything else (judged apart: invalid_payloads gate)
    usd_per_million: float | None
    hourly_usd: float
    by_name: dict[str, dict[str, Any]]
    gates: tuple[GateResult, ...]
    config: dict[str, Any] = field(default_factory=dict)
    valid_requests: int = 0  # requests with a valid body: the base of error_rate and shed_rate
    invalid_error_rate: float = 0.0  # invalid_unexpected / invalid_sent (0 when none sent)

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)

    @property
    def failed_gates(self) -> list[GateResult]:
        return [g for g in self.gates if not g.passed]

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "gates"}
        out["passed"] = self.passed
        out["gates"] = [g.to_dict() for g in self.gates]
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str)

    def report(self) -> str:
        """A few lines for a terminal or a CI log."""

        def ms(v: float | None) -> str:
            return "-" if v is None else f"{v:.1f}"

        lines = [
            f"{self.requests} requests in {self.duration_s:.1f} s: "
            f"{self.throughput_rps:.1f} req/s, {self.predictions_per_s:.1f} predictions/s",
            f"latency of successful scoring calls: p50 {ms(self.p50_ms)} ms, p95 "
            f"{ms(self.p95_ms)} ms, p99 {ms(self.p99_ms)} ms, max {ms(self.max_ms)} ms",
            f"of {self.valid_requests} valid requests: errors {self.error_rate:.2%}, shed (503) "
            f"{self.shed_rate:.2%}; invalid bodies {self.invalid_sent} sent / "
            f"{self.invalid_rejected} rejected with 422 / {self.invalid_unexpected} answered "
            "otherwise",
            "cost: "
            + (
                "-"
                if self.usd_per_million is None
                else f"${self.usd_per_million:.4g} per million predictions "
            )
            + f"at ${self.hourly_usd:g}/h",
        ]
        for gate in self.gates:
            lines.append(f"[{gate.verdict.upper()}] {gate.name}: {gate.message}")
        return "\n".join(lines)


def _latency_stats(values: Any) -> dict[str, Any]:
    import numpy as np

    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return {"count": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
    from mlgates import stats

    pct = stats.percentiles(v, (50, 95, 99))
    return {
        "count": int(v.size),
        "p50_ms": pct["p50"],
        "p95_ms": pct["p95"],
        "p99_ms": pct["p99"],
        "max_ms": float(v.max()),
    }


def _error_gate(valid: int, max_error_rate: float, breakdown: dict[str, int]) -> GateResult:
    """Server errors and sheds over the requests with a valid body (invalid bodies are judged
    apart by ``_invalid_gate``: their 422s must not dilute the server's errors)."""
    from mlgates.result import GateResult

    failed = sum(breakdown.values())
    rate = failed / valid if valid else 1.0
    parts = ", ".join(f"{v} {k}" for k, v in breakdown.items() if v) or "none"
    ok = valid > 0 and rate <= max_error_rate
    if valid == 0:
        message = "no valid request was recorded: the load generator sent no scoring request"
    else:
        message = (
            f"{rate:.2%} of {valid} valid requests failed ({parts}); budget {max_error_rate:.2%}"
        )
    return GateResult(
        name="error_rate",
        verdict="pass" if ok else "fail",
        measured=rate,
        threshold=max_error_rate,
        message=message,
        details={"failed": failed, "valid_requests": valid, **breakdown},
        hint=(
            "read the server log for 5xx causes; 503s mean the queue was full (raise max_queue "
            "or capacity, or lower the load); status 0 means no answer (timeout or refused "
            "connection)"
        ),
        unit="",
        direction="max",
        rubric=("monitor-6",),
    )


def _invalid_gate(sent: int, unexpected: int, max_error_rate: float) -> GateResult:
    """Deliberately invalid bodies must be answered 422; the share answered otherwise (a
    validation hole when 2xx, a crash on bad input when 5xx) is held to the same budget."""
    from mlgates.result import GateResult

    rate = unexpected / sent if sent else 0.0
    if sent == 0:
        message = "no invalid body was sent (invalid_share 0): input validation not exercised"
    else:
        message = (
            f"{rate:.2%} of {sent} invalid bodies were not answered 422 ({unexpected}); "
            f"budget {max_error_rate:.2%}"
        )
    return GateResult(
        name="invalid_payloads",
        verdict="pass" if rate <= max_error_rate else "fail",
        measured=rate,
        threshold=max_error_rate,
        message=message,
        details={"invalid_sent": sent, "invalid_not_422": unexpected},
        hint=(
            "an invalid body answered 2xx is a validation hole (the schema accepts it); one "
            "answered 5xx crashed the server on bad input; see the statuses of "
            f"by_name[{INVALID_NAME!r}] in the summary"
        ),
        unit="",
        direction="max",
        rubric=("monitor-2",),
    )


def summarize(
    raw: pd.DataFrame,
    *,
    p99_budget_ms: float = 50.0,
    hourly_usd: float = DEFAULT_HOURLY_USD,
    max_usd_per_million: float = DEFAULT_MAX_USD_PER_MILLION,
    max_error_rate: float = DEFAULT_MAX_ERROR_RATE,
    duration_s: float | None = None,
    seed: int = 0,
    config: Mapping[str, Any] | None = None,
) -> LoadSummary:
    """Evaluate raw request records (``mlref.load.rawlog`` columns) against the budgets.

    ``duration_s`` defaults to the span from the first request's start to the last one's end.
    """
    import numpy as np

    from mlgates import cost_budget, latency_budget
    from mlgates.result import GateInputError, GateResult

    missing = [c for c in ("name", "status", "latency_ms", "exception", "n") if c not in raw]
    if missing:
        raise ValueError(f"raw request records lack columns {missing}")
    status = raw["status"].to_numpy(dtype=np.int64)
    latency = raw["latency_ms"].to_numpy(dtype=np.float64)
    exc = raw["exception"].fillna("").astype(str).to_numpy()
    n = raw["n"].to_numpy(dtype=np.int64)
    invalid = raw["name"].astype(str).to_numpy() == INVALID_NAME
    valid = ~invalid
    ok = valid & (status == 200) & (exc == "")
    shed = valid & (status == 503)
    errors = valid & ~ok & ~shed
    rejected = invalid & (status == 422)
    unexpected = invalid & ~rejected
    total = len(raw)

    if duration_s is None:
        if total and "start" in raw and (raw["start"] > 0).all():
            start = raw["start"].to_numpy(dtype=np.float64)
            duration_s = float((start + latency / 1000.0).max() - start.min())
        else:
            duration_s = float(latency.sum() / 1000.0)
    duration_s = max(float(duration_s), 1e-9)
    requests_ok = int(ok.sum())
    predictions = int(n[ok].sum())
    rps = requests_ok / duration_s
    pps = predictions / duration_s

    samples = latency[ok]
    overall = _latency_stats(samples)
    try:
        latency_gate = latency_budget(samples, p99_ms=p99_budget_ms)
    except GateInputError as err:
        latency_gate = GateResult(
            name="latency_budget",
            verdict="inconclusive",
            measured=None,
            threshold=p99_budget_ms,
            message=f"no usable latency samples: {err}",
            hint="no scoring request succeeded; read the server log",
            unit=" ms",
            direction="max",
            rubric=("monitor-6",),
        )
    usd_per_million: float | None
    if pps > 0:
        cost_gate = cost_budget(pps, hourly_usd, max_usd_per_million=max_usd_per_million)
        usd_per_million = cost_gate.measured
    else:
        usd_per_million = None
        cost_gate = GateResult(
            name="cost_budget",
            verdict="fail",
            measured=None,
            threshold=max_usd_per_million,
            message="no successful prediction: the cost per prediction is unbounded",
            hint="no scoring request succeeded; read the server log",
            unit=" USD/1M",
            direction="max",
            rubric=("monitor-6",),
        )
    n_valid = int(valid.sum())
    n_invalid = int(invalid.sum())
    breakdown = {"server_errors": int(errors.sum()), "shed_503": int(shed.sum())}
    error_gate = _error_gate(n_valid, max_error_rate, breakdown)
    invalid_gate = _invalid_gate(n_invalid, int(unexpected.sum()), max_error_rate)

    by_name: dict[str, dict[str, Any]] = {}
    names = raw["name"].astype(str).to_numpy()
    for name in sorted(set(names.tolist())):
        mask = names == name
        good = mask & (ok | rejected)
        stats_ = _latency_stats(latency[good])
        statuses = {
            str(k): int(v)
            for k, v in zip(*np.unique(status[mask], return_counts=True), strict=True)
        }
        by_name[name] = {
            "requests": int(mask.sum()),
            "transactions": int(n[mask].sum()),
            "statuses": statuses,
            **{k: v for k, v in stats_.items() if k != "count"},
        }
    return LoadSummary(
        duration_s=duration_s,
        requests=total,
        predictions=predictions,
        throughput_rps=rps,
        predictions_per_s=pps,
        p50_ms=overall["p50_ms"],
        p95_ms=overall["p95_ms"],
        p99_ms=overall["p99_ms"],
        max_ms=overall["max_ms"],
        error_rate=int(errors.sum()) / n_valid if n_valid else 0.0,
        shed_rate=int(shed.sum()) / n_valid if n_valid else 0.0,
        invalid_sent=n_invalid,
        invalid_rejected=int(rejected.sum()),
        invalid_unexpected=int(unexpected.sum()),
        usd_per_million=usd_per_million,
        hourly_usd=float(hourly_usd),
        by_name=by_name,
        gates=(latency_gate, cost_gate, error_gate, invalid_gate),
        config=dict(config or {}),
        valid_requests=n_valid,
        invalid_error_rate=int(unexpected.sum()) / n_invalid if n_invalid else 0.0,
    )


# ----------------------------------------------------------------------------- the run
def parse_run_time(value: float | int | str) -> int:
    """Seconds from ``30``, ``"30"``, ``"30s"``, ``"2m"``, ``"1h"`` or ``"1m30s"``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        text = str(value).strip().lower()
        if re.fullmatch(r"\d+(\.\d+)?", text):
            seconds = float(text)
        else:
            parts = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", text)
            if not text or parts is None:
                raise ValueError(f"run time {value!r}: use seconds (30) or 30s / 2m / 1h30m")
            h, m, s = (int(p or 0) for p in parts.groups())
            seconds = h * 3600 + m * 60 + s
    if not math.isfinite(seconds) or not 1 <= seconds <= MAX_RUN_TIME_S:
        raise ValueError(f"run time must be 1 s .. {MAX_RUN_TIME_S} s, got {value!r}")
    return math.ceil(seconds)


def _check_host(host: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(host if "://" in host else f"http://{host}")
    if parts.hostname not in LOOPBACK or parts.scheme != "http":
        raise ValueError(
            f"host {host!r}: load tests here only target http://127.0.0.1 (loopback); for a "
            "remote target run Locust directly (see this module's docstring)"
        )
    return f"http://{parts.netloc}"


def traffic_env(settings: Settings, out_dir: Path) -> dict[str, str]:
    """The traffic environment (``mlref.load.traffic``) for the locustfile and ``loadgen``:
    a users file with the data's popularity and the event time, from the raw data if present."""
    env = {N_USERS_ENV: str(settings.data.n_users)}
    if not settings.raw_path.exists():
        logger.warning(
            "no raw data at %s: the load test draws Zipf-distributed ids 1..%d and uses now "
            "as the event time",
            settings.raw_path,
            settings.data.n_users,
        )
        return env
    import pandas as pd

    raw = pd.read_parquet(settings.raw_path, columns=["user_id", "event_timestamp"])
    counts = raw["user_id"].value_counts()
    users = write_users_file(out_dir / "users.csv", {int(k): int(v) for k, v in counts.items()})
    last = pd.Timestamp(raw["event_timestamp"].max())
    env[USERS_FILE_ENV] = str(users)
    env[EVENT_TIME_ENV] = (last + pd.Timedelta(seconds=1)).isoformat()
    return env


def run_load(
    settings: Settings,
    users: int,
    spawn_rate: float,
    run_time: float | int | str,
    out_dir: str | os.PathLike[str],
    host: str | None = None,
    processes: int | None = None,
    *,
    model_path: str | os.PathLike[str] | None = None,
    p99_budget_ms: float | None = None,
    hourly_usd: float = DEFAULT_HOURLY_USD,
    max_usd_per_million: float = DEFAULT_MAX_USD_PER_MILLION,
    max_error_rate: float = DEFAULT_MAX_ERROR_RATE,
    seed: int = 0,
    unknown_share: float = 0.05,
    invalid_share: float = 0.03,
    batch_share: float = 0.10,
    max_batch: int = 32,
    wait_ms: tuple[float, float] = (5.0, 50.0),
    ready_timeout_s: float = 180.0,
) -> LoadSummary:
    """Start the server (unless ``host`` names a running one on loopback), run Locust, stop
    the server, evaluate; writes ``summary.json`` and Locust's reports into ``out_dir``.

    ``p99_budget_ms`` defaults to ``settings.p99_budget_ms``; ``model_path`` serves an ONNX
    file instead of the registry champion; ``processes`` forks Locust workers
    (``--processes``).
    """
    if not 1 <= int(users) <= MAX_USERS:
        raise ValueError(f"users must be 1..{MAX_USERS}, got {users}")
    if not (math.isfinite(spawn_rate) and spawn_rate > 0):
        raise ValueError(f"spawn_rate must be > 0 users/s, got {spawn_rate}")
    seconds = parse_run_time(run_time)
    cpus = os.cpu_count() or 1
    if processes is not None and not 1 <= processes <= 4 * cpus:
        raise ValueError(f"processes must be 1..{4 * cpus} on this machine, got {processes}")
    if not 0 <= wait_ms[0] <= wait_ms[1]:
        raise ValueError(f"wait_ms must be (min, max) with 0 <= min <= max, got {wait_ms}")
    target = _check_host(host) if host else None
    budget = float(settings.p99_budget_ms if p99_budget_ms is None else p99_budget_ms)

    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    raw_dir = out / "raw"
    if raw_dir.exists():
        shutil.rmtree(raw_dir)  # records of an earlier run must not mix in
    raw_dir.mkdir()
    env = {
        **os.environ,
        **traffic_env(settings, out),
        RAW_DIR_ENV: str(raw_dir),
        SEED_ENV: str(seed),
        UNKNOWN_SHARE_ENV: str(unknown_share),
        "MLREF_LOAD_INVALID_SHARE": str(invalid_share),
        "MLREF_LOAD_BATCH_SHARE": str(batch_share),
        "MLREF_LOAD_MAX_BATCH": str(max_batch),
        "MLREF_LOAD_WAIT_MS": f"{wait_ms[0]},{wait_ms[1]}",
    }
    config: dict[str, Any] = {
        "users": int(users),
        "spawn_rate": float(spawn_rate),
        "run_time_s": seconds,
        "processes": processes,
        "p99_budget_ms": budget,
        "max_usd_per_million": max_usd_per_million,
        "max_error_rate": max_error_rate,
        "seed": seed,
        "unknown_share": unknown_share,
        "invalid_share": invalid_share,
        "batch_share": batch_share,
        "max_batch": max_batch,
        "wait_ms": list(wait_ms),
        "batching": settings.batching,
        "max_wait_ms": settings.max_wait_ms,
        "max_batch_size": settings.max_batch_size,
    }
    with contextlib.ExitStack() as stack:
        if target is None:
            server = stack.enter_context(
                running_server(
                    settings.workdir,
                    out,
                    model_path=model_path,
                    batching=settings.batching,
                    max_wait_ms=settings.max_wait_ms,
                    max_batch_size=settings.max_batch_size,
                    max_queue=settings.max_queue,
                    ready_timeout_s=ready_timeout_s,
                )
            )
            target = server.url
        config["host"] = target
        _run_locust(target, int(users), spawn_rate, seconds, out, env, processes)
    raw = read_raw(raw_dir)
    summary = summarize(
        raw,
        p99_budget_ms=budget,
        hourly_usd=hourly_usd,
        max_usd_per_million=max_usd_per_million,
        max_error_rate=max_error_rate,
        seed=seed,
        config=config,
    )
    (out / "summary.json").write_text(summary.to_json() + "\n")
    logger.info("load test summary (%s):\n%s", out / "summary.json", summary.report())
    return summary


def _run_locust(
    host: str,
    users: int,
    spawn_rate: float,
    seconds: int,
    out: Path,
    env: Mapping[str, str],
    processes: int | None,
) -> None:
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "-u",
        str(users),
        "-r",
        f"{spawn_rate:g}",
        "-t",
        f"{seconds}s",
        "--host",
        host,
        "--csv",
        str(out / "locust"),
        "--html",
        str(out / "locust.html"),
        "--only-summary",
        "--stop-timeout",
        "5",
        "--exit-code-on-error",
        "0",
    ]
    if processes is not None:
        cmd += ["--processes", str(processes)]
    log_path = out / "locust.log"
    logger.info("locust: %d users, %g/s spawn, %d s against %s", users, spawn_rate, seconds, host)
    timeout = seconds + 90
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=dict(env)
        )
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(
                f"locust did not finish within {timeout} s; its log ({log_path}) ends:\n"
                f"{_tail(log_path)}"
            ) from None
        finally:
            # whatever ended the wait (timeout, Ctrl-C, any error), Locust never outlives it;
            # a no-op when it has exited
            stop_process(proc, 15)
    if code != 0 or not raw_files(env[RAW_DIR_ENV]):
        raise RuntimeError(
            f"locust exited with code {code} (raw records: {len(raw_files(env[RAW_DIR_ENV]))} "
            f"files); its log ({log_path}) ends:\n{_tail(log_path)}"
        )


# ----------------------------------------------------------------------------- command line
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m mlref.load",
        description="Load test the scoring server with Locust and hold it to its budgets.",
    )
    p.add_argument("--workdir", default=None, help="built reference system ($MLREF_HOME)")
    p.add_argument("--out", default=None, help="reports folder (default WORKDIR/reports/load)")
    p.add_argument("-u", "--users", type=int, default=20, help="simulated users (default 20)")
    p.add_argument("-r", "--spawn-rate", type=float, default=5.0, help="users started per s")
    p.add_argument("-t", "--run-time", default="30s", help="e.g. 30s, 2m (default 30s)")
    p.add_argument("--processes", type=int, default=None, help="Locust worker processes")
    p.add_argument("--host", default=None, help="a server already running on 127.0.0.1")
    p.add_argument("--model-path", default=None, help="serve this ONNX file, not the champion")
    p.add_argument("--p99-ms", type=float, default=None, help="p99 budget (default: settings)")
    p.add_argument("--hourly-usd", type=float, default=DEFAULT_HOURLY_USD)
    p.add_argument("--max-usd-per-million", type=float, default=DEFAULT_MAX_USD_PER_MILLION)
    p.add_argument("--max-error-rate", type=float, default=DEFAULT_MAX_ERROR_RATE)
    p.add_argument("--batching", choices=("on", "off"), default=None)
    p.add_argument("--max-wait-ms", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run a load test; 0 when every budget held, 1 when one broke, 2 on bad usage."""
    args = build_parser().parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-7s %(message)s")
    from mlref.settings import make_settings

    overrides: dict[str, object] = {}
    if args.batching is not None:
        overrides["batching"] = args.batching == "on"
    if args.max_wait_ms is not None:
        overrides["max_wait_ms"] = args.max_wait_ms
    settings = make_settings(args.workdir, **overrides)
    out = Path(args.out) if args.out else settings.reports_dir / "load"
    try:
        summary = run_load(
            settings,
            args.users,
            args.spawn_rate,
            args.run_time,
            out,
            host=args.host,
            processes=args.processes,
            model_path=args.model_path,
            p99_budget_ms=args.p99_ms,
            hourly_usd=args.hourly_usd,
            max_usd_per_million=args.max_usd_per_million,
            max_error_rate=args.max_error_rate,
            seed=args.seed,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(summary.report())
    print(f"reports: {out}/summary.json, {out}/locust.html, {out}/locust_stats.csv")
    for gate in summary.failed_gates:
        print(gate.explain(), file=sys.stderr)
    return 0 if summary.passed else 1
