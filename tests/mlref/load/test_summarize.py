"""The load test's evaluation: raw records -> throughput, exact percentiles, error/shed rates,
cost, and gate verdicts. Synthetic records with known answers; each defect fails its gate."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlref.load.rawlog import COLUMNS, RawWriter, read_raw
from mlref.load.runner import _check_host, parse_run_time, run_load
from mlref.load.summary import summarize
from mlref.load.traffic import INVALID_NAME
from mlref.settings import make_settings

HOURLY = 0.10


def records(
    n: int = 1_000,
    *,
    seed: int = 0,
    latency_scale: float = 5.0,
    statuses: dict[int, int] | None = None,
    invalid: dict[int, int] | None = None,
    duration_s: float = 10.0,
) -> pd.DataFrame:
    """``n`` single predictions over ``duration_s`` seconds (status 200 unless ``statuses``
    says {status: count}), plus invalid bodies {status: count}."""
    rng = np.random.default_rng(seed)
    status = np.full(n, 200)
    pos = 0
    for code, count in (statuses or {}).items():
        status[pos : pos + count] = code
        pos += count
    frame = pd.DataFrame(
        {
            "name": "/predict",
            "status": status,
            "latency_ms": rng.gamma(2.0, latency_scale, n),
            "exception": np.where(status == 200, "", "HTTPError: failed"),
            "start": 1_000.0 + np.linspace(0, duration_s - 0.2, n),
            "n": 1,
        }
    )
    rows = [frame]
    for code, count in (invalid or {}).items():
        rows.append(
            pd.DataFrame(
                {
                    "name": INVALID_NAME,
                    "status": code,
                    "latency_ms": 1.0,
                    "exception": "" if code == 422 else "CatchResponseError: expected 422",
                    "start": 1_000.0 + rng.uniform(0, duration_s - 0.2, count),
                    "n": 1,
                }
            )
        )
    return pd.concat(rows, ignore_index=True)[list(COLUMNS)]


def verdicts(summary) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {g.name: g.verdict for g in summary.gates}


def test_clean_run_passes_with_hand_computed_figures() -> None:
    raw = records(invalid={422: 30})
    summary = summarize(raw, p99_budget_ms=200.0, hourly_usd=HOURLY)
    ok = raw[raw["name"] == "/predict"]
    duration = float((raw["start"] + raw["latency_ms"] / 1000).max() - raw["start"].min())
    assert summary.duration_s == pytest.approx(duration)
    assert summary.predictions == 1_000
    assert summary.predictions_per_s == pytest.approx(1_000 / duration)
    # exact percentiles of the successful scoring calls (invalid bodies excluded)
    assert summary.p99_ms == pytest.approx(np.percentile(ok["latency_ms"], 99))
    assert summary.p50_ms == pytest.approx(np.median(ok["latency_ms"]))
    assert summary.max_ms == pytest.approx(ok["latency_ms"].max())
    assert summary.usd_per_million == pytest.approx(HOURLY / 3600 / (1_000 / duration) * 1e6)
    assert (summary.invalid_sent, summary.invalid_rejected, summary.invalid_unexpected) == (
        30,
        30,
        0,
    )
    assert summary.error_rate == 0.0
    assert summary.shed_rate == 0.0
    assert verdicts(summary) == {
        "latency_budget": "pass",
        "cost_budget": "pass",
        "error_rate": "pass",
        "invalid_payloads": "pass",
    }
    assert summary.valid_requests == 1_000
    assert summary.invalid_error_rate == 0.0
    assert summary.passed
    assert summary.by_name[INVALID_NAME]["statuses"] == {"422": 30}


def test_p99_over_budget_fails() -> None:
    summary = summarize(records(), p99_budget_ms=0.001)
    assert verdicts(summary)["latency_budget"] == "fail"
    assert not summary.passed
    (gate,) = summary.failed_gates
    assert "p99 over budget 0.001 ms" in gate.message


def test_batch_transactions_count_as_predictions() -> None:
    raw = records(100)
    raw.loc[:9, "name"] = "/predict/batch"
    raw.loc[:9, "n"] = 20
    summary = summarize(raw, p99_budget_ms=1e6)
    assert summary.predictions == 90 + 10 * 20
    assert summary.throughput_rps == pytest.approx(100 / summary.duration_s)
    assert summary.predictions_per_s == pytest.approx(290 / summary.duration_s)
    assert summary.by_name["/predict/batch"]["transactions"] == 200


def test_server_errors_fail_the_error_budget() -> None:
    summary = summarize(records(statuses={500: 30, 0: 5}), p99_budget_ms=1e6)
    gate = {g.name: g for g in summary.gates}["error_rate"]
    assert gate.verdict == "fail"
    assert gate.measured == pytest.approx(35 / 1_000)
    assert gate.details["server_errors"] == 35
    assert "35 server_errors" in gate.message
    assert summary.error_rate == pytest.approx(0.035)


def test_shedding_is_counted_apart_and_fails_the_budget() -> None:
    summary = summarize(records(statuses={503: 20}), p99_budget_ms=1e6)
    assert summary.shed_rate == pytest.approx(0.02)
    assert summary.error_rate == 0.0
    gate = {g.name: g for g in summary.gates}["error_rate"]
    assert gate.verdict == "fail"
    assert gate.details["shed_503"] == 20


def test_small_shares_stay_within_the_error_budget() -> None:
    summary = summarize(records(statuses={503: 5}), p99_budget_ms=1e6, max_error_rate=0.01)
    assert verdicts(summary)["error_rate"] == "pass"


def test_invalid_body_answered_200_is_a_validation_hole() -> None:
    summary = summarize(records(invalid={422: 5, 200: 15}), p99_budget_ms=1e6)
    assert summary.invalid_unexpected == 15
    gate = {g.name: g for g in summary.gates}["invalid_payloads"]
    assert gate.verdict == "fail"
    assert gate.details["invalid_not_422"] == 15
    assert gate.measured == pytest.approx(15 / 20)
    # judged apart: the server's error rate over valid requests is untouched
    assert verdicts(summary)["error_rate"] == "pass"
    assert summary.error_rate == 0.0


def test_nothing_succeeded() -> None:
    summary = summarize(records(50, statuses={500: 50}))
    assert verdicts(summary) == {
        "latency_budget": "inconclusive",
        "cost_budget": "fail",
        "error_rate": "fail",
        "invalid_payloads": "pass",  # none sent
    }
    assert summary.usd_per_million is None
    assert summary.p99_ms is None
    assert "unbounded" in {g.name: g for g in summary.gates}["cost_budget"].message


def test_cost_over_budget_fails() -> None:
    summary = summarize(records(), p99_budget_ms=1e6, hourly_usd=100.0)
    # $100/h at ~100 predictions/s is ~$278 per million
    assert verdicts(summary)["cost_budget"] == "fail"


def test_summary_json_round_trips() -> None:
    import json

    summary = summarize(records(), p99_budget_ms=1e6)
    data = json.loads(summary.to_json())
    assert data["passed"] is True
    assert [g["name"] for g in data["gates"]] == [
        "latency_budget",
        "cost_budget",
        "error_rate",
        "invalid_payloads",
    ]
    assert data["valid_requests"] == 1_000
    assert "req/s" in summary.report()


def test_raw_records_round_trip(tmp_path: Path) -> None:
    writer = RawWriter(tmp_path / "raw")
    writer.add("/predict", 200, 12.3456, "", 1000.5, 1)
    writer.add("/predict/batch", 0, 3.0, "ConnectionRefusedError: x, y", 1001.0, 8)
    writer.flush()
    writer.flush()  # nothing pending: no-op
    assert writer.path.name == f"requests-{os.getpid()}.csv"
    raw = read_raw(tmp_path / "raw")
    assert raw.to_dict("list") == {
        "name": ["/predict", "/predict/batch"],
        "status": [200, 0],
        "latency_ms": [12.3456, 3.0],
        "exception": ["", "ConnectionRefusedError: x, y"],
        "start": [1000.5, 1001.0],
        "n": [1, 8],
    }


def test_no_raw_records_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no raw request records"):
        read_raw(tmp_path)


@pytest.mark.parametrize(
    ("text", "seconds"), [(30, 30), ("30", 30), ("45s", 45), ("2m", 120), ("1m30s", 90)]
)
def test_run_time_parsing(text: object, seconds: int) -> None:
    assert parse_run_time(text) == seconds  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["", "abc", "0", "2d", "10h", -5])
def test_bad_run_time_is_refused(text: object) -> None:
    with pytest.raises(ValueError, match="run time"):
        parse_run_time(text)  # type: ignore[arg-type]


def test_only_loopback_hosts() -> None:
    assert _check_host("127.0.0.1:8000") == "http://127.0.0.1:8000"
    assert _check_host("http://localhost:9") == "http://localhost:9"
    with pytest.raises(ValueError, match=r"only target http://127\.0\.0\.1"):
        _check_host("http://example.com")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"users": 0}, "users must be"),
        ({"users": 10_000}, "users must be"),
        ({"spawn_rate": 0.0}, "spawn_rate"),
        ({"run_time": "2d"}, "run time"),
        ({"processes": 0}, "processes must be"),
        ({"host": "http://10.0.0.1:80"}, "loopback"),
    ],
)
def test_run_load_refuses_unbounded_input_before_starting(
    tmp_path: Path, kwargs: dict[str, object], message: str
) -> None:
    args: dict[str, object] = {"users": 2, "spawn_rate": 1.0, "run_time": 5}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        run_load(make_settings(tmp_path), out_dir=tmp_path / "out", **args)  # type: ignore[arg-type]
    assert not (tmp_path / "out").exists()
