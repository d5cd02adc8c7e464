"""Tiny hand-written SVG charts for the self-contained monitoring report (no JS, no CDN).

Each function takes plain numbers and returns one ``<svg>`` element as a string. Text is
escaped; sizes are fixed so the report looks the same in every browser and in a PNG export.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

REF_COLOR = "#7f8c9d"
CUR_COLOR = "#2f6fde"
WARN_COLOR = "#e0a100"
CRIT_COLOR = "#d64541"
OK_COLOR = "#3a9a5b"
FONT = 'font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="11"'


def _num(value: float) -> str:
    return f"{value:.1f}"


def _tick(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000 or abs(value) < 0.01:
        return f"{value:.2g}"
    if abs(value) >= 10:
        return f"{value:.0f}"
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _nice_step(raw: float) -> float:
    """The 1-2-2.5-5 x 10^k step at or above ``raw``."""
    if not math.isfinite(raw) or raw <= 0:
        return 0.25
    exp = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * exp + 1e-12:
            return m * exp
    return 10 * exp


def _axis(value: float, n: int = 4) -> tuple[float, float]:
    """(axis max, tick step): ``n`` or fewer nice steps covering ``value``."""
    if not math.isfinite(value) or value <= 0:
        return 1.0, 0.25
    step = _nice_step(value / n)
    return step * math.ceil(value / step - 1e-9), step


def _frame(width: int, height: int, title: str, body: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" {FONT}>'
        f"<title>{escape(title)}</title>"
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>'
        + "".join(body)
        + "</svg>"
    )


def _y_axis(
    x0: float, y0: float, plot_h: float, plot_w: float, ymax: float, step: float
) -> list[str]:
    out = []
    for i in range(round(ymax / step) + 1):
        v = step * i
        y = y0 - plot_h * v / ymax
        out.append(
            f'<line x1="{_num(x0)}" y1="{_num(y)}" x2="{_num(x0 + plot_w)}" y2="{_num(y)}" '
            'stroke="#e6e9ee" stroke-width="1"/>'
            f'<text x="{_num(x0 - 4)}" y="{_num(y + 3)}" text-anchor="end" fill="#555">'
            f"{escape(_tick(v))}</text>"
        )
    return out


def _legend(x: float, y: float, items: Sequence[tuple[str, str]]) -> list[str]:
    out = []
    for label, color in items:
        out.append(
            f'<rect x="{_num(x)}" y="{_num(y - 9)}" width="10" height="10" fill="{color}"/>'
            f'<text x="{_num(x + 14)}" y="{_num(y)}" fill="#333">{escape(label)}</text>'
        )
        x += 24 + 7 * len(label)
    return out


def paired_bars(
    labels: Sequence[str],
    reference: Sequence[float],
    current: Sequence[float],
    title: str,
    *,
    width: int = 520,
    height: int = 220,
    y_label: str = "share of rows",
) -> str:
    """Reference vs current share per bin, side by side."""
    n = max(len(labels), 1)
    left, right, top, bottom = 46, 10, 24, 58
    plot_w, plot_h = width - left - right, height - top - bottom
    y0 = top + plot_h
    ymax, ystep = _axis(max([*reference, *current, 0.0]))
    slot = plot_w / n
    bar = max(slot * 0.38, 1.0)
    body = _y_axis(left, y0, plot_h, plot_w, ymax, ystep)
    for i, label in enumerate(labels):
        x = left + i * slot + slot * 0.1
        for j, (values, color, name) in enumerate(
            ((reference, REF_COLOR, "reference"), (current, CUR_COLOR, "current"))
        ):
            v = float(values[i]) if i < len(values) else 0.0
            h = plot_h * v / ymax
            body.append(
                f'<rect class="bar {name}" x="{_num(x + j * bar)}" y="{_num(y0 - h)}" '
                f'width="{_num(bar)}" height="{_num(h)}" fill="{color}">'
                f"<title>{escape(label)} {name}: {v:.4f}</title></rect>"
            )
        lx = left + (i + 0.5) * slot
        body.append(
            f'<text x="{_num(lx)}" y="{_num(y0 + 12)}" text-anchor="end" fill="#555" '
            f'transform="rotate(-35 {_num(lx)} {_num(y0 + 12)})">{escape(label)}</text>'
        )
    body.append(
        f'<text x="10" y="{_num(top + plot_h / 2)}" fill="#555" '
        f'transform="rotate(-90 10 {_num(top + plot_h / 2)})" text-anchor="middle">'
        f"{escape(y_label)}</text>"
    )
    body += _legend(left, 14, [("reference", REF_COLOR), ("current", CUR_COLOR)])
    return _frame(width, height, title, body)


def threshold_bars(
    labels: Sequence[str],
    values: Sequence[float],
    title: str,
    *,
    warning: float,
    critical: float,
    width: int = 620,
    row_h: int = 22,
) -> str:
    """Horizontal bars (e.g. PSI per feature) with warning/critical lines, coloured by band."""
    left, right, top, bottom = 170, 60, 26, 26
    height = top + bottom + row_h * max(len(labels), 1)
    plot_w = width - left - right
    finite = [v for v in values if math.isfinite(v)]
    xmax, _ = _axis(max([*finite, critical * 1.25, 0.0]))
    body: list[str] = []
    for i, (label, v) in enumerate(zip(labels, values, strict=True)):
        y = top + i * row_h
        shown = min(v, xmax) if math.isfinite(v) else xmax
        color = CRIT_COLOR if v > critical else WARN_COLOR if v > warning else OK_COLOR
        w = plot_w * shown / xmax
        body.append(
            f'<text x="{left - 6}" y="{_num(y + row_h * 0.65)}" text-anchor="end" '
            f'fill="#333">{escape(label)}</text>'
            f'<rect class="bar" x="{left}" y="{_num(y + 3)}" width="{_num(w)}" '
            f'height="{row_h - 6}" fill="{color}"><title>{escape(label)}: {v:.4f}</title></rect>'
            f'<text x="{_num(left + w + 4)}" y="{_num(y + row_h * 0.65)}" fill="#333">'
            f"{escape(_tick(v) if math.isfinite(v) else 'inf')}</text>"
        )
    y_end = top + row_h * max(len(labels), 1)
    lines = ((warning, WARN_COLOR, "warning", "end"), (critical, CRIT_COLOR, "critical", "start"))
    for value, color, name, anchor in lines:
        x = left + plot_w * value / xmax
        dx = -3 if anchor == "end" else 3  # labels lean away from each other
        body.append(
            f'<line class="threshold {name}" x1="{_num(x)}" y1="{top - 4}" x2="{_num(x)}" '
            f'y2="{_num(y_end + 2)}" stroke="{color}" stroke-width="1.5" stroke-dasharray="4 3"/>'
            f'<text x="{_num(x + dx)}" y="{_num(y_end + 16)}" text-anchor="{anchor}" '
            f'fill="{color}">{escape(name)} {escape(_tick(value))}</text>'
        )
    body += _legend(left, 14, [("ok", OK_COLOR), ("warning", WARN_COLOR), ("critical", CRIT_COLOR)])
    return _frame(width, height, title, body)


def histogram(
    edges: Sequence[float],
    counts: Sequence[float],
    title: str,
    *,
    markers: Sequence[tuple[str, float, str]] = (),
    width: int = 520,
    height: int = 220,
    x_label: str = "",
) -> str:
    """A histogram on a linear x axis with labelled vertical marker lines (p99, budget)."""
    left, right, top, bottom = 46, 14, 24, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    y0 = top + plot_h
    lo = float(edges[0]) if len(edges) else 0.0
    hi = max([float(edges[-1]) if len(edges) else 1.0, *[m[1] for m in markers]])
    xmax, xstep = _axis(hi - lo if hi > lo else 1.0)
    span = xmax
    ymax, ystep = _axis(max([*map(float, counts), 0.0]))

    def sx(v: float) -> float:
        return left + plot_w * (v - lo) / span

    body = _y_axis(left, y0, plot_h, plot_w, ymax, ystep)
    for a, b, c in zip(edges[:-1], edges[1:], counts, strict=True):
        h = plot_h * float(c) / ymax
        body.append(
            f'<rect class="bar" x="{_num(sx(a))}" y="{_num(y0 - h)}" '
            f'width="{_num(max(sx(b) - sx(a) - 1, 0.5))}" height="{_num(h)}" fill="{CUR_COLOR}">'
            f"<title>{_tick(a)}-{_tick(b)}: {c:g}</title></rect>"
        )
    for i in range(round(span / xstep) + 1):
        v = lo + xstep * i
        body.append(
            f'<text x="{_num(sx(v))}" y="{_num(y0 + 14)}" text-anchor="middle" fill="#555">'
            f"{escape(_tick(v))}</text>"
        )
    for k, (name, value, color) in enumerate(markers):
        x = sx(value)
        body.append(
            f'<line class="marker" x1="{_num(x)}" y1="{top}" x2="{_num(x)}" y2="{_num(y0)}" '
            f'stroke="{color}" stroke-width="1.5" stroke-dasharray="4 3"/>'
            f'<text x="{_num(x + 3)}" y="{top + 10 + 12 * k}" fill="{color}">'
            f"{escape(name)} {escape(_tick(value))}</text>"
        )
    if x_label:
        body.append(
            f'<text x="{_num(left + plot_w / 2)}" y="{height - 6}" text-anchor="middle" '
            f'fill="#555">{escape(x_label)}</text>'
        )
    return _frame(width, height, title, body)


def line_chart(
    x_labels: Sequence[str],
    values: Sequence[float],
    title: str,
    *,
    limit: float | None = None,
    limit_label: str = "budget",
    width: int = 520,
    height: int = 220,
) -> str:
    """A line over ordered buckets (e.g. p99 latency per time bucket) with a limit line."""
    left, right, top, bottom = 46, 14, 24, 56
    plot_w, plot_h = width - left - right, height - top - bottom
    y0 = top + plot_h
    finite = [v for v in values if math.isfinite(v)]
    ymax, ystep = _axis(max([*finite, limit or 0.0, 0.0]) * 1.05)
    n = len(values)

    def sx(i: int) -> float:
        return left + (plot_w * (i + 0.5) / n if n else 0)

    def sy(v: float) -> float:
        return y0 - plot_h * v / ymax

    body = _y_axis(left, y0, plot_h, plot_w, ymax, ystep)
    pts = [(sx(i), sy(v)) for i, v in enumerate(values) if math.isfinite(v)]
    if pts:
        path = " ".join(f"{_num(x)},{_num(y)}" for x, y in pts)
        body.append(
            f'<polyline fill="none" stroke="{CUR_COLOR}" stroke-width="2" points="{path}"/>'
        )
    for i, v in enumerate(values):
        if not math.isfinite(v):
            continue
        color = CRIT_COLOR if limit is not None and v > limit else CUR_COLOR
        body.append(
            f'<circle class="point" cx="{_num(sx(i))}" cy="{_num(sy(v))}" r="3" fill="{color}">'
            f"<title>{escape(x_labels[i])}: {v:.2f}</title></circle>"
        )
    step = max(1, math.ceil(n / 8))
    for i in range(0, n, step):
        x = sx(i)
        body.append(
            f'<text x="{_num(x)}" y="{_num(y0 + 12)}" text-anchor="end" fill="#555" '
            f'transform="rotate(-30 {_num(x)} {_num(y0 + 12)})">{escape(x_labels[i])}</text>'
        )
    if limit is not None:
        y = sy(limit)
        body.append(
            f'<line class="threshold" x1="{left}" y1="{_num(y)}" x2="{_num(left + plot_w)}" '
            f'y2="{_num(y)}" stroke="{CRIT_COLOR}" stroke-width="1.5" stroke-dasharray="4 3"/>'
            f'<text x="{_num(left + plot_w - 2)}" y="{_num(y - 4)}" text-anchor="end" '
            f'fill="{CRIT_COLOR}">{escape(limit_label)} {escape(_tick(limit))}</text>'
        )
    return _frame(width, height, title, body)
