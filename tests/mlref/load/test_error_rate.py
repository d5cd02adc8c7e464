"""The error budget is judged over valid requests; invalid payloads are judged on their own.

Hand-made raw records with hand-computed rates. The defect fed here: 1000 valid requests with
15 server errors plus 600 invalid bodies correctly answered 422. Dividing by all 1600 requests
gives 0.94% (inside a 1% budget); the real server error rate is 15/1000 = 1.5%."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
import pytest

from mlref.load import locust_run
from mlref.load.rawlog import COLUMNS, RAW_DIR_ENV
from mlref.load.summary import summarize
from mlref.load.traffic import INVALID_NAME

BUDGET = 0.01


def raw_records(
    valid: dict[int, int], invalid: dict[int, int] | None = None, *, batch: int = 0
) -> pd.DataFrame:
    """Rows {status: count} for ``/predict`` (plus ``batch`` 200s on ``/predict/batch``) and
    for the invalid bodies; status 0 means no answer. 2 ms latency, 1 ms apart."""
    rows: list[tuple[str, int, float, str, float, int]] = []

    def add(name: str, status: int, exception: str, n: int = 1) -> None:
        rows.append((name, status, 2.0, exception, 1_000.0 + len(rows) / 1000.0, n))

    for status, count in valid.items():
        for _ in range(count):
            add("/predict", status, "" if status == 200 else f"HTTPError: {status}")
    for _ in range(batch):
        add("/predict/batch", 200, "", 8)
    for status, count in (invalid or {}).items():
        for _ in range(count):
            add(INVALID_NAME, status, "" if status == 422 else f"expected 422, got {status}")
    return pd.DataFrame(rows, columns=list(COLUMNS))


def gate(summary: Any, name: str) -> Any:
    return {g.name: g for g in summary.gates}[name]


def test_invalid_bodies_do_not_dilute_server_errors() -> None:
    raw = raw_records({200: 985, 500: 15}, {422: 600})
    summary = summarize(raw, p99_budget_ms=1e6, max_error_rate=BUDGET)
    errors = gate(summary, "error_rate")
    assert errors.verdict == "fail"
    assert errors.measured == pytest.approx(15 / 1_000)
    assert errors.measured != pytest.approx(15 / 1_600)  # the diluted figure of the defect
    assert errors.message.startswith("1.50% of 1000 valid requests failed (15 server_errors)")
    assert "budget 1.00%" in errors.message
    assert errors.details["valid_requests"] == 1_000
    assert summary.error_rate == pytest.approx(0.015)
    assert summary.valid_requests == 1_000
    assert gate(summary, "invalid_payloads").verdict == "pass"
    assert not summary.passed
    assert "1.50%" in summary.report()


def test_clean_run_with_invalid_bodies_passes() -> None:
    raw = raw_records({200: 995, 500: 5}, {422: 600}, batch=50)
    summary = summarize(raw, p99_budget_ms=1e6, max_usd_per_million=1e9, max_error_rate=BUDGET)
    assert gate(summary, "error_rate").verdict == "pass"
    assert gate(summary, "error_rate").measured == pytest.approx(5 / 1_050)
    assert gate(summary, "invalid_payloads").verdict == "pass"
    assert gate(summary, "invalid_payloads").measured == 0.0
    assert summary.passed, summary.report()


def test_sheds_count_over_valid_requests_too() -> None:
    raw = raw_records({200: 988, 500: 6, 503: 6}, {422: 600})
    summary = summarize(raw, p99_budget_ms=1e6, max_error_rate=BUDGET)
    assert summary.error_rate == pytest.approx(6 / 1_000)
    assert summary.shed_rate == pytest.approx(6 / 1_000)
    errors = gate(summary, "error_rate")
    assert errors.verdict == "fail"
    assert errors.measured == pytest.approx(12 / 1_000)
    assert "1.20% of 1000 valid requests failed (6 server_errors, 6 shed_503)" in errors.message


def test_unanswered_valid_requests_are_server_errors() -> None:
    # status 0: a timeout or a refused connection (the load generators' unanswered requests)
    summary = summarize(raw_records({200: 980, 0: 20}), p99_budget_ms=1e6)
    assert summary.error_rate == pytest.approx(0.02)
    assert gate(summary, "error_rate").verdict == "fail"


def test_invalid_bodies_not_answered_422_are_their_own_failure() -> None:
    raw = raw_records({200: 1_000}, {422: 90, 200: 6, 500: 4})
    summary = summarize(raw, p99_budget_ms=1e6, max_error_rate=BUDGET)
    invalid = gate(summary, "invalid_payloads")
    assert invalid.verdict == "fail"
    assert invalid.measured == pytest.approx(10 / 100)
    assert invalid.message.startswith("10.00% of 100 invalid bodies were not answered 422 (10)")
    assert summary.invalid_error_rate == pytest.approx(0.1)
    assert (summary.invalid_sent, summary.invalid_rejected, summary.invalid_unexpected) == (
        100,
        90,
        10,
    )
    # ... and never counted among the server's errors
    assert gate(summary, "error_rate").verdict == "pass"
    assert summary.error_rate == 0.0
    assert not summary.passed


def test_no_invalid_bodies_sent_passes_with_a_note() -> None:
    summary = summarize(raw_records({200: 200}), p99_budget_ms=1e6)
    invalid = gate(summary, "invalid_payloads")
    assert invalid.verdict == "pass"
    assert "not exercised" in invalid.message


def test_only_invalid_bodies_fail_the_error_gate() -> None:
    summary = summarize(raw_records({}, {422: 50}), p99_budget_ms=1e6)
    errors = gate(summary, "error_rate")
    assert errors.verdict == "fail"
    assert "no valid request was recorded" in errors.message


class _InterruptedLocust(subprocess.Popen[bytes]):
    """A real child process in place of Locust whose first wait is interrupted (Ctrl-C)."""

    started: ClassVar[list[_InterruptedLocust]] = []

    def __init__(self, cmd: Any, **kwargs: Any) -> None:
        super().__init__([sys.executable, "-c", "import time; time.sleep(60)"], **kwargs)
        self.interrupted = False
        _InterruptedLocust.started.append(self)

    def wait(self, timeout: float | None = None) -> int:
        if not self.interrupted:
            self.interrupted = True
            raise KeyboardInterrupt
        return super().wait(timeout)


def test_locust_is_stopped_when_the_run_is_interrupted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(locust_run.subprocess, "Popen", _InterruptedLocust)
    _InterruptedLocust.started.clear()
    env = {RAW_DIR_ENV: str(tmp_path / "raw")}
    with pytest.raises(KeyboardInterrupt):
        locust_run.run_locust("http://127.0.0.1:9", 1, 1.0, 1, tmp_path, env, None)
    (proc,) = _InterruptedLocust.started
    assert proc.interrupted
    assert proc.poll() is not None  # stopped, not left running
