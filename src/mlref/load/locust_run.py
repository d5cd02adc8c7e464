"""Run Locust headless in its own process against a loopback server, bounded in time.

``python -m locust -f locustfile.py --headless -u USERS -r RATE -t TIME --csv --html
--only-summary``: Locust is never imported here, since it monkey-patches the standard library
with gevent, which breaks a later asyncio server in the same process. Its raw per-request
records land in ``MLREF_LOAD_RAW_DIR`` (``mlref.load.rawlog``); Locust never outlives the call.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from mlref.load.launcher import stop_process, tail_log
from mlref.load.rawlog import RAW_DIR_ENV, raw_files

logger = logging.getLogger(__name__)

LOCUSTFILE = Path(__file__).with_name("locustfile.py")


def run_locust(
    host: str,
    users: int,
    spawn_rate: float,
    seconds: int,
    out: Path,
    env: Mapping[str, str],
    processes: int | None,
) -> None:
    """Locust's reports into ``out`` (``locust*.csv``, ``locust.html``, ``locust.log``); raises
    when it times out (``seconds`` + 90 s), exits non-zero, or leaves no raw records in
    ``env[RAW_DIR_ENV]``. ``processes`` forks Locust workers (``--processes``)."""
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
                f"{tail_log(log_path)}"
            ) from None
        finally:
            # whatever ended the wait (timeout, Ctrl-C, any error), Locust never outlives it;
            # a no-op when it has exited
            stop_process(proc, 15)
    if code != 0 or not raw_files(env[RAW_DIR_ENV]):
        raise RuntimeError(
            f"locust exited with code {code} (raw records: {len(raw_files(env[RAW_DIR_ENV]))} "
            f"files); its log ({log_path}) ends:\n{tail_log(log_path)}"
        )
