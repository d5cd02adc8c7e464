"""What a monitoring run found, as plain frozen data: the one room both the checks
(:mod:`mlref.monitor.drift`) and the renderer (:mod:`mlref.monitor.report_html`) import.

A ``MonitorReport`` judges the rows of one model version against that version's
training-time reference; a ``MonitorRun`` holds one report per judged version (a window
that spans a promotion holds two), the rows it could not judge, and the caller's note when
drift was injected on purpose (the demo). Both are JSON-ready.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mlref.monitor.alerts import EXIT_CRITICAL, EXIT_OK, Alert, AlertThresholds, worst

if TYPE_CHECKING:
    from mlgates.result import GateResult

UNKNOWN_VERSION = "unknown"  # a logged prediction that names no model version
MISSING_LABEL = "missing"
UNSEEN_LABEL = "unseen"


@dataclass(frozen=True)
class Distribution:
    """Reference vs current share per bin (the layout PSI was computed on)."""

    labels: tuple[str, ...]
    reference: tuple[float, ...]
    current: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "labels": list(self.labels),
            "reference": list(self.reference),
            "current": list(self.current),
        }


@dataclass(frozen=True)
class FeatureDrift:
    name: str
    psi: float
    kind: str
    distribution: Distribution
    severity: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "psi": self.psi,
            "kind": self.kind,
            "severity": self.severity,
            "distribution": self.distribution.to_dict(),
        }


@dataclass(frozen=True)
class ScoreDrift:
    """Score drift figures; ``distribution`` is PSI's layout (reference quantile bins),
    ``hist_edges`` a log-spaced layout for the eye (fraud scores crowd near 0), and
    ``threshold`` the decision threshold the server logged (None if it logged none)."""

    reference_mean: float
    current_mean: float
    relative_shift: float
    psi: float
    distribution: Distribution
    threshold: float | None = None
    hist_edges: tuple[float, ...] = ()
    reference_hist: tuple[float, ...] = ()
    current_hist: tuple[float, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference_mean": self.reference_mean,
            "current_mean": self.current_mean,
            "relative_shift": self.relative_shift,
            "psi": self.psi,
            "threshold": self.threshold,
            "distribution": self.distribution.to_dict(),
            "histogram": {
                "edges": list(self.hist_edges),
                "reference": list(self.reference_hist),
                "current": list(self.current_hist),
            },
        }


@dataclass(frozen=True)
class LatencySummary:
    """Latency percentiles, histogram, and p99 per time bucket; ``bucket_labels`` are the
    buckets' start times (ISO, UTC, to the second) and ``bucket_seconds`` their width."""

    p50: float
    p95: float
    p99: float
    budget_ms: float
    hist_edges: tuple[float, ...]
    hist_counts: tuple[int, ...]
    bucket_labels: tuple[str, ...]
    bucket_p99: tuple[float, ...]
    bucket_rows: tuple[int, ...]
    bucket_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "p50": self.p50,
            "p95": self.p95,
            "p99": self.p99,
            "budget_ms": self.budget_ms,
            "histogram": {"edges": list(self.hist_edges), "counts": list(self.hist_counts)},
            "bucket_seconds": self.bucket_seconds,
            "over_time": [
                {"bucket": b, "p99": p, "rows": n}
                for b, p, n in zip(
                    self.bucket_labels, self.bucket_p99, self.bucket_rows, strict=True
                )
            ],
        }


class _Verdict:
    """What a report and a run share: the verdict is the worst alert, and JSON is the dict."""

    if TYPE_CHECKING:  # a report's frozen field, a run's property (no runtime default here)

        @property
        def alerts(self) -> tuple[Alert, ...]: ...

    @property
    def status(self) -> str:
        """``ok``, ``warning`` or ``critical``: the worst alert."""
        return worst(self.alerts)

    @property
    def exit_code(self) -> int:
        """Non-zero (2) when any alert is critical, so a scheduler can act on it."""
        return EXIT_CRITICAL if self.status == "critical" else EXIT_OK

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


@dataclass(frozen=True)
class MonitorReport(_Verdict):
    """Everything one monitoring check found, JSON-ready. ``reference_version`` is the
    model version whose reference the rows were judged against (None: the caller passed
    one reference for every row)."""

    window_start: str | None
    window_end: str | None
    n_rows: int
    model_versions: tuple[str, ...]
    alerts: tuple[Alert, ...]
    thresholds: AlertThresholds
    features: tuple[FeatureDrift, ...] = ()
    scores: ScoreDrift | None = None
    latency: LatencySummary | None = None
    gates: tuple[GateResult, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)
    reference_version: str | None = None

    def alerts_of(self, severity: str) -> list[Alert]:
        return [a for a in self.alerts if a.severity == severity]

    def to_dict(self) -> dict[str, Any]:
        return finite(
            {
                "status": self.status,
                "exit_code": self.exit_code,
                "window": {"start": self.window_start, "end": self.window_end},
                "n_rows": self.n_rows,
                "model_versions": list(self.model_versions),
                "reference_version": self.reference_version,
                "alerts": [a.to_dict() for a in self.alerts],
                "thresholds": self.thresholds.to_dict(),
                "features": [f.to_dict() for f in self.features],
                "scores": self.scores.to_dict() if self.scores else None,
                "latency": self.latency.to_dict() if self.latency else None,
                "gates": [g.to_dict() for g in self.gates],
                "notes": list(self.notes),
            }
        )

    def summary(self) -> str:
        judged = (
            f" of model v{self.reference_version}" if self.reference_version is not None else ""
        )
        head = (
            f"monitor: {self.status.upper()} over {self.n_rows} predictions{judged}, "
            f"{human_window(self.window_start, self.window_end)}"
        )
        lines = [head]
        for a in self.alerts:
            lines.append(
                f"  [{a.severity}] {a.metric}: {fmt(a.current)} (threshold {fmt(a.threshold)})"
                + (f" - {a.message}" if a.message else "")
            )
        if not self.alerts:
            lines.append("  no alerts")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


@dataclass(frozen=True)
class MonitorRun(_Verdict):
    """One monitoring run over a window: a report per judged model version (newest first),
    the versions whose rows had no reference (``(version, rows)``, not judged), and, when
    the caller injected drift on purpose, what it injected (alerts are then expected)."""

    reports: tuple[MonitorReport, ...]
    not_judged: tuple[tuple[str, int], ...] = ()
    injected_drift: str | None = None

    @property
    def alerts(self) -> tuple[Alert, ...]:
        return tuple(a for r in self.reports for a in r.alerts)

    @property
    def n_rows(self) -> int:
        """Rows judged (rows of versions without a reference are not counted)."""
        return sum(r.n_rows for r in self.reports)

    def notes(self) -> list[str]:
        """The run's own notes: what was judged against what, what was not, what was meant."""
        out = []
        judged = [r for r in self.reports if r.reference_version is not None]
        if judged:
            out.append(
                "judged each prediction against the reference of the model version that made "
                "it: "
                + "; ".join(f"v{r.reference_version}: {r.n_rows} predictions" for r in judged)
            )
        for version, rows in self.not_judged:
            if version == UNKNOWN_VERSION:
                out.append(f"{rows} predictions logged without a model version not judged")
            else:
                out.append(
                    f"{rows} predictions of model v{version} not judged: no reference for "
                    "that version"
                )
        if self.injected_drift:
            out.append(
                f"drift was injected on purpose ({self.injected_drift}): the drift alerts "
                "are expected and show that monitoring catches it"
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        return finite(
            {
                "status": self.status,
                "exit_code": self.exit_code,
                "n_rows": self.n_rows,
                "judged": [
                    {"model_version": r.reference_version, "rows": r.n_rows} for r in self.reports
                ],
                "not_judged": [{"model_version": v, "rows": n} for v, n in self.not_judged],
                "injected_drift": self.injected_drift,
                "notes": self.notes(),
                "alerts": [
                    {**a.to_dict(), "model_version": r.reference_version}
                    for r in self.reports
                    for a in r.alerts
                ],
                "reports": [r.to_dict() for r in self.reports],
            }
        )

    def summary(self) -> str:
        lines = [r.summary() for r in self.reports]
        lines += [f"note: {n}" for n in self.notes()]
        return "\n".join(lines)


def fmt(v: float) -> str:
    return f"{v:.4g}" if math.isfinite(v) else str(v)


def finite(obj: Any) -> Any:
    """JSON has no inf/nan: non-finite floats become their text."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else str(obj)
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def human_duration(seconds: float) -> str:
    """``1 h 5 min``, ``42 s``, ``350 ms``: a window or bucket width a reader can picture."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.3g} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{seconds / 86400:.1f} days"


def human_window(start: str | None, end: str | None) -> str:
    """``2026-03-01 00:00:03 to 05:59:58 UTC (6 h)``: the log's ISO times (nanoseconds
    included) to the second, with the span."""
    if start is None or end is None:
        return "no predictions"
    t0, t1 = (datetime.fromisoformat(re.sub(r"\.\d+", "", t)) for t in (start, end))
    tail = t1.strftime("%H:%M:%S" if t1.date() == t0.date() else "%Y-%m-%d %H:%M:%S")
    span = human_duration((t1 - t0).total_seconds())
    return f"{t0:%Y-%m-%d %H:%M:%S} to {tail} UTC ({span})"
