"""The locustfile is loaded by Locust itself, in a subprocess: importing it here would let
gevent monkey-patch the test process."""

from __future__ import annotations

import os
import subprocess
import sys

from mlref.load.locust_run import LOCUSTFILE


def _locust(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_locustfile_parses_and_lists_its_user() -> None:
    done = _locust("--list")
    assert done.returncode == 0, done.stderr
    assert "ScoringUser" in done.stdout


def test_bad_traffic_setting_stops_locust_with_the_reason() -> None:
    done = _locust("--list", env={"MLREF_LOAD_INVALID_SHARE": "1.5"})
    assert done.returncode != 0
    assert "MLREF_LOAD_INVALID_SHARE must be a share in [0, 1], got 1.5" in done.stderr
