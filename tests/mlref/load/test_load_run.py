"""A short, bounded load test against the real server (subprocess, 127.0.0.1): the summary is
produced with sane fields, printed once, and a broken budget makes the command fail; a server
that cannot start is one line with its own reason. Timings are never asserted: the p99 budget
is set impossibly low (breach) or absurdly high (pass)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlref.load.launcher import running_server
from mlref.load.rawlog import read_raw
from mlref.load.summary import summarize
from mlref.load.traffic import INVALID_NAME

pytestmark = [
    # Feast's notices while the fixture builds the store (ibis on DuckDB; on-demand views)
    pytest.mark.filterwarnings("ignore:fetch_arrow_table\\(\\) is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:On demand feature view is an experimental:RuntimeWarning"),
]


def load_command(*argv: str) -> subprocess.CompletedProcess[str]:
    """``python -m mlref.load ARGV`` as a user runs it: everything it prints is captured."""
    return subprocess.run(
        [sys.executable, "-m", "mlref.load", *argv],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_short_run_writes_the_summary_and_a_broken_budget_fails(
    small_system: Any, tmp_path: Path
) -> None:
    out = tmp_path / "load"
    argv = [
        "--workdir",
        str(small_system.settings.workdir),
        "--model-path",
        str(small_system.model_path),
        "--out",
        str(out),
        "-u",
        "4",
        "-r",
        "4",
        "-t",
        "5s",
        "--p99-ms",
        "0.001",
    ]
    done = load_command(*argv)
    assert done.returncode == 1, done.stderr  # the p99 budget of 1 microsecond cannot hold
    # the summary block is printed once (it was logged and printed: twice), on stdout
    printed = done.stdout + done.stderr
    assert printed.count("latency of successful scoring calls:") == 1, printed
    assert "latency of successful scoring calls:" in done.stdout
    assert "Traceback" not in printed

    summary = json.loads((out / "summary.json").read_text())
    gates = {g["name"]: g for g in summary["gates"]}
    raw = read_raw(out / "raw")
    ok = raw[(raw["name"] != INVALID_NAME) & (raw["status"] == 200)]
    # latency_budget needs 100 samples for a p99; a slow machine may record fewer in 5 s
    expected = "fail" if len(ok) >= 100 else "inconclusive"
    assert gates["latency_budget"]["verdict"] == expected, gates["latency_budget"]["message"]
    assert gates["error_rate"]["verdict"] == "pass", gates["error_rate"]["message"]
    assert gates["invalid_payloads"]["verdict"] == "pass", gates["invalid_payloads"]["message"]
    assert summary["passed"] is False
    assert summary["requests"] > 0
    assert summary["predictions"] >= summary["requests"] * 0.5
    assert summary["error_rate"] == 0.0
    assert summary["shed_rate"] == 0.0
    assert summary["invalid_unexpected"] == 0
    assert summary["invalid_rejected"] == summary["invalid_sent"]
    assert 0 < summary["p50_ms"] <= summary["p95_ms"] <= summary["p99_ms"] <= summary["max_ms"]
    assert summary["usd_per_million"] > 0
    assert set(summary["by_name"]) <= {"/predict", "/predict/batch", INVALID_NAME}
    assert "/predict" in summary["by_name"]

    # the p99 is exact: recomputed here from the raw records
    assert summary["p99_ms"] == pytest.approx(np.percentile(ok["latency_ms"], 99))
    assert len(raw) == summary["requests"]

    # Locust's own reports, the users file from the data, and a server that shut down cleanly
    assert (out / "locust.html").stat().st_size > 0
    assert (out / "locust_stats.csv").read_text().startswith("Type,Name")
    assert (out / "users.csv").read_text().startswith("user_id,weight\n")
    assert "Application shutdown complete" in (out / "server.log").read_text()

    # the same records against generous budgets pass
    relaxed = summarize(raw, p99_budget_ms=1e6, max_usd_per_million=1e6)
    verdicts = {g.name: g.verdict for g in relaxed.gates}
    assert verdicts == {
        # a pass needs an upper bound of p99: 299 samples at 95% (order statistics)
        "latency_budget": "pass" if len(ok) >= 299 else "inconclusive",
        "cost_budget": "pass",
        "error_rate": "pass",
        "invalid_payloads": "pass",
    }, relaxed.report()


def test_server_that_cannot_start_is_reported(tmp_path: Path) -> None:
    with (
        pytest.raises(RuntimeError, match=r"server could not start.*start-up failed.*missing"),
        running_server(
            tmp_path / "workdir",
            tmp_path,
            model_path=tmp_path / "missing.onnx",
            ready_timeout_s=120,
        ),
    ):
        pass
    assert "serving start-up failed" in (tmp_path / "server.log").read_text()


def test_a_server_that_cannot_start_is_one_line_with_its_reason(
    small_system: Any, tmp_path: Path
) -> None:
    """A system whose model file is not a model: the server's own reason, passed through in
    one line with where its log is, exit 2, no traceback (it was two stacked ones)."""
    bad_model = tmp_path / "model.onnx"
    bad_model.write_bytes(b"not an ONNX model")
    out = tmp_path / "load"
    done = load_command(
        "--workdir",
        str(small_system.settings.workdir),
        "--model-path",
        str(bad_model),
        "--out",
        str(out),
        "-t",
        "2s",
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if "could not start" in line]
    assert len(errors) == 1, done.stderr
    assert errors[0].startswith("server could not start: "), errors[0]
    assert errors[0].endswith(f"(its log: {out / 'server.log'})"), errors[0]
    assert not (out / "summary.json").exists()
