"""``monitor``: feature drift, prediction drift, latency and numeric stability over a window of
the prediction log.

Every figure comes from mlgates, so production monitoring and CI compute the same numbers:
feature PSI from ``psi_drift`` with the bins frozen at training time (``FrozenBins``, which
also carry the reference counts, so the training frame is not needed here), score drift from
``prediction_drift``, latency p99 from ``latency_budget``, NaN/inf/out-of-range scores and
inputs from ``numeric_stability``; p99 per time bucket uses
``mlgates.stats.percentiles``. This module turns those figures into alerts with a severity
(:mod:`mlref.monitor.alerts`) and keeps what the HTML report plots.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TextIO

from mlref.data.columns import CATEGORIES
from mlref.monitor.alerts import Alert, AlertThresholds, band, stability_alert
from mlref.monitor.report import (
    MISSING_LABEL,
    UNKNOWN_VERSION,
    UNSEEN_LABEL,
    Distribution,
    FeatureDrift,
    LatencySummary,
    MonitorReport,
    MonitorRun,
    ScoreDrift,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from mlgates import FeatureBins, FrozenBins
    from mlgates.result import GateResult

logger = logging.getLogger(__name__)

# what the merchant_category_code feature's codes mean (mlref.features.transforms encodes
# the index in CATEGORIES, -1 for anything else): the report names bins by category
CATEGORY_NAMES: Mapping[str, Mapping[int, str]] = {
    "merchant_category_code": {-1: "other", **dict(enumerate(CATEGORIES))},
    # mlref.features.transforms: Monday = 0
    "day_of_week": dict(enumerate(("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"))),
}

LATENCY_BUCKETS = 12


def _shares(counts: Sequence[float] | np.ndarray) -> tuple[float, ...]:
    total = float(sum(counts))
    return tuple(float(c) / total if total else 0.0 for c in counts)


def _g(value: float) -> str:
    if abs(value) >= 1e6:
        return f"{value / 1e6:.3g}M"
    if abs(value) >= 1e3:
        return f"{value / 1e3:.3g}k"
    return f"{value:.3g}"


def numeric_bin_labels(
    edges: Sequence[float] | np.ndarray, *, integral: bool = False
) -> tuple[str, ...]:
    """Short labels for ``mlgates.stats.bin_counts``' layout: open ends, then missing.

    A bin ``[v, nextafter(v))`` holds the single reference value ``v`` (``quantile_bins``
    gives low-cardinality columns one bin per value): labelled ``v``, and the bin after it
    starts above ``v`` (``>v``). ``integral``: the feature takes whole values (counts,
    hours), so ``[1, 2)`` is the value ``1`` and ``[2, 5)`` reads ``2-4`` (en dash)."""
    e = [float(v) for v in edges]
    if not e:
        return ("all", MISSING_LABEL)
    labels = [f"<{_g(e[0])}"]
    for i, (lo, hi) in enumerate(itertools.pairwise([*e, math.inf])):
        whole = _whole_values(lo, hi) if integral else None
        if whole is not None:
            labels.append(whole)
            continue
        single = i > 0 and lo == math.nextafter(e[i - 1], math.inf)
        start = f">{_g(e[i - 1])}" if single else f"{_g(lo)}"
        if hi == math.nextafter(lo, math.inf):
            labels.append(_g(lo))
        elif hi == math.inf:
            labels.append(start if single else f"\N{GREATER-THAN OR EQUAL TO}{_g(lo)}")
        else:
            labels.append(f"{start}\N{EN DASH}{_g(hi)}")
    return (*labels, MISSING_LABEL)


def _whole_values(lo: float, hi: float) -> str | None:
    """The whole numbers in ``[lo, hi)`` as a label, when ``hi`` is whole (or open)."""
    first = math.ceil(lo)
    if hi == math.inf:
        return f"\N{GREATER-THAN OR EQUAL TO}{_g(first)}"
    if not hi.is_integer() or hi <= first:
        return None
    last = int(hi) - 1
    return _g(first) if last == first else f"{_g(first)}\N{EN DASH}{_g(last)}"


def coded_bin_labels(
    edges: Sequence[float] | np.ndarray, names: Mapping[int, str], *, integral: bool = True
) -> tuple[str, ...]:
    """Labels for a numeric feature that encodes categories (``merchant_category_code``):
    each bin of ``numeric_bin_labels``' layout is named by the categories whose codes fall in
    it ("grocery", "fashion, travel"); a bin no named code falls in keeps its numeric label."""
    numeric = numeric_bin_labels(edges, integral=integral)
    e = [float(v) for v in edges]
    bounds = list(itertools.pairwise([-math.inf, *e, math.inf])) if e else [(-math.inf, math.inf)]
    labels = []
    for (lo, hi), fallback in zip(bounds, numeric[:-1], strict=True):
        inside = [names[c] for c in sorted(names) if lo <= c < hi]
        labels.append(", ".join(inside) if inside else fallback)
    return (*labels, MISSING_LABEL)


def _bin_labels(
    fb: FeatureBins, names: Mapping[int, str] | None, integral: bool
) -> tuple[str, ...]:
    if fb.kind == "numeric":
        if names:
            return coded_bin_labels(fb.edges, names, integral=integral)
        return numeric_bin_labels(fb.edges, integral=integral)
    return (*(str(c) for c in fb.categories), UNSEEN_LABEL, MISSING_LABEL)


def _integral(values: pd.Series) -> bool:
    """Whole numbers only (counts, hours, codes): bins then read as the values they hold."""
    import numpy as np

    numbers = values.to_numpy(dtype="float64", na_value=float("nan"))
    finite = numbers[np.isfinite(numbers)]
    return bool(finite.size) and bool(np.all(finite == np.round(finite)))


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
    category_names: Mapping[str, Mapping[int, str]] | None = None,
    reference_version: str | None = None,
) -> MonitorReport:
    """Check one window of the prediction log (a frame from :func:`read_log`).

    ``reference_bins``: the ``FrozenBins`` saved at training time (or its JSON path); its
    features are the ones monitored unless ``features`` names a subset.
    ``reference_scores``: the model's scores on the reference (validation) data, or a path.
    Every row is judged against this one reference: pass the rows of the model version it
    belongs to (``reference_version`` names it in the report), or use
    :func:`monitor_versions`, which splits a window by version.
    ``category_names``: per numeric feature that encodes categories, code -> name, so the
    report's bins read as category names.
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
        return MonitorReport(None, None, 0, (), (alert,), th, reference_version=reference_version)
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
            _bin_labels(
                fb,
                (category_names or {}).get(name),
                fb.kind == "numeric" and _integral(current[name]),
            ),
            _shares(fb.reference_counts),
            _shares(fb.counts(current[name])),
        )
        feature_rows.append(FeatureDrift(name, value, fb.kind, dist, severity))
        if severity:
            top = per_feature[name].get("top_bins") or []
            where = ""
            if top:
                t = top[0]
                # psi_drift names bins by their edges; say it with the report's labels
                gate_labels = fb.labels()
                shown = (
                    dist.labels[gate_labels.index(t["bin"])]
                    if t["bin"] in gate_labels
                    else t["bin"]
                )
                where = f"; bin {shown} {t['reference_share']:.1%} -> {t['current_share']:.1%}"
            alerts.append(
                Alert(
                    f"feature_drift:{name}",
                    value,
                    th.psi_critical if severity == "critical" else th.psi_warning,
                    severity,
                    f"PSI {value:.3f} against the training-time bins{where}",
                )
            )

    # ---- prediction drift, on the finite scores: a NaN/inf score is numeric_stability's to
    # report (critical, below), and must not stop the rest of the report
    all_scores = log_frame["score"].to_numpy("float64")
    cur_scores = all_scores[np.isfinite(all_scores)]
    if cur_scores.size < all_scores.size:
        notes.append(
            f"{all_scores.size - cur_scores.size} NaN/inf scores left out of prediction drift"
        )
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
    hist_edges = _log_score_edges(ref_scores, cur_scores)
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
        threshold=_logged_threshold(log_frame),
        hist_edges=tuple(float(e) for e in hist_edges),
        reference_hist=_shares(_clipped_hist(ref_scores, hist_edges)),
        current_hist=_shares(_clipped_hist(cur_scores, hist_edges)),
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

    # ---- latency: the p99 budget is a single request's; a /predict/batch row carries its
    # whole call's latency (hundreds of rows queued together), so batch rows are counted
    # apart instead of being judged against it
    single = log_frame
    if "batch_size" in log_frame.columns:
        in_batch = log_frame["batch_size"].to_numpy() > 1
        if in_batch.any():
            single = log_frame.loc[~in_batch]
            notes.append(
                f"latency judged on the {len(single)} single-transaction requests; "
                f"{int(in_batch.sum())} rows came in /predict/batch calls (their latency is "
                "the whole call's) and are not held to the per-request budget"
            )
    lat = single["latency_ms"].to_numpy("float64")
    lat_ok = lat[np.isfinite(lat)]
    latency: LatencySummary | None = None
    if lat_ok.size == 0:
        if single is log_frame:  # else the batch note above already says why
            notes.append("no latency figures logged in this window")
    else:
        if lat_ok.size < lat.size:
            notes.append(f"{lat.size - lat_ok.size} rows without latency_ms were left out")
        lat_gate = latency_budget(lat_ok, p99_ms=p99_budget_ms)
        gates.append(lat_gate)
        pct = stats.percentiles(lat_ok, (50, 95, 99))
        latency = _latency_summary(single, pct, p99_budget_ms)
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
    # ---- numeric stability: judged on any number of rows (one NaN score is one too many)
    stable = stability(all_scores, log_frame, names, bins, th)
    gates.append(stable)
    unstable = stability_alert(stable)
    if unstable is not None:
        alerts.append(unstable)
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
        reference_version=reference_version,
    )
    logger.info("monitor: %s, %d alert(s) over %d rows", report.status, len(alerts), n)
    return report


def stability(
    scores: np.ndarray,
    frame: pd.DataFrame,
    names: Sequence[str],
    bins: FrozenBins,
    thresholds: AlertThresholds | None = None,
) -> GateResult:
    """``numeric_stability`` of served (or training) ``scores`` and the model inputs ``names``
    of ``frame``. NaN is allowed in an input only where the training frame had it (the frozen
    bins' NaN bucket): there it is the model's missing-value marker (e.g. no 30-day average
    for a new user), anywhere else a broken computation. ``frame["unknown_user"]`` (the
    prediction log's flag), when present, counts requests served default features."""
    from mlgates import numeric_stability

    th = thresholds or AlertThresholds()
    numeric = [n for n in names if bins.features[n].kind == "numeric"]
    allow = [n for n in numeric if bins.features[n].reference_counts[-1] > 0]
    defaulted = frame["unknown_user"].to_numpy(bool) if "unknown_user" in frame else None
    return numeric_stability(
        scores,
        features=frame[numeric],
        allow_missing=allow,
        defaulted=defaulted,
        max_saturated_share=th.max_saturated_share,
        max_default_share=th.max_default_share,
    )


def _log_score_edges(*scores: np.ndarray, n_bins: int = 30) -> np.ndarray:
    """Log-spaced edges from the lowest positive score's decade to 1: fraud scores crowd
    near 0, and on a linear axis 90% of the mass sits in the first bar."""
    import numpy as np

    values = np.concatenate([s[np.isfinite(s) & (s > 0)] for s in scores])
    low = float(values.min()) if values.size else 1e-4
    low = max(10.0 ** math.floor(math.log10(low)), 1e-6)
    return np.geomspace(low, 1.0, n_bins + 1)


def _clipped_hist(scores: np.ndarray, edges: np.ndarray) -> np.ndarray:
    import numpy as np

    clipped = np.clip(scores[np.isfinite(scores)], edges[0], edges[-1])
    return np.histogram(clipped, bins=edges)[0]


def _logged_threshold(log_frame: pd.DataFrame) -> float | None:
    """The decision threshold the server logged last in the window (None if none)."""
    if "threshold" not in log_frame.columns:
        return None
    logged = log_frame["threshold"].dropna()
    return float(logged.iloc[-1]) if len(logged) else None


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
        labels.append((t0 + b * span).floor("s").isoformat())
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
        bucket_seconds=float(span.total_seconds()),
    )


class ModelReference(NamedTuple):
    """What one model version's predictions are judged against: the feature bins frozen on
    its training window and its scores on its test window."""

    bins: FrozenBins | str | Path
    scores: Sequence[float] | np.ndarray | str | Path


ReferenceSource = (
    Mapping[str, ModelReference] | Callable[[Sequence[str]], Mapping[str, ModelReference]]
)


def monitor_versions(
    log_frame: pd.DataFrame,
    references: Mapping[str, ModelReference],
    p99_budget_ms: float,
    thresholds: AlertThresholds | Mapping[str, Any] | None = None,
    *,
    category_names: Mapping[str, Mapping[int, str]] | None = None,
    injected_drift: str | None = None,
) -> MonitorRun:
    """Judge each logged prediction against the reference of the model version that made it.

    A window that spans a promotion holds rows of two versions; judging all of them against
    the new champion's reference reports the old model's scores as drift (a PSI of 1.5 right
    after the demo's retrain). One report per version with a reference, newest version first;
    rows of versions without one (or logged without a version, ``unknown``) are counted in
    ``MonitorRun.not_judged``, never judged against another version's reference. An empty
    window is one ``no_traffic`` warning; a window with no judged row one ``no_reference``
    warning.
    """
    th = (
        thresholds
        if isinstance(thresholds, AlertThresholds)
        else AlertThresholds.from_mapping(thresholds)
    )
    # a row the server logged without a version is not judged either (named, not dropped)
    version_of = log_frame["model_version"].astype("string").fillna(UNKNOWN_VERSION)
    rows = {str(v): int(n) for v, n in version_of.value_counts(sort=False).items()}
    judged = sorted((v for v in rows if v in references), key=_version_key, reverse=True)
    not_judged = tuple(
        (v, n)
        for v, n in sorted(rows.items(), key=lambda kv: _version_key(kv[0]))
        if v not in judged
    )
    reports: tuple[MonitorReport, ...]
    if not rows:
        alert = Alert("no_traffic", 0.0, 1.0, "warning", "no predictions in this window")
        reports = (MonitorReport(None, None, 0, (), (alert,), th),)
    elif not judged:
        # predictions, but none of a version with a reference: say so, never pass silently
        n = len(log_frame)
        alert = Alert(
            "no_reference",
            float(n),
            0.0,
            "warning",
            f"{n} predictions, none judged: no reference for model version(s) "
            + ", ".join(v for v, _ in not_judged),
        )
        reports = (
            MonitorReport(
                log_frame["ts"].min().isoformat(),
                log_frame["ts"].max().isoformat(),
                0,
                tuple(v for v, _ in not_judged),
                (alert,),
                th,
            ),
        )
    else:
        reports = tuple(
            monitor(
                log_frame[(version_of == v).to_numpy()].reset_index(drop=True),
                *references[v],
                p99_budget_ms,
                th,
                category_names=category_names,
                reference_version=v,
            )
            for v in judged
        )
    return MonitorRun(reports, not_judged, injected_drift)


def _version_key(version: str) -> tuple[int, str]:
    """Registry versions are integers; order them as numbers ("10" after "9")."""
    return (int(version), "") if version.isdigit() else (-1, version)


def numbered_report_paths(directory: str | Path, stem: str = "monitor") -> tuple[Path, Path]:
    """``(stem-N.json, stem-N.html)`` with the first N that overwrites neither an earlier
    run's report nor the demo's ``monitor.html``."""
    folder = Path(directory)
    n = 1
    while (folder / f"{stem}-{n}.json").exists() or (folder / f"{stem}-{n}.html").exists():
        n += 1
    return folder / f"{stem}-{n}.json", folder / f"{stem}-{n}.html"


def run_monitor(
    log_path: str | Path,
    reference_bins: FrozenBins | str | Path | None,
    reference_scores: Sequence[float] | np.ndarray | str | Path | None,
    p99_budget_ms: float,
    *,
    references: ReferenceSource | None = None,
    start: datetime | pd.Timestamp | str | float | None = None,
    end: datetime | pd.Timestamp | str | float | None = None,
    thresholds: AlertThresholds | Mapping[str, Any] | None = None,
    json_path: str | Path | None = None,
    html_path: str | Path | None = None,
    category_names: Mapping[str, Mapping[int, str]] | None = None,
    injected_drift: str | None = None,
    out: TextIO | None = None,
) -> int:
    """What ``mlref monitor`` runs: read the window, check it, write JSON (and HTML).

    ``references``: per model version, what its rows are judged against (a mapping, or a
    function of the versions in the window that returns one, e.g. read from the registry);
    each version's rows are judged against its own reference (:func:`monitor_versions`).
    Without it, every row is judged against ``reference_bins``/``reference_scores``: right
    only when one model version made all of them.
    ``injected_drift``: say what drift the caller injected on purpose (the demo does); the
    summary and the report then say the drift alerts are expected.
    ``category_names`` defaults to mlref's merchant categories.

    Prints the summary (to ``out``, default stdout), writes the report JSON to
    ``json_path`` and the self-contained HTML report to ``html_path`` when given, and
    returns the exit code: 0 when fine or only warnings, 2 on any critical alert.
    """
    import sys

    from mlref.monitor.log import read_log
    from mlref.monitor.report_html import write_html

    frame = read_log(log_path, start, end)
    names = CATEGORY_NAMES if category_names is None else category_names
    if references is None:
        if reference_bins is None or reference_scores is None:
            raise ValueError("pass references, or reference_bins and reference_scores")
        report = monitor(
            frame,
            reference_bins,
            reference_scores,
            p99_budget_ms,
            thresholds,
            category_names=names,
        )
        run = MonitorRun((report,), (), injected_drift)
    else:
        versions = sorted({str(v) for v in frame["model_version"].dropna()})
        resolved = references(versions) if callable(references) else references
        run = monitor_versions(
            frame,
            resolved,
            p99_budget_ms,
            thresholds,
            category_names=names,
            injected_drift=injected_drift,
        )
    stream = out if out is not None else sys.stdout
    print(run.summary(), file=stream)
    if json_path is not None:
        path = Path(json_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(run.to_json(), encoding="utf-8")
        print(f"report JSON: {path}", file=stream)
    if html_path is not None:
        written = write_html(run, html_path)
        print(f"report HTML: {written}", file=stream)
    return run.exit_code
