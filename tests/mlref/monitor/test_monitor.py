from __future__ import annotations

import io
import json
import re
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest

from mlref.monitor import (
    EXIT_CRITICAL,
    EXIT_OK,
    AlertThresholds,
    monitor,
    read_log,
    render_html,
    run_monitor,
    write_html,
)

BUDGET_MS = 50.0


def _check(frame: pd.DataFrame, reference, **kwargs):  # type: ignore[no-untyped-def]
    bins, scores, _ = reference
    return monitor(frame, bins, scores, BUDGET_MS, **kwargs)


def test_read_log_expands_features_and_filters_the_window(synth, log_writer, reference) -> None:
    raw = synth(500, seed=1)
    path = log_writer(raw)
    frame = read_log(path)
    names = reference[2]
    assert frame.attrs["feature_names"] == names
    assert list(frame.columns[-len(names) :]) == names
    first = json.loads(raw["features"].iloc[0])
    assert frame.loc[0, names].tolist() == pytest.approx([first[n] for n in names])
    assert str(frame["ts"].dtype) == "datetime64[ns, UTC]"
    assert frame["decision"].dtype == bool
    assert frame["shadow_score"].isna().all()

    # unix seconds, start inclusive, end exclusive
    window = read_log(path, start=raw["ts"].iloc[100], end=raw["ts"].iloc[200])
    assert window["request_id"].tolist() == raw["request_id"].iloc[100:200].tolist()
    # aware datetimes / ISO strings between two requests
    mid = pd.Timestamp((raw["ts"].iloc[299] + raw["ts"].iloc[300]) / 2, unit="s", tz="UTC").floor(
        "us"
    )
    assert len(read_log(path, start=mid.isoformat())) == 200
    assert len(read_log(path, end=mid.to_pydatetime())) == 300
    with pytest.raises(ValueError, match="no timezone"):
        read_log(path, start="2026-03-01T01:00:00")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_log(path.with_name("missing.sqlite"))


def test_clean_window_raises_no_alerts(synth, log_writer, reference) -> None:
    report = _check(read_log(log_writer(synth(2000, seed=2))), reference)
    assert report.alerts == (), report.summary()
    assert report.status == "ok"
    assert report.exit_code == EXIT_OK
    assert {g.name for g in report.gates} >= {"psi_drift", "prediction_drift"}
    assert all(f.psi < 0.1 for f in report.features)


def test_drifted_window_raises_critical_feature_and_prediction_alerts(
    synth, log_writer, reference
) -> None:
    report = _check(read_log(log_writer(synth(2000, seed=3, drift=1.0))), reference)
    metrics = {a.metric: a for a in report.alerts}
    for name in ("log_amount", "amount_vs_user_avg", "merchant_category_code"):
        alert = metrics[f"feature_drift:{name}"]
        assert alert.severity == "critical"
        assert alert.threshold == 0.2
        assert alert.current > 0.2
    # features the drift did not touch stay quiet
    assert "feature_drift:hour_of_day" not in metrics
    assert "feature_drift:txn_velocity_24h" not in metrics
    assert metrics["prediction_drift:mean_shift"].current > 0.15
    assert report.status == "critical"
    assert report.exit_code == EXIT_CRITICAL
    payload = json.loads(report.to_json())
    assert payload["status"] == "critical"
    assert {"metric", "current", "threshold", "severity"} <= set(payload["alerts"][0])


def _hand_psi(ref_values: np.ndarray, cur_values: np.ndarray, edges: list[float]) -> float:
    cuts = [-np.inf, *edges, np.inf]
    r = pd.Series(pd.cut(ref_values, cuts, right=False)).value_counts(sort=False).to_numpy(float)
    c = pd.Series(pd.cut(cur_values, cuts, right=False)).value_counts(sort=False).to_numpy(float)
    r, c = np.maximum(r / r.sum(), 1e-4), np.maximum(c / c.sum(), 1e-4)
    return float(np.sum((c - r) * np.log(c / r)))


def test_feature_psi_matches_a_hand_computation(synth, log_writer, reference) -> None:
    bins = reference[0]
    frame = read_log(log_writer(synth(2000, seed=4, drift=0.5)))
    report = _check(frame, reference)
    ref_raw = pd.DataFrame([json.loads(s) for s in synth(3000, seed=100)["features"]])
    for f in report.features:
        edges = list(bins.features[f.name].edges)
        want = _hand_psi(ref_raw[f.name].to_numpy(), frame[f.name].to_numpy(), edges)
        assert f.psi == pytest.approx(want, rel=1e-9, abs=1e-12), f.name
        assert sum(f.distribution.current) == pytest.approx(1.0)


def test_moderate_drift_warns_without_failing_the_run(synth, log_writer, reference) -> None:
    report = _check(
        read_log(log_writer(synth(2000, seed=5, drift=0.12))),
        reference,
        thresholds={
            "psi_warning": 0.02,
            "psi_critical": 0.5,
            "prediction_shift_warning": 5.0,
            "prediction_psi_warning": 0.5,
            "prediction_psi_critical": 0.9,
        },
    )
    severities = {a.metric: a.severity for a in report.alerts}
    assert severities.get("feature_drift:log_amount") == "warning", report.summary()
    assert set(severities.values()) == {"warning"}
    assert report.exit_code == EXIT_OK


def test_latency_over_budget_is_critical(synth, log_writer, reference) -> None:
    frame = read_log(log_writer(synth(2000, seed=6, slow=True)))
    report = _check(frame, reference)
    [alert] = report.alerts
    assert alert.metric == "latency_p99"
    assert alert.severity == "critical"
    assert alert.current == pytest.approx(np.percentile(frame["latency_ms"], 99))
    assert alert.threshold == BUDGET_MS
    # the evidence a page needs: the lower bound is over the budget too (not a "CI" whose
    # upper end may be unbounded)
    assert "95% lower bound" in alert.message, alert.message
    assert "inf" not in alert.message, alert.message
    assert report.exit_code == EXIT_CRITICAL
    assert sum(report.latency.bucket_rows) == len(frame)


def test_small_and_empty_windows_warn_instead_of_judging_drift(
    synth, log_writer, reference
) -> None:
    small = _check(read_log(log_writer(synth(50, seed=7, drift=1.0))), reference)
    assert [a.metric for a in small.alerts] == ["insufficient_data"]
    empty = _check(read_log(log_writer(synth(50, seed=8)), start=1e10), reference)
    assert [a.metric for a in empty.alerts] == ["no_traffic"]
    assert empty.exit_code == EXIT_OK


def test_thresholds_are_validated_by_name() -> None:
    with pytest.raises(ValueError, match="unknown alert threshold"):
        AlertThresholds.from_mapping({"psi_warn": 0.1})
    with pytest.raises(ValueError, match="psi_warning <= psi_critical"):
        AlertThresholds(psi_warning=0.3, psi_critical=0.2)


def test_run_monitor_exit_code_json_and_html(synth, log_writer, reference, tmp_path) -> None:
    bins, scores, _names = reference
    bins_path = bins.save(tmp_path / "bins.json")
    scores_path = tmp_path / "ref_scores.npy"
    np.save(scores_path, scores)

    out = io.StringIO()
    clean = log_writer(synth(1500, seed=9))
    assert run_monitor(clean, bins_path, scores_path, BUDGET_MS, out=out) == 0
    assert "OK" in out.getvalue()

    drifted = log_writer(synth(1500, seed=10, drift=1.0))
    code = run_monitor(
        drifted,
        bins_path,
        scores_path,
        BUDGET_MS,
        json_path=tmp_path / "r" / "monitor.json",
        html_path=tmp_path / "r" / "monitor.html",
        out=io.StringIO(),
    )
    assert code == EXIT_CRITICAL
    payload = json.loads((tmp_path / "r" / "monitor.json").read_text())
    assert any(a["severity"] == "critical" for a in payload["alerts"])
    assert (tmp_path / "r" / "monitor.html").is_file()


def test_html_report_is_one_self_contained_file(synth, log_writer, reference, tmp_path) -> None:
    report = _check(read_log(log_writer(synth(1500, seed=11, drift=1.0))), reference)
    path = write_html(report, tmp_path / "html" / "report.html")
    html = path.read_text(encoding="utf-8")
    assert list(path.parent.iterdir()) == [path]  # nothing written beside it
    assert html.startswith("<!DOCTYPE html>")
    # nothing fetched from anywhere: no scripts, no external links or images
    assert "<script" not in html
    assert not re.search(r'(src|href)\s*=\s*["\']?(https?:)?//', html)
    assert "<link" not in html
    # every feature has its own section with a chart
    for name in reference[2]:
        section = re.search(
            rf'<section class="card feature" id="feature-{name}">(.*?)</section>', html, re.S
        )
        assert section, name
        assert "<svg" in section.group(1)
    for anchor in ('id="psi"', 'id="scores"', 'id="latency"', "critical"):
        assert anchor in html
    # each inline SVG is well-formed XML
    svgs = re.findall(r"<svg.*?</svg>", html, re.S)
    assert len(svgs) == len(reference[2]) + 4  # features + PSI bars + scores + 2 latency
    for doc in svgs:
        ET.fromstring(doc)
    # the PSI chart draws the warning and critical lines; the score chart the threshold
    assert 'id="psi-threshold-warning"' in html
    assert 'id="psi-threshold-critical"' in html
    assert 'id="scores-decision-threshold"' in html
    # several matplotlib SVGs inline in one page: no id may repeat (clip paths would mix)
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})[:5]
    # reproducible: the same report renders to the same bytes (no dates, no random ids)
    assert render_html(report) == html


def test_a_nan_score_or_input_pages_through_numeric_stability(synth, log_writer, reference) -> None:
    """monitor-5: one NaN score, or one NaN in an input the reference never had missing, is
    a critical alert naming it; the clean window raised none (above)."""
    frame = read_log(log_writer(synth(2000, seed=2)))
    clean = _check(frame, reference)
    assert "numeric_stability" in {g.name for g in clean.gates}

    nan_score = frame.copy()
    nan_score.loc[10, "score"] = np.nan
    report = _check(nan_score, reference)
    [alert] = [a for a in report.alerts if a.metric == "numeric_stability"]
    assert alert.severity == "critical"
    assert report.exit_code == EXIT_CRITICAL

    nan_input = frame.copy()
    nan_input.loc[10, "txn_velocity_24h"] = np.nan
    [alert] = [a for a in _check(nan_input, reference).alerts if a.metric == "numeric_stability"]
    assert alert.severity == "critical"
    assert "txn_velocity_24h" in alert.message, alert.message


def test_saturated_scores_warn_through_numeric_stability(synth, log_writer, reference) -> None:
    frame = read_log(log_writer(synth(2000, seed=2)))
    frame.loc[: len(frame) // 10, "score"] = 0.0  # 10% of scores pinned at 0
    alerts = [a for a in _check(frame, reference).alerts if a.metric == "numeric_stability"]
    assert [a.severity for a in alerts] == ["warning"]
    with pytest.raises(ValueError, match="max_saturated_share"):
        AlertThresholds(max_saturated_share=5.0)


def test_batch_call_rows_are_not_held_to_the_single_request_budget(
    synth, log_writer, reference
) -> None:
    # a log written before batch_size existed reads as single requests
    fast = read_log(log_writer(synth(2000, seed=2)))
    assert (fast["batch_size"] == 1).all()
    slow = read_log(log_writer(synth(600, seed=6, slow=True, prefix="b")))
    slow["batch_size"] = 200  # the rows of three /predict/batch calls: the calls' latency
    frame = pd.concat([fast, slow], ignore_index=True).sort_values("ts", ignore_index=True)
    frame.attrs = fast.attrs
    report = _check(frame, reference)
    assert "latency_p99" not in {a.metric for a in report.alerts}, report.summary()
    assert any("600 rows came in /predict/batch calls" in n for n in report.notes), report.notes
    assert sum(report.latency.bucket_rows) == 2000
    # the same rows answered one request each are judged, and page: the rule is the call's
    # size, not the latency
    frame["batch_size"] = 1
    assert "latency_p99" in {a.metric for a in _check(frame, reference).alerts}
