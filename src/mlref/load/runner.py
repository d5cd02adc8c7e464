"""A load run: start the scoring server, drive it with Locust, stop it, hold it to its budgets.

``run_load(settings, users, spawn_rate, run_time, out_dir)``:

1. checks that the workdir holds a built system (``mlref.load.preflight``) before it writes
   anything: a missing artefact is one line naming the command that builds it;
2. writes the users file (user ids with their transaction counts from ``settings.raw_path``,
   the popularity skew the locustfile draws with) and the event time (the end of the data);
3. starts the server (``mlref.load.launcher``: ``python -m mlref.load.server`` on 127.0.0.1)
   and waits until it is ready;
4. runs Locust headless in its own process (``mlref.load.locust_run``);
5. stops the server (SIGTERM, graceful drain; SIGKILL after a timeout);
6. reads the raw per-request records and summarises them (``mlref.load.summary``) against the
   latency, cost, error-rate and invalid-payload budgets (``mlref.load.budgets``).

Outputs in ``out_dir``: ``summary.json`` (``LoadSummary.to_dict()``), Locust's
``locust_stats.csv`` & co and ``locust.html``, the raw records under ``raw/``, and the
server's and Locust's logs. ``python -m mlref.load`` (``mlref.load.cli``) is the command line.

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

import contextlib
import logging
import math
import os
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlref.load.budgets import (
    DEFAULT_HOURLY_USD,
    DEFAULT_MAX_ERROR_RATE,
    DEFAULT_MAX_USD_PER_MILLION,
)
from mlref.load.launcher import running_server
from mlref.load.locust_run import run_locust
from mlref.load.preflight import check_system
from mlref.load.rawlog import RAW_DIR_ENV, read_raw
from mlref.load.summary import LoadSummary, summarize
from mlref.load.traffic import (
    EVENT_TIME_ENV,
    N_USERS_ENV,
    SEED_ENV,
    UNKNOWN_SHARE_ENV,
    USERS_FILE_ENV,
    write_users_file,
)

if TYPE_CHECKING:
    from mlref.settings import Settings

logger = logging.getLogger(__name__)

MAX_USERS = 1_000
MAX_RUN_TIME_S = 3_600
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


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
    the server, evaluate; writes ``summary.json`` and Locust's reports into ``out_dir`` and
    returns the summary without printing it.

    Without ``host``, the workdir must hold a built system (``mlref.load.preflight``): else
    ``MissingArtefactError`` before anything is written; a server that cannot start raises
    ``ServerStartError`` with its own reason.

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
    if target is None:
        # before anything is written or started: an empty workdir stays empty
        check_system(settings, model_path)
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
        run_locust(target, int(users), spawn_rate, seconds, out, env, processes)
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
    # printing the summary is the caller's (the command line prints it once)
    (out / "summary.json").write_text(summary.to_json() + "\n")
    return summary
