"""The monitoring report as a browser shows it: headless Chromium renders the one-file HTML,
its DOM holds every chart with category names and units, and the screenshot (kept in the
test's tmp_path to look at) has the charts painted, not a blank page.

Needs Debian's Chromium (``apt-get install -y chromium``); skipped with that hint when
``/usr/bin/chromium`` is absent.
"""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import numpy as np
import pytest

from mlref.monitor import run_monitor

CHROMIUM = Path("/usr/bin/chromium")
BUDGET_MS = 50.0
CUR_RGB = (0x2F, 0x6F, 0xDE)  # charts.CUR_COLOR: the current window's bars and lines

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="headless Chromium not installed: apt-get install -y chromium",
)


def _chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
    ]
    return subprocess.run(
        [str(CHROMIUM), *flags, *args], capture_output=True, text=True, timeout=180, check=True
    )


def test_report_renders_its_charts_in_chromium(synth, log_writer, reference, tmp_path) -> None:
    bins, scores, names = reference
    html_path = tmp_path / "monitor.html"
    run_monitor(
        log_writer(synth(1500, seed=41, drift=1.0)),
        bins,
        scores,
        BUDGET_MS,
        html_path=html_path,
        out=io.StringIO(),
    )
    url = html_path.resolve().as_uri()

    dom = _chromium(tmp_path / "profile-dom", "--dump-dom", url).stdout
    # one chart per feature + PSI + scores + two latency charts, all parsed as SVG
    assert dom.count("<svg") == len(names) + 4, dom.count("<svg")
    for text in (
        ">grocery</text>",  # a coded category by name
        ">Mon</text>",
        "share of predictions",
        "fraud score (log scale)",
        "latency (ms)",
        "p99 latency (ms)",
        "decision threshold 0.08",
    ):
        assert text in dom, text

    shot = tmp_path / "monitor.png"
    _chromium(tmp_path / "profile-shot", f"--screenshot={shot}", "--window-size=1280,4000", url)
    from PIL import Image

    with Image.open(shot) as image:
        pixels = np.asarray(image.convert("RGB"), dtype=np.int16)
    assert pixels.shape[:2] == (4000, 1280)
    # painted charts: thousands of pixels in the current-window colour (bars and lines),
    # spread down the page (feature grid, scores, latency), not a blank or unstyled page
    painted = np.all(np.abs(pixels - np.array(CUR_RGB)) <= 12, axis=2)
    assert painted.sum() > 20_000, painted.sum()
    rows = np.flatnonzero(painted.any(axis=1))
    assert rows.max() - rows.min() > 1500, (rows.min(), rows.max())
