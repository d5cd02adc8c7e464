"""What a load run measured: ``summarize`` turns raw request records into a ``LoadSummary``.

The records (``mlref.load.rawlog`` columns, one row per request, exact latencies: Locust's own
percentiles are bucketed) are split into valid scoring requests (answered 200, shed with 503,
or failed) and deliberately invalid bodies (answered 422 or not); the summary holds the
throughput, the exact latency percentiles, the rates, the cost, a row per request name, and the
four budgets' verdicts (``mlref.load.budgets``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlref.load.budgets import (
    DEFAULT_HOURLY_USD,
    DEFAULT_MAX_ERROR_RATE,
    DEFAULT_MAX_USD_PER_MILLION,
    cost_gate,
    error_gate,
    invalid_gate,
    latency_gate,
)
from mlref.load.traffic import INVALID_NAME

if TYPE_CHECKING:
    import pandas as pd

    from mlgates.result import GateResult


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


def latency_stats(values: Any) -> dict[str, Any]:
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
    overall = latency_stats(samples)
    latency_judged = latency_gate(samples, p99_budget_ms)
    cost_judged = cost_gate(pps, hourly_usd, max_usd_per_million)
    n_valid = int(valid.sum())
    n_invalid = int(invalid.sum())
    breakdown = {"server_errors": int(errors.sum()), "shed_503": int(shed.sum())}
    errors_judged = error_gate(n_valid, max_error_rate, breakdown)
    invalid_judged = invalid_gate(n_invalid, int(unexpected.sum()), max_error_rate)

    by_name: dict[str, dict[str, Any]] = {}
    names = raw["name"].astype(str).to_numpy()
    for name in sorted(set(names.tolist())):
        mask = names == name
        good = mask & (ok | rejected)
        stats_ = latency_stats(latency[good])
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
        usd_per_million=cost_judged.measured,  # None when nothing was predicted
        hourly_usd=float(hourly_usd),
        by_name=by_name,
        gates=(latency_judged, cost_judged, errors_judged, invalid_judged),
        config=dict(config or {}),
        valid_requests=n_valid,
        invalid_error_rate=int(unexpected.sum()) / n_invalid if n_invalid else 0.0,
    )
