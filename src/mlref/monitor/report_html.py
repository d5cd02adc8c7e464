"""The monitoring report as ONE self-contained HTML file: inline CSS, inline SVG, no scripts,
no server, no CDN. Open it from disk, attach it to a ticket, archive it next to the JSON.

Sections: the alerts, then per judged model version: PSI per feature against the
warning/critical lines, reference vs current distribution of every feature (the frozen
training-time bins, categories by name), the score distribution (log scale, decision
threshold marked), and latency (histogram with p99 and budget, p99 per time bucket).
Charts come from :mod:`mlref.monitor.charts` (matplotlib, deterministic SVG).
"""

from __future__ import annotations

import math
import re
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

from mlref.monitor import charts
from mlref.monitor.report import (
    MISSING_LABEL,
    UNSEEN_LABEL,
    MonitorReport,
    MonitorRun,
    human_window,
)

if TYPE_CHECKING:
    from mlref.monitor.report import Distribution

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;max-width:1120px;
color:#1d2330;background:#f6f7f9}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #d9dde3;
padding-bottom:4px} h3{font-size:14px;margin:0 0 6px}
.meta{color:#5b6475;font-size:13px}
.status{display:inline-block;padding:2px 10px;border-radius:10px;color:#fff;font-weight:600}
.status.ok{background:#3a9a5b}.status.warning{background:#e0a100}.status.critical{background:#d64541}
table{border-collapse:collapse;font-size:13px;background:#fff}
td,th{border:1px solid #d9dde3;padding:4px 8px;text-align:left} th{background:#eef0f3}
.sev-warning{color:#a87800;font-weight:600}.sev-critical{color:#c0392b;font-weight:600}
.grid{display:flex;flex-wrap:wrap;gap:14px}
.card{background:#fff;border:1px solid #d9dde3;border-radius:6px;padding:10px 12px}
.small{font-size:12px;color:#5b6475}\n.injected{background:#eef4ff;border:1px solid #b8cdf5;border-radius:6px;padding:8px 12px}\nsvg{max-width:100%;height:auto}
"""


def _sev(severity: str | None) -> str:
    if not severity:
        return '<span class="small">ok</span>'
    return f'<span class="sev-{escape(severity)}">{escape(severity)}</span>'


def _slug(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_-]+", "-", name).strip("-") or "feature"


def _num(v: float, digits: int = 4) -> str:
    return f"{v:.{digits}g}" if math.isfinite(v) else escape(str(v))


def _shown(dist: Distribution) -> tuple[list[str], list[float], list[float]]:
    """Bins to draw: the "missing"/"unseen" buckets and the open-ended first and last
    bins only when some row is in them (an empty "<0" bar is noise to a reader)."""
    optional = {0, len(dist.labels) - 2}  # the layout ends with "missing"
    keep = [
        i
        for i, label in enumerate(dist.labels)
        if (label not in (MISSING_LABEL, UNSEEN_LABEL) and i not in optional)
        or dist.reference[i]
        or dist.current[i]
    ]
    return (
        [dist.labels[i] for i in keep],
        [dist.reference[i] for i in keep],
        [dist.current[i] for i in keep],
    )


_STATUS_MEANING = {
    "ok": "no alert: <code>mlref monitor</code> exits 0",
    "warning": "warnings only: worth a look; <code>mlref monitor</code> still exits 0",
    "critical": "at least one critical alert: <code>mlref monitor</code> exits with status 2, "
    "which a scheduler or CI job treats as a failure (someone should look now)",
}


def render_html(report: MonitorReport | MonitorRun, title: str = "mlref monitoring report") -> str:
    """The report as an HTML string (see the module docstring)."""
    run = report if isinstance(report, MonitorRun) else MonitorRun((report,))
    parts: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f'<h1>{escape(title)} <span class="status {run.status}">'
        f"{escape(run.status.upper())}</span></h1>",
        f'<p class="meta">{_STATUS_MEANING[run.status]}</p>',
    ]
    if run.injected_drift:
        parts.append(
            f'<p class="injected" id="injected-drift"><strong>Drift injected on purpose:</strong> '
            f"{escape(run.injected_drift)}. The drift alerts below are expected: they show "
            "that monitoring catches it.</p>"
        )
    for note in run.notes():
        if not (run.injected_drift and note.startswith("drift was injected")):
            parts.append(f'<p class="small">{escape(note)}</p>')
    many = len(run.reports) > 1
    for report in run.reports:
        parts += _version_section(report, prefix=f"v{report.reference_version}-" if many else "")
    parts.append(
        '<p class="small">Figures computed by mlgates (psi_drift with frozen bins, '
        "prediction_drift, latency_budget): the same code paths CI gates use.</p>"
    )
    parts.append("</body></html>")
    return "\n".join(parts)


def _version_section(report: MonitorReport, prefix: str) -> list[str]:
    th = report.thresholds
    parts: list[str] = []
    if report.reference_version is not None:
        parts.append(
            f'<h2 id="{prefix}version">Model version {escape(report.reference_version)} '
            f'<span class="status {report.status}">{escape(report.status.upper())}</span></h2>'
        )
        judged = f"judged against version {escape(report.reference_version)}'s training reference"
    else:
        judged = (
            "model version(s) "
            + escape(", ".join(report.model_versions) or "-")
            + ", all judged against one reference"
        )
    parts.append(
        f'<p class="meta">{escape(human_window(report.window_start, report.window_end))} '
        f"&middot; {report.n_rows} predictions &middot; {judged}</p>"
    )

    parts.append(f'<h2 id="{prefix}alerts">Alerts</h2>')
    if report.alerts:
        parts.append(
            "<table><tr><th>severity</th><th>metric</th><th>current</th>"
            "<th>threshold</th><th>detail</th></tr>"
        )
        for a in report.alerts:
            parts.append(
                f"<tr><td>{_sev(a.severity)}</td><td>{escape(a.metric)}</td>"
                f"<td>{_num(a.current)}</td><td>{_num(a.threshold)}</td>"
                f"<td>{escape(a.message)}</td></tr>"
            )
        parts.append("</table>")
    else:
        parts.append("<p>No alerts.</p>")
    for note in report.notes:
        parts.append(f'<p class="small">note: {escape(note)}</p>')

    if report.features:
        parts.append(f'<h2 id="{prefix}psi">Feature drift (PSI against training-time bins)</h2>')
        parts.append(
            '<div class="card">'
            + charts.psi_bars(
                f"{prefix}psi",
                [f.name for f in report.features],
                [f.psi for f in report.features],
                warning=th.psi_warning,
                critical=th.psi_critical,
            )
            + "</div>"
        )
        parts.append(
            f'<h2 id="{prefix}features">Reference vs current, per feature</h2><div class="grid">'
        )
        for f in report.features:
            slug = f"{prefix}feature-{_slug(f.name)}"
            chart = charts.distribution_bars(
                slug,
                *_shown(f.distribution),
                x_label="category" if f.kind == "categorical" or _named(f.distribution) else f.name,
            )
            parts.append(
                f'<section class="card feature" id="{slug}">'
                f"<h3>{escape(f.name)}</h3>"
                f'<p class="small">{escape(f.kind)} &middot; PSI {_num(f.psi)} &middot; '
                f"{_sev(f.severity)}</p>{chart}</section>"
            )
        parts.append("</div>")

    if report.scores is not None:
        s = report.scores
        parts.append(f'<h2 id="{prefix}scores">Score distribution</h2>')
        threshold = f"; decision threshold {s.threshold:.3g}" if s.threshold is not None else ""
        parts.append(
            f'<p class="meta">mean score {_num(s.reference_mean)} (reference) &rarr; '
            f"{_num(s.current_mean)} (current), relative shift {s.relative_shift:.1%} "
            f"(warning above {th.prediction_shift_warning:.0%}); score PSI {_num(s.psi)} "
            f"(on the reference's decile bins){escape(threshold)}</p>"
        )
        parts.append(
            '<div class="card">'
            + charts.score_histogram(
                f"{prefix}scores",
                s.hist_edges,
                s.reference_hist,
                s.current_hist,
                threshold=s.threshold,
            )
            + "</div>"
        )

    if report.latency is not None:
        lat = report.latency
        parts.append(f'<h2 id="{prefix}latency">Latency</h2>')
        parts.append(
            f'<p class="meta">p50 {lat.p50:.1f} ms &middot; p95 {lat.p95:.1f} ms &middot; '
            f"p99 {lat.p99:.1f} ms &middot; budget p99 &le; {lat.budget_ms:g} ms</p>"
        )
        # two charts of one summary: the calls look alike, the pictures do not
        cards = {
            "Latency histogram": charts.latency_histogram(
                f"{prefix}latency-hist",
                lat.hist_edges,
                lat.hist_counts,
                p99=lat.p99,
                budget_ms=lat.budget_ms,
            ),
            "p99 latency over time": charts.latency_over_time(
                f"{prefix}latency-time",
                lat.bucket_labels,
                lat.bucket_p99,
                bucket_seconds=lat.bucket_seconds,
                budget_ms=lat.budget_ms,
            ),
        }
        parts.append(
            '<div class="grid">'
            + "".join(f'<div class="card"><h3>{t}</h3>{svg}</div>' for t, svg in cards.items())
            + "</div>"
        )
    return parts


def _named(dist: Distribution) -> bool:
    """A coded feature whose bins carry category names rather than numbers."""
    return any(
        label[:1].isalpha() and label not in (MISSING_LABEL, UNSEEN_LABEL) for label in dist.labels
    )


def write_html(
    report: MonitorReport | MonitorRun, path: str | Path, title: str = "mlref monitoring report"
) -> Path:
    """Write the report to ``path`` (parent folders created); returns the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_html(report, title), encoding="utf-8")
    return out
