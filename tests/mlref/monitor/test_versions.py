"""A window that spans a promotion: each prediction is judged against the reference of the
model version that made it, never against the new champion's reference."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pandas as pd
import pytest

from mlref.monitor import (
    EXIT_OK,
    ModelReference,
    monitor,
    monitor_versions,
    read_log,
    render_html,
    run_monitor,
)
from mlref.monitor.drift import numbered_report_paths

BUDGET_MS = 50.0
V2_LOGIT_SHIFT = 1.5  # version 2 scores the same traffic higher (another model, not drift)


def _as_version(frame: pd.DataFrame, version: str, shift: float = 0.0) -> pd.DataFrame:
    out = frame.copy()
    logit = np.log(out["score"] / (1.0 - out["score"])) + shift
    out["score"] = 1.0 / (1.0 + np.exp(-logit))
    out["model_version"] = version
    return out


@pytest.fixture(scope="module")
def references(reference) -> dict[str, ModelReference]:  # type: ignore[no-untyped-def]
    bins, scores, _ = reference
    logit = np.log(scores / (1.0 - scores)) + V2_LOGIT_SHIFT
    return {
        "1": ModelReference(bins, scores),
        "2": ModelReference(bins, 1.0 / (1.0 + np.exp(-logit))),
    }


@pytest.fixture
def promoted_window(synth, log_writer):  # type: ignore[no-untyped-def]
    """1500 predictions by v1, then 900 by v2 after its promotion (clean traffic)."""
    before = _as_version(synth(1500, seed=21, prefix="a"), "1")
    after = _as_version(synth(900, seed=22, prefix="b"), "2", V2_LOGIT_SHIFT)
    after["ts"] += before["ts"].max() - after["ts"].min() + 1.0
    return log_writer(pd.concat([before, after], ignore_index=True))


def test_each_version_is_judged_against_its_own_reference(promoted_window, references) -> None:
    frame = read_log(promoted_window)
    run = monitor_versions(frame, references, BUDGET_MS)
    assert [(r.reference_version, r.n_rows) for r in run.reports] == [("2", 900), ("1", 1500)]
    assert run.alerts == (), run.summary()
    assert run.exit_code == EXIT_OK
    assert run.not_judged == ()
    # what the old command did: every row against the new champion's reference. v1's
    # scores then read as a drifted score distribution (the demo's PSI 1.5)
    champion_only = monitor(frame, *references["2"], BUDGET_MS)
    assert champion_only.status == "critical"
    assert "prediction_drift:psi" in {a.metric for a in champion_only.alerts}
    # the report says which versions and rows it judged
    notes = " ".join(run.notes())
    assert "v2: 900 predictions" in notes
    assert "v1: 1500 predictions" in notes
    # one section per version in the HTML, ids still unique across the page
    html = render_html(run)
    assert 'id="v2-version"' in html
    assert 'id="v1-feature-log_amount"' in html
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids))
    payload = json.loads(run.to_json())
    assert payload["judged"] == [
        {"model_version": "2", "rows": 900},
        {"model_version": "1", "rows": 1500},
    ]


def test_rows_of_a_version_without_reference_are_counted_not_judged(
    promoted_window, references, tmp_path
) -> None:
    asked: list[list[str]] = []

    def only_v1(versions):  # type: ignore[no-untyped-def]
        asked.append(list(versions))
        return {"1": references["1"]}

    out = io.StringIO()
    code = run_monitor(
        promoted_window,
        None,
        None,
        BUDGET_MS,
        references=only_v1,
        json_path=tmp_path / "m.json",
        out=out,
    )
    assert asked == [["1", "2"]]  # resolved from the versions in the window
    assert code == EXIT_OK, out.getvalue()
    assert "900 predictions of model v2 not judged" in out.getvalue()
    payload = json.loads((tmp_path / "m.json").read_text())
    assert payload["not_judged"] == [{"model_version": "2", "rows": 900}]
    assert payload["n_rows"] == 1500


def test_injected_drift_is_named_as_intended(synth, log_writer, references, tmp_path) -> None:
    drifted = _as_version(synth(1500, seed=23, drift=1.0), "1")
    injected = "amounts x2.5 and a new merchant category from the middle of the live days"
    out = io.StringIO()
    code = run_monitor(
        log_writer(drifted),
        None,
        None,
        BUDGET_MS,
        references={"1": references["1"]},
        injected_drift=injected,
        html_path=tmp_path / "m.html",
        json_path=tmp_path / "m.json",
        out=out,
    )
    assert code != EXIT_OK  # still critical: the injected drift must be caught
    assert f"drift was injected on purpose ({injected})" in out.getvalue()
    html = (tmp_path / "m.html").read_text(encoding="utf-8")
    assert 'id="injected-drift"' in html
    assert injected in html
    assert json.loads((tmp_path / "m.json").read_text())["injected_drift"] == injected
    # without the caller's word there is no such note
    plain = monitor_versions(read_log(log_writer(drifted)), {"1": references["1"]}, BUDGET_MS)
    assert "injected" not in plain.summary()
    assert 'id="injected-drift"' not in render_html(plain)


def test_report_paths_are_numbered_and_never_overwrite(tmp_path) -> None:
    (tmp_path / "monitor.html").write_text("the demo's report")
    first = numbered_report_paths(tmp_path)
    assert [p.name for p in first] == ["monitor-1.json", "monitor-1.html"]
    first[1].write_text("run 1")
    assert [p.name for p in numbered_report_paths(tmp_path)] == ["monitor-2.json", "monitor-2.html"]


def test_empty_and_unjudgeable_windows_warn_instead_of_passing(
    synth, log_writer, references
) -> None:
    frame = read_log(log_writer(_as_version(synth(300, seed=24), "1")))
    empty = monitor_versions(frame.iloc[0:0], references, BUDGET_MS)
    assert [a.metric for a in empty.alerts] == ["no_traffic"]
    assert empty.exit_code == EXIT_OK

    # rows of versions nobody holds a reference for, and rows logged without a version
    frame["model_version"] = ["7"] * 200 + [None] * 100
    blind = monitor_versions(frame, references, BUDGET_MS)
    [alert] = blind.alerts
    assert alert.metric == "no_reference"
    assert alert.severity == "warning"
    assert blind.n_rows == 0
    assert blind.not_judged == (("unknown", 100), ("7", 200))
    notes = " ".join(blind.notes())
    assert "100 predictions logged without a model version not judged" in notes
    assert "200 predictions of model v7 not judged" in notes
