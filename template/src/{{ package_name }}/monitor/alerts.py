"""Alerts: what crossed which threshold, and how bad it is.

Severity bands follow the design seed: feature PSI above 0.1 is a warning and above 0.2
critical; a relative mean-score shift above 15% is a warning (critical only if you set a
critical level); latency p99 over the budget is critical; a NaN, inf or out-of-range score or
model input, or a constant model, is critical, and saturated scores or many requests served
default features a warning (``numeric_stability``, monitor-5). Every figure compared here was
measured by an mlgates gate (one PSI, one percentile code path for CI and production);
this module only decides the severity band.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from mlgates.result import GateResult

Severity = Literal["warning", "critical"]
SEVERITIES: tuple[str, ...] = ("warning", "critical")

EXIT_OK = 0
EXIT_CRITICAL = 2  # 1 stays free for "the monitor itself crashed"


@dataclass(frozen=True)
class Alert:
    """One threshold crossing. ``metric`` is e.g. ``feature_drift:log_amount``."""

    metric: str
    current: float
    threshold: float
    severity: Severity
    message: str = ""

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {self.severity!r}")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("current", "threshold"):
            v = out[key]
            out[key] = v if math.isfinite(v) else str(v)
        return out


@dataclass(frozen=True)
class AlertThresholds:
    """Alert levels (defaults from the design seed). Override any via ``from_mapping``."""

    psi_warning: float = 0.1
    psi_critical: float = 0.2
    # relative mean-score shift |mean_cur - mean_ref| / max(mean_ref, floor)
    prediction_shift_warning: float = 0.15
    prediction_shift_critical: float | None = None
    prediction_shift_floor: float = 0.05
    # PSI of the score distribution itself
    prediction_psi_warning: float = 0.1
    prediction_psi_critical: float = 0.2
    # below this many rows drift figures are noise: one warning instead of drift alerts
    min_rows: int = 200
    # numeric_stability: shares of scores at 0 or 1, and of requests served default features
    # (an unknown user), above which a warning is raised
    max_saturated_share: float = 0.05
    max_default_share: float = 0.05

    def __post_init__(self) -> None:
        if not 0 <= self.psi_warning <= self.psi_critical:
            raise ValueError(
                f"need 0 <= psi_warning <= psi_critical, got {self.psi_warning}, "
                f"{self.psi_critical}"
            )
        if not 0 <= self.prediction_psi_warning <= self.prediction_psi_critical:
            raise ValueError("need 0 <= prediction_psi_warning <= prediction_psi_critical")
        if self.prediction_shift_warning <= 0:
            raise ValueError("prediction_shift_warning must be > 0")
        crit = self.prediction_shift_critical
        if crit is not None and crit < self.prediction_shift_warning:
            raise ValueError("prediction_shift_critical must be >= prediction_shift_warning")
        if self.prediction_shift_floor <= 0:
            raise ValueError("prediction_shift_floor must be > 0")
        if self.min_rows < 1:
            raise ValueError("min_rows must be >= 1")
        for share in ("max_saturated_share", "max_default_share"):
            if not 0.0 <= getattr(self, share) <= 1.0:
                raise ValueError(f"{share} must be a share in [0, 1], got {getattr(self, share)}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> AlertThresholds:
        """Build from a dict (e.g. parsed JSON/TOML); unknown keys are refused by name."""
        if not values:
            return cls()
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown alert threshold(s) {unknown}; known: {sorted(known)}")
        return cls(**dict(values))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def band(value: float, warning: float, critical: float | None) -> Severity | None:
    """``critical`` above ``critical``, ``warning`` above ``warning``, else None."""
    if critical is not None and value > critical:
        return "critical"
    if value > warning:
        return "warning"
    return None


def stability_alert(result: GateResult) -> Alert | None:
    """``numeric_stability``'s verdict as an alert: a fail (a NaN/inf/out-of-range score or
    input, a constant model) is critical, because such scores act on requests silently; a
    warning (saturated scores, requests served defaults) is a warning."""
    if result.verdict == "fail":
        severity: Severity = "critical"
    elif result.verdict == "warn":
        severity = "warning"
    else:
        return None
    return Alert(
        "numeric_stability",
        float(result.measured or 0.0),
        float(result.threshold or 0.0),
        severity,
        result.message,
    )


def worst(alerts: list[Alert] | tuple[Alert, ...]) -> Literal["ok", "warning", "critical"]:
    if any(a.severity == "critical" for a in alerts):
        return "critical"
    if alerts:
        return "warning"
    return "ok"


def alerts_json(alerts: list[Alert] | tuple[Alert, ...]) -> str:
    return json.dumps([a.to_dict() for a in alerts], indent=2, sort_keys=True)
