"""The monitoring report's charts, drawn by matplotlib and returned as inline ``<svg>``.

Decision (issue 20): matplotlib replaces the hand-drawn SVG module (289 lines) it grew out
of. The hand-drawn charts clipped long bin labels and had no axis titles; matplotlib lays
out ticks, rotated labels and axis titles and ``bbox_inches="tight"`` keeps all of them in
the picture, and it has the log and date axes the score and latency charts need.
Measured (``render_html`` of a 1500-row drifted synthetic report, 12 charts, on the
shared 2-core machine at load average 8-12, so inflated): matplotlib 2.4-3.8 s and 259 KiB
per report against ~5 ms and 60 KiB hand-drawn. A report is written once per monitoring
run, off the serving path (matplotlib is imported inside these functions, never by the
server), so the seconds buy charts a reader can read; that is the decision.

Output is reproducible: no pyplot (no global figure state, no GUI backend; each chart is a
``Figure`` saved by the SVG backend, as under Agg), a fixed ``svg.hashsalt`` so the ids
are the same every run, no ``Date`` in the metadata, and text kept as ``<text>`` (not
glyph paths) so labels can be searched and read by a test. Each chart's ids are prefixed
with its own key, so several inline SVGs in one HTML page never share an id.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mlref.monitor.report import human_duration

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

REF_COLOR = "#7f8c9d"
CUR_COLOR = "#2f6fde"
WARN_COLOR = "#e0a100"
CRIT_COLOR = "#d64541"
OK_COLOR = "#3a9a5b"

_RC: dict[str, Any] = {
    "svg.hashsalt": "mlref-monitor",
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.size": 9.0,
    "axes.titlesize": 10.0,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e6e9ee",
    "axes.axisbelow": True,
}


@contextmanager
def _figure(width: float, height: float) -> Iterator[tuple[Figure, Axes]]:
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context(_RC):  # type: ignore[arg-type]  # keys are valid rc names
        fig = Figure(figsize=(width, height), layout="constrained")
        yield fig, fig.add_subplot()


def _svg(fig: Figure, key: str) -> str:
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context(_RC):  # type: ignore[arg-type]  # keys are valid rc names
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buf.getvalue()
    text = text[text.index("<svg") :]  # the XML prolog and DOCTYPE are not valid inside HTML
    prefix = re.sub(r"[^a-zA-Z0-9_-]+", "-", key)
    text = re.sub(r'\bid="([^"]+)"', rf'id="{prefix}-\1"', text)
    text = re.sub(r"url\(#([^)]+)\)", rf"url(#{prefix}-\1)", text)
    return re.sub(r'href="#([^"]+)"', rf'href="#{prefix}-\1"', text)


def _legend_above(ax: Axes) -> None:
    """Legend in one row above the plot, where it never covers a bar or a line."""
    ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.01), ncols=3, frameon=False, borderaxespad=0)


def _percent_axis(ax: Axes) -> None:
    from matplotlib.ticker import PercentFormatter

    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))


def psi_bars(
    key: str, names: Sequence[str], values: Sequence[float], *, warning: float, critical: float
) -> str:
    """PSI per feature (horizontal bars coloured by band) with the warning/critical lines."""
    n = max(len(names), 1)
    with _figure(7.5, 0.9 + 0.28 * n) as (fig, ax):
        colors = [
            CRIT_COLOR if v > critical else WARN_COLOR if v > warning else OK_COLOR for v in values
        ]
        shown = [v if math.isfinite(v) else 0.0 for v in values]
        ax.barh(list(names), shown, color=colors)
        ax.invert_yaxis()
        for level, color, label in (
            (warning, WARN_COLOR, "warning"),
            (critical, CRIT_COLOR, "critical"),
        ):
            line = ax.axvline(level, color=color, ls="--", lw=1.2, label=f"{label} ({level:g})")
            line.set_gid(f"threshold-{label}")
        ax.set_xlabel("PSI against the training-time bins")
        ax.set_title("Population stability index per feature")
        ax.legend(loc="lower right", frameon=False)
        return _svg(fig, key)


def distribution_bars(
    key: str,
    labels: Sequence[str],
    reference: Sequence[float],
    current: Sequence[float],
    *,
    x_label: str,
) -> str:
    """Reference vs current share per bin, side by side; long labels are slanted, not cut.
    No title: the report's heading names the feature; the legend sits above the bars."""
    import numpy as np

    x = np.arange(len(labels))
    with _figure(5.2, 3.0) as (fig, ax):
        ax.bar(x - 0.2, reference, width=0.4, color=REF_COLOR, label="reference (training)")
        ax.bar(x + 0.2, current, width=0.4, color=CUR_COLOR, label="current (this window)")
        slant = len(labels) > 6 or max((len(s) for s in labels), default=0) > 6
        ax.set_xticks(
            x, list(labels), rotation=35 if slant else 0, ha="right" if slant else "center"
        )
        _percent_axis(ax)
        ax.set_ylabel("share of predictions")
        ax.set_xlabel(x_label)
        _legend_above(ax)
        return _svg(fig, key)


def score_histogram(
    key: str,
    edges: Sequence[float],
    reference: Sequence[float],
    current: Sequence[float],
    *,
    threshold: float | None,
) -> str:
    """Score shares on log-spaced bins (scores crowd near 0) with the decision threshold."""
    from matplotlib.ticker import FuncFormatter

    with _figure(7.5, 3.2) as (fig, ax):
        ax.stairs(reference, edges, color=REF_COLOR, lw=1.6, label="reference (training)")
        ax.stairs(current, edges, color=CUR_COLOR, lw=1.6, label="current (this window)")
        ax.set_xscale("log")
        # 0.001, 0.01, 0.1, 1 rather than 10^-3: scores are read as probabilities
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
        if threshold is not None and threshold > 0:
            line = ax.axvline(
                threshold,
                color=CRIT_COLOR,
                ls="--",
                lw=1.2,
                label=f"decision threshold {threshold:.3g}",
            )
            line.set_gid("decision-threshold")
        # log shares too: a model's scores often pile on a few values (tree leaves), and
        # the tail near the threshold, where decisions change, is a few percent of rows
        ax.set_yscale("log")
        shown = [v for v in (*reference, *current) if v > 0]
        if shown:
            ax.set_ylim(bottom=min(shown) / 2, top=1.0)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v * 100:g}%"))
        ax.set_xlabel("fraud score (log scale)")
        ax.set_ylabel("share of predictions (log scale)")
        _legend_above(ax)
        return _svg(fig, key)


def latency_histogram(
    key: str, edges: Sequence[float], counts: Sequence[int], *, p99: float, budget_ms: float
) -> str:
    """Requests per latency bin, with the measured p99 and the p99 budget."""
    with _figure(5.2, 3.0) as (fig, ax):
        ax.stairs(counts, edges, fill=True, color=CUR_COLOR, alpha=0.8)
        ax.axvline(p99, color="#1d2330", ls=":", lw=1.2, label=f"p99 {p99:.1f} ms")
        ax.axvline(budget_ms, color=CRIT_COLOR, ls="--", lw=1.2, label=f"budget {budget_ms:g} ms")
        ax.set_xlabel("latency (ms)")
        ax.set_ylabel("requests")
        _legend_above(ax)
        return _svg(fig, key)


def latency_over_time(
    key: str,
    starts: Sequence[str],
    p99: Sequence[float],
    *,
    bucket_seconds: float,
    budget_ms: float,
) -> str:
    """p99 per time bucket (bucket start times on a date axis) against the budget."""
    import matplotlib.dates as mdates
    import numpy as np

    # the log's times are UTC: drop the offset (numpy datetimes have none) and say UTC
    naive = [datetime.fromisoformat(s).replace(tzinfo=None) for s in starts]
    times = np.array(naive, dtype="datetime64[s]")
    with _figure(5.2, 3.0) as (fig, ax):
        ax.plot(times, list(p99), marker="o", ms=3, color=CUR_COLOR, label="p99 per bucket")
        ax.axhline(budget_ms, color=CRIT_COLOR, ls="--", lw=1.2, label=f"budget {budget_ms:g} ms")
        locator = mdates.AutoDateLocator(minticks=3, maxticks=6)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        ax.set_xlabel(f"time (UTC), buckets of {human_duration(bucket_seconds)}")
        ax.set_ylabel("p99 latency (ms)")
        ax.set_ylim(bottom=0)
        _legend_above(ax)
        return _svg(fig, key)
