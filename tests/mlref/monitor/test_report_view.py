"""What a person reading the monitoring report sees (issue 19): categories by name, scores
on a scale that shows where they are, the decision threshold, time buckets and units a
reader can tell apart, the window in seconds, and what a critical status means.

Written against ``run_monitor``'s files (JSON and HTML), the interface a reader gets."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest

from mlref.monitor import run_monitor

BUDGET_MS = 50.0


@pytest.fixture
def written(synth, log_writer, reference, tmp_path):  # type: ignore[no-untyped-def]
    """``written(frame) -> (payload, html)``: run_monitor's JSON and HTML for a log frame."""
    bins, scores, _ = reference
    bins_path = bins.save(tmp_path / "bins.json")
    scores_path = tmp_path / "ref_scores.npy"
    np.save(scores_path, scores)

    def _run(frame):  # type: ignore[no-untyped-def]
        json_path, html_path = tmp_path / "m.json", tmp_path / "m.html"
        run_monitor(
            log_writer(frame),
            bins_path,
            scores_path,
            BUDGET_MS,
            json_path=json_path,
            html_path=html_path,
            out=io.StringIO(),
        )
        payload = json.loads(json_path.read_text())
        # one model version in these logs: its report is the run's first
        return payload.get("reports", [payload])[0], html_path.read_text(encoding="utf-8")

    return _run


def _feature(payload, name):  # type: ignore[no-untyped-def]
    return next(f for f in payload["features"] if f["name"] == name)


def test_categories_and_weekdays_are_named_not_binned_as_numbers(synth, written) -> None:
    payload, html = written(synth(1500, seed=31))
    labels = _feature(payload, "merchant_category_code")["distribution"]["labels"]
    assert {"grocery", "travel", "health"} <= set(labels), labels
    assert not any(re.fullmatch(r"\d+\N{EN DASH}\d+", label) for label in labels), labels
    assert {"Mon", "Sun"} <= set(_feature(payload, "day_of_week")["distribution"]["labels"])
    # whole-valued counts read as counts: 0, 1, 2 (not 0-1, 1-2)
    velocity = _feature(payload, "txn_velocity_24h")["distribution"]["labels"]
    assert {"0", "1", "2"} <= set(velocity), velocity
    # and the chart shows them as text (not glyph outlines a reader cannot search)
    assert ">grocery</text>" in html
    assert ">Mon</text>" in html


def test_score_chart_uses_a_scale_that_shows_where_scores_are(synth, written, reference) -> None:
    payload, html = written(synth(1500, seed=32))
    scores = payload["scores"]
    assert scores["threshold"] == pytest.approx(0.08)  # the threshold the server logged
    edges = np.asarray(scores["histogram"]["edges"])
    reference = np.asarray(scores["histogram"]["reference"])
    # on a linear axis of ten bins most of the reference mass sits in the first bar; on
    # the report's log bins no bar holds more than a fifth of it
    linear, _ = np.histogram(reference[1], bins=10, range=(0.0, 1.0))
    assert linear[0] / linear.sum() > 0.7
    assert float(np.ptp(np.log10(edges[[0, -1]]))) >= 2  # spans decades, up to 1
    assert edges[-1] == pytest.approx(1.0)
    assert reference.max() < 0.2, reference
    assert reference.sum() == pytest.approx(1.0)
    assert "fraud score (log scale)" in html
    assert "share of predictions (log scale)" in html
    assert 'id="scores-decision-threshold"' in html
    assert "decision threshold 0.08" in html


def test_latency_over_time_tells_its_buckets_apart_and_has_units(synth, written) -> None:
    # a short window (the demo serves 400 requests in about a minute)
    payload, html = written(synth(1500, seed=33, hours=90 / 3600))
    buckets = [b["bucket"] for b in payload["latency"]["over_time"]]
    assert len(buckets) > 1
    assert len(set(buckets)) == len(buckets), buckets
    assert "p99 latency (ms)" in html
    assert "latency (ms)" in html
    assert "time (UTC), buckets of" in html


def test_window_and_status_read_in_a_readers_words(synth, written) -> None:
    payload, html = written(synth(1500, seed=34, drift=1.0))
    assert payload["status"] == "critical"
    # the log's nanosecond ISO times are shown to the second, with the span
    assert not re.search(r"\d{2}:\d{2}:\d{2}\.\d+", html), "window shown below the second"
    assert re.search(
        r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} to \d{2}:\d{2}:\d{2} UTC \(5 h 59 min\)", html
    )
    assert "exit code" not in html
    assert "treats as a failure" in html


def test_report_is_reproducible(synth, written) -> None:
    frame = synth(1500, seed=35)
    _, first = written(frame)
    _, again = written(frame)
    assert first == again
    assert "<dc:date>" not in first
