"""The monitoring report as ONE self-contained HTML file: inline CSS, inline SVG, no scripts,
no server, no CDN. Open it from disk, attach it to a ticket, archive it next to the JSON.

Sections: the alerts, PSI per feature against the warning/critical lines, reference vs
current distribution of every feature (the frozen training-time bins), the score
distribution, and latency (histogram with p99 and budget, p99 per time bucket).
"""

from __future__ import annotations

import math
import re
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

from mlref.monitor import svg
from mlref.monitor.drift import MISSING_LABEL, UNSEEN_LABEL

if TYPE_CHECKING:
    from mlref.monitor.drift import Distribution, MonitorReport

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
.small{font-size:12px;color:#5b6475}
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
    """Bins to draw: the "missing"/"unseen" buckets only when some row is in them."""
    keep = [
        i
        for i, label in enumerate(dist.labels)
        if label not in (MISSING_LABEL, UNSEEN_LABEL) or dist.reference[i] or dist.current[i]
    ]
    return (
        [dist.labels[i] for i in keep],
        [dist.reference[i] for i in keep],
        [dist.current[i] for i in keep],
    )


def render_html(report: MonitorReport, title: str = "mlref monitoring report") -> str:
    """The report as an HTML string (see the module docstring)."""
    th = report.thresholds
    parts: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f'<h1>{escape(title)} <span class="status {report.status}">'
        f"{escape(report.status.upper())}</span></h1>",
        f'<p class="meta">window {escape(str(report.window_start))} .. '
        f"{escape(str(report.window_end))} &middot; {report.n_rows} predictions &middot; "
        f"model version(s) {escape(', '.join(report.model_versions) or '-')} &middot; "
        f"exit code {report.exit_code}</p>",
    ]

    parts.append('<h2 id="alerts">Alerts</h2>')
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
        parts.append('<h2 id="psi">Feature drift (PSI against training-time bins)</h2>')
        parts.append(
            '<div class="card">'
            + svg.threshold_bars(
                [f.name for f in report.features],
                [f.psi for f in report.features],
                "PSI per feature",
                warning=th.psi_warning,
                critical=th.psi_critical,
            )
            + "</div>"
        )
        parts.append('<h2 id="features">Reference vs current, per feature</h2><div class="grid">')
        for f in report.features:
            chart = svg.paired_bars(*_shown(f.distribution), f"{f.name}: reference vs current")
            parts.append(
                f'<section class="card feature" id="feature-{_slug(f.name)}">'
                f"<h3>{escape(f.name)}</h3>"
                f'<p class="small">{escape(f.kind)} &middot; PSI {_num(f.psi)} &middot; '
                f"{_sev(f.severity)}</p>{chart}</section>"
            )
        parts.append("</div>")

    if report.scores is not None:
        s = report.scores
        parts.append('<h2 id="scores">Score distribution</h2>')
        parts.append(
            f'<p class="meta">mean score {_num(s.reference_mean)} (reference) &rarr; '
            f"{_num(s.current_mean)} (current), relative shift {s.relative_shift:.1%} "
            f"(warning above {th.prediction_shift_warning:.0%}); score PSI {_num(s.psi)}</p>"
        )
        parts.append(
            '<div class="card">'
            + svg.paired_bars(
                *_shown(s.distribution),
                "score: reference vs current (reference decile bins)",
                width=760,
            )
            + "</div>"
        )

    if report.latency is not None:
        lat = report.latency
        parts.append('<h2 id="latency">Latency</h2>')
        parts.append(
            f'<p class="meta">p50 {lat.p50:.1f} ms &middot; p95 {lat.p95:.1f} ms &middot; '
            f"p99 {lat.p99:.1f} ms &middot; budget p99 &le; {lat.budget_ms:g} ms</p>"
        )
        parts.append('<div class="grid"><div class="card">')
        parts.append(
            svg.histogram(
                list(lat.hist_edges),
                list(lat.hist_counts),
                "latency histogram (ms)",
                markers=[
                    ("p99", lat.p99, svg.CUR_COLOR),
                    ("budget", lat.budget_ms, svg.CRIT_COLOR),
                ],
                x_label="latency (ms)",
            )
        )
        parts.append('</div><div class="card">')
        parts.append(
            svg.line_chart(
                list(lat.bucket_labels),
                list(lat.bucket_p99),
                "p99 latency over time (ms)",
                limit=lat.budget_ms,
            )
        )
        parts.append("</div></div>")

    parts.append(
        '<p class="small">Figures computed by mlgates (psi_drift with frozen bins, '
        "prediction_drift, latency_budget): the same code paths CI gates use.</p>"
    )
    parts.append("</body></html>")
    return "\n".join(parts)


def write_html(
    report: MonitorReport, path: str | Path, title: str = "mlref monitoring report"
) -> Path:
    """Write the report to ``path`` (parent folders created); returns the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_html(report, title), encoding="utf-8")
    return out
