"""``monitor``: feature drift, prediction drift and latency over a window of the prediction log.

Every figure comes from mlgates, so production monitoring and CI compute the same numbers:
feature PSI from ``psi_drift`` with the bins frozen at training time (``FrozenBins``, which
also carry the reference counts, so the training frame is not needed here), score drift from
``prediction_drift`` and latency p99 from ``latency_budget``; p99 per time bucket uses
``mlgates.stats.percentiles``. This module turns those figures into alerts with a severity
(:mod:`mlref.monitor.alerts`) and keeps what the HTML report plots.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from mlref.monitor.alerts import (
    EXIT_CRITICAL,
    EXIT_OK,
    Alert,
    AlertThresholds,
    band,
    worst,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from mlgates import FeatureBins, FrozenBins
    from mlgates.result import GateResult

logger = logging.getLogger(__name__)

LATENCY_BUCKETS = 12


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
    reference_mean: float
    current_mean: float
    relative_shift: float
    psi: float
    distribution: Distribution

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference_mean": self.reference_mean,
            "current_mean": self.current_mean,
            "relative_shift": self.relative_shift,
            "psi": self.psi,
            "distribution": self.distribution.to_dict(),
        }


@dataclass(frozen=True)
class LatencySummary:
    p50: float
    p95: float
    p99: float
    budget_ms: float
    hist_edges: tuple[float, ...]
    hist_counts: tuple[int, ...]
    bucket_labels: tuple[str, ...]
    bucket_p99: tuple[float, ...]
    bucket_rows: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "p50": self.p50,
            "p95": self.p95,
            "p99": self.p99,
            "budget_ms": self.budget_ms,
            "histogram": {"edges": list(self.hist_edges), "counts": list(self.hist_counts)},
            "over_time": [
                {"bucket": b, "p99": p, "rows": n}
                for b, p, n in zip(
                    self.bucket_labels, self.bucket_p99, self.bucket_rows, strict=True
                )
            ],
        }


@dataclass(frozen=True)
class MonitorReport:
    """Everything one monitoring run found, JSON-ready."""

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

    @property
    def status(self) -> str:
        """``ok``, ``warning`` or ``critical``: the worst alert."""
        return worst(self.alerts)

    @property
    def exit_code(self) -> int:
        """Non-zero (2) when any alert is critical, so a scheduler can act on it."""
        return EXIT_CRITICAL if self.status == "critical" else EXIT_OK

    def alerts_of(self, severity: str) -> list[Alert]:
        return [a for a in self.alerts if a.severity == severity]

    def to_dict(self) -> dict[str, Any]:
        return _finite(
            {
                "status": self.status,
                "exit_code": self.exit_code,
                "window": {"start": self.window_start, "end": self.window_end},
                "n_rows": self.n_rows,
                "model_versions": list(self.model_versions),
                "alerts": [a.to_dict() for a in self.alerts],
                "thresholds": self.thresholds.to_dict(),
                "features": [f.to_dict() for f in self.features],
                "scores": self.scores.to_dict() if self.scores else None,
                "latency": self.latency.to_dict() if self.latency else None,
                "gates": [g.to_dict() for g in self.gates],
                "notes": list(self.notes),
            }
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def summary(self) -> str:
        head = (
            f"monitor: {self.status.upper()} over {self.n_rows} predictions "
            f"({self.window_start} .. {self.window_end})"
        )
        lines = [head]
        for a in self.alerts:
            lines.append(
                f"  [{a.severity}] {a.metric}: {_fmt(a.current)} (threshold {_fmt(a.threshold)})"
                + (f" - {a.message}" if a.message else "")
            )
        if not self.alerts:
            lines.append("  no alerts")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _fmt(v: float) -> str:
    return f"{v:.4g}" if math.isfinite(v) else str(v)


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else str(obj)
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _shares(counts: Sequence[float] | np.ndarray) -> tuple[float, ...]:
    total = float(sum(counts))
    return tuple(float(c) / total if total else 0.0 for c in counts)


MISSING_LABEL = "missing"
UNSEEN_LABEL = "unseen"


def _g(value: float) -> str:
    if abs(value) >= 1e6:
        return f"{value / 1e6:.3g}M"
    if abs(value) >= 1e3:
        return f"{value / 1e3:.3g}k"
    return f"{value:.3g}"


def numeric_bin_labels(edges: Sequence[float] | np.ndarray) -> tuple[str, ...]:
    """Short labels for ``mlgates.stats.bin_counts``' layout: open ends, then missing.

    A bin ``[v, nextafter(v))`` holds the single reference value ``v`` (``quantile_bins``
    gives low-cardinality columns one bin per value): labelled ``v``, and the bin after it
    starts above ``v`` (``>v``)."""
    e = [float(v) for v in edges]
    if not e:
        return ("all", MISSING_LABEL)
    labels = [f"<{_g(e[0])}"]
    for i, (lo, hi) in enumerate(itertools.pairwise([*e, math.inf])):
        single = i > 0 and lo == math.nextafter(e[i - 1], math.inf)
        start = f">{_g(e[i - 1])}" if single else f"{_g(lo)}"
        if hi == math.nextafter(lo, math.inf):
            labels.append(_g(lo))
        elif hi == math.inf:
            labels.append(start if single else f"\N{GREATER-THAN OR EQUAL TO}{_g(lo)}")
        else:
            labels.append(f"{start}\N{EN DASH}{_g(hi)}")
    return (*labels, MISSING_LABEL)


def _bin_labels(fb: FeatureBins) -> tuple[str, ...]:
    if fb.kind == "numeric":
        return numeric_bin_labels(fb.edges)
    return (*(str(c) for c in fb.categories), UNSEEN_LABEL, MISSING_LABEL)


def _as_bins_input(series: pd.Series, fb: FeatureBins) -> pd.Series:
    """Log values arrive as JSON numbers (floats); match the frozen categorical vocabulary."""
    import pandas as pd

    if fb.kind != "categorical" or not fb.categories:
        return series
    sample = fb.categories[0]
    if isinstance(sample, str):
        return series.map(lambda v: v if pd.isna(v) else _int_text(v)).astype("object")
    if isinstance(sample, (int, bool)) and not isinstance(sample, float):
        values = series.to_numpy(dtype="float64", na_value=float("nan"))
        integral = pd.Series(values).dropna()
        if (integral == integral.round()).all():
            return pd.Series(series, dtype="Float64").astype("Int64").astype("object")
    return series


def _int_text(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _load_scores(reference_scores: Any) -> np.ndarray:
    import numpy as np
    import pandas as pd

    if isinstance(reference_scores, (str, Path)):
        path = Path(reference_scores)
        if not path.is_file():
            raise FileNotFoundError(
                f"reference scores {path} do not exist; save the validation scores at "
                "training time (.npy, .json list, .csv or .parquet with a 'score' column)"
            )
        suffix = path.suffix.lower()
        if suffix == ".npy":
            return np.load(path).astype("float64").reshape(-1)
        if suffix == ".json":
            return np.asarray(json.loads(path.read_text(encoding="utf-8")), dtype="float64")
        if suffix in (".csv", ".parquet"):
            frame = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
            if "score" not in frame.columns:
                raise ValueError(f"{path} has no 'score' column")
            return frame["score"].to_numpy("float64")
        raise ValueError(f"reference scores {path}: expected .npy, .json, .csv or .parquet")
    return np.asarray(reference_scores, dtype="float64").reshape(-1)


def monitor(
    log_frame: pd.DataFrame,
    reference_bins: FrozenBins | str | Path,
    reference_scores: Sequence[float] | np.ndarray | str | Path,
    p99_budget_ms: float,
    thresholds: AlertThresholds | Mapping[str, Any] | None = None,
    *,
    features: Sequence[str] | None = None,
) -> MonitorReport:
    """Check one window of the prediction log (a frame from :func:`read_log`).

    ``reference_bins``: the ``FrozenBins`` saved at training time (or its JSON path); its
    features are the ones monitored unless ``features`` names a subset.
    ``reference_scores``: the model's scores on the reference (validation) data, or a path.
    An empty window gives one warning (``no_traffic``); a window under
    ``thresholds.min_rows`` gives one warning instead of drift alerts (too few rows for PSI).
    """
    import numpy as np
    import pandas as pd

    from mlgates import FrozenBins, latency_budget, prediction_drift, psi_drift, stats

    th = (
        thresholds
        if isinstance(thresholds, AlertThresholds)
        else (AlertThresholds.from_mapping(thresholds))
    )
    if not (p99_budget_ms > 0 and math.isfinite(p99_budget_ms)):
        raise ValueError(f"p99_budget_ms must be a positive number, got {p99_budget_ms}")
    bins = (
        FrozenBins.load(reference_bins)
        if isinstance(reference_bins, (str, Path))
        else (reference_bins)
    )
    ref_scores = _load_scores(reference_scores)
    if ref_scores.size == 0 or not np.isfinite(ref_scores).all():
        raise ValueError("reference scores must be a non-empty set of finite numbers")
    names = list(features) if features is not None else list(bins.features)
    unknown = [n for n in names if n not in bins.features]
    if unknown:
        raise ValueError(
            f"features {unknown} have no frozen bins (bins cover {sorted(bins.features)})"
        )

    n = len(log_frame)
    start = log_frame["ts"].min().isoformat() if n else None
    end = log_frame["ts"].max().isoformat() if n else None
    versions = tuple(sorted(log_frame["model_version"].dropna().astype(str).unique())) if n else ()
    if n == 0:
        alert = Alert("no_traffic", 0.0, 1.0, "warning", "no predictions in this window")
        return MonitorReport(None, None, 0, (), (alert,), th)
    missing = [c for c in (*names, "score", "latency_ms", "ts") if c not in log_frame.columns]
    if missing:
        raise ValueError(
            f"log frame lacks columns {missing}; read it with mlref.monitor.read_log (the "
            "server must log every model input in 'features')"
        )

    alerts: list[Alert] = []
    gates: list[GateResult] = []
    notes: list[str] = []
    feature_rows: list[FeatureDrift] = []
    score_drift: ScoreDrift | None = None
    enough = n >= th.min_rows
    if not enough:
        alerts.append(
            Alert(
                "insufficient_data",
                float(n),
                float(th.min_rows),
                "warning",
                f"only {n} predictions: drift not judged (PSI on few rows is noise); "
                "widen the window",
            )
        )

    # ---- feature drift: one psi_drift call over the frozen bins
    current = pd.DataFrame(
        {name: _as_bins_input(log_frame[name], bins.features[name]) for name in names}
    )
    drift = psi_drift(
        None, current, features=names, bins=bins, warn=th.psi_warning, fail=th.psi_critical
    )
    gates.append(drift)
    per_feature = drift.details["features"]
    for name in names:
        fb = bins.features[name]
        value = float(per_feature[name]["psi"])
        severity = band(value, th.psi_warning, th.psi_critical) if enough else None
        dist = Distribution(
            _bin_labels(fb),
            _shares(fb.reference_counts),
            _shares(fb.counts(current[name])),
        )
        feature_rows.append(FeatureDrift(name, value, fb.kind, dist, severity))
        if severity:
            top = per_feature[name].get("top_bins") or []
            where = ""
            if top:
                t = top[0]
                where = f"; bin {t['bin']} {t['reference_share']:.1%} -> {t['current_share']:.1%}"
            alerts.append(
                Alert(
                    f"feature_drift:{name}",
                    value,
                    th.psi_critical if severity == "critical" else th.psi_warning,
                    severity,
                    f"PSI {value:.3f} against the training-time bins{where}",
                )
            )

    # ---- prediction drift
    cur_scores = log_frame["score"].to_numpy("float64")
    edges = stats.quantile_bins(ref_scores, bins.n_bins)
    pred = prediction_drift(
        ref_scores,
        cur_scores,
        psi_fail=th.prediction_psi_critical,
        psi_warn=th.prediction_psi_warning,
        mean_shift=th.prediction_shift_warning,
        mean_floor=th.prediction_shift_floor,
        bins=edges,
    )
    gates.append(pred)
    d = pred.details
    score_drift = ScoreDrift(
        reference_mean=float(d["mean_reference"]),
        current_mean=float(d["mean_current"]),
        relative_shift=float(d["relative_mean_shift"]),
        psi=float(d["psi"]),
        distribution=Distribution(
            numeric_bin_labels(edges),
            _shares(stats.bin_counts(ref_scores, edges)),
            _shares(stats.bin_counts(cur_scores, edges)),
        ),
    )
    if enough:
        shift = score_drift.relative_shift
        sev = band(shift, th.prediction_shift_warning, th.prediction_shift_critical)
        if sev:
            limit = th.prediction_shift_warning
            if sev == "critical" and th.prediction_shift_critical is not None:
                limit = th.prediction_shift_critical
            alerts.append(
                Alert(
                    "prediction_drift:mean_shift",
                    shift,
                    limit,
                    sev,
                    f"mean score {score_drift.reference_mean:.4g} -> "
                    f"{score_drift.current_mean:.4g}",
                )
            )
        sev = band(score_drift.psi, th.prediction_psi_warning, th.prediction_psi_critical)
        if sev:
            alerts.append(
                Alert(
                    "prediction_drift:psi",
                    score_drift.psi,
                    th.prediction_psi_critical if sev == "critical" else th.prediction_psi_warning,
                    sev,
                    "score distribution moved against the reference scores",
                )
            )

    # ---- latency
    lat = log_frame["latency_ms"].to_numpy("float64")
    lat_ok = lat[np.isfinite(lat)]
    latency: LatencySummary | None = None
    if lat_ok.size == 0:
        notes.append("no latency figures logged in this window")
    else:
        if lat_ok.size < lat.size:
            notes.append(f"{lat.size - lat_ok.size} rows without latency_ms were left out")
        lat_gate = latency_budget(lat_ok, p99_ms=p99_budget_ms)
        gates.append(lat_gate)
        pct = stats.percentiles(lat_ok, (50, 95, 99))
        latency = _latency_summary(log_frame, pct, p99_budget_ms)
        # the gate's one-sided 95% bound below the p99 (order statistics): a fail means even
        # it is over the budget; the upper bound may not exist (inf) on few rows
        lower = lat_gate.details.get("p99_ci_low")
        if lat_gate.verdict == "fail":
            alerts.append(
                Alert(
                    "latency_p99",
                    pct["p99"],
                    p99_budget_ms,
                    "critical",
                    f"p99 {pct['p99']:.1f} ms over the {p99_budget_ms:g} ms budget "
                    f"(95% lower bound {lower:.1f} ms)",
                )
            )
        elif pct["p99"] > p99_budget_ms:
            # over, but the lower bound reaches below the budget (or too few samples):
            # a warning, not a page, until the evidence is clear
            alerts.append(
                Alert(
                    "latency_p99",
                    pct["p99"],
                    p99_budget_ms,
                    "warning",
                    f"p99 {pct['p99']:.1f} ms over the {p99_budget_ms:g} ms budget but "
                    f"within noise: {lat_gate.message}",
                )
            )
    report = MonitorReport(
        window_start=start,
        window_end=end,
        n_rows=n,
        model_versions=versions,
        alerts=tuple(alerts),
        thresholds=th,
        features=tuple(feature_rows),
        scores=score_drift,
        latency=latency,
        gates=tuple(gates),
        notes=tuple(notes),
    )
    logger.info("monitor: %s, %d alert(s) over %d rows", report.status, len(alerts), n)
    return report


def _latency_summary(
    log_frame: pd.DataFrame, pct: Mapping[str, float], budget: float
) -> LatencySummary:
    import numpy as np
    import pandas as pd

    from mlgates import stats

    frame = log_frame.loc[np.isfinite(log_frame["latency_ms"]), ["ts", "latency_ms"]]
    lat = frame["latency_ms"].to_numpy("float64")
    top = max(float(np.max(lat)), budget * 1.1)
    counts, edges = np.histogram(lat, bins=30, range=(0.0, top))

    t0, t1 = frame["ts"].min(), frame["ts"].max()
    n_buckets = LATENCY_BUCKETS if t1 > t0 else 1
    span = (t1 - t0) / n_buckets if t1 > t0 else pd.Timedelta(seconds=1)
    idx = np.minimum(((frame["ts"] - t0) / span).to_numpy("float64").astype(int), n_buckets - 1)
    labels, p99s, rows = [], [], []
    for b in range(n_buckets):
        values = lat[idx == b]
        labels.append((t0 + b * span).floor("min").strftime("%m-%d %H:%M"))
        rows.append(int(values.size))
        p99s.append(stats.percentiles(values, (99,))["p99"] if values.size else float("nan"))
    return LatencySummary(
        p50=pct["p50"],
        p95=pct["p95"],
        p99=pct["p99"],
        budget_ms=budget,
        hist_edges=tuple(float(e) for e in edges),
        hist_counts=tuple(int(c) for c in counts),
        bucket_labels=tuple(labels),
        bucket_p99=tuple(p99s),
        bucket_rows=tuple(rows),
    )


def run_monitor(
    log_path: str | Path,
    reference_bins: FrozenBins | str | Path,
    reference_scores: Sequence[float] | np.ndarray | str | Path,
    p99_budget_ms: float,
    *,
    start: datetime | pd.Timestamp | str | float | None = None,
    end: datetime | pd.Timestamp | str | float | None = None,
    thresholds: AlertThresholds | Mapping[str, Any] | None = None,
    json_path: str | Path | None = None,
    html_path: str | Path | None = None,
    out: TextIO | None = None,
) -> int:
    """What ``mlref monitor`` runs: read the window, check it, write JSON (and HTML).

    Prints the summary (to ``out``, default stdout), writes the report JSON to
    ``json_path`` and the self-contained HTML report to ``html_path`` when given, and
    returns the exit code: 0 when fine or only warnings, 2 on any critical alert.
    """
    import sys

    from mlref.monitor.log import read_log
    from mlref.monitor.report_html import write_html

    frame = read_log(log_path, start, end)
    report = monitor(frame, reference_bins, reference_scores, p99_budget_ms, thresholds)
    stream = out if out is not None else sys.stdout
    print(report.summary(), file=stream)
    if json_path is not None:
        path = Path(json_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(report.to_json(), encoding="utf-8")
        print(f"report JSON: {path}", file=stream)
    if html_path is not None:
        written = write_html(report, html_path)
        print(f"report HTML: {written}", file=stream)
    return report.exit_code
