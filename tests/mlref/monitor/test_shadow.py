from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from mlgates.result import GateInputError
from mlref.monitor import read_log
from mlref.shadow import shadow_report


def _with_labels(raw: pd.DataFrame, seed: int, *, shadow: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Labels drawn from the champion's score; the shadow is close to it or random."""
    rng = np.random.default_rng(seed)
    champ = raw["score"].to_numpy()
    y = (rng.random(len(raw)) < np.clip(champ * 3.0, 0, 1)).astype(int)
    out = raw.copy()
    if shadow == "close":
        logit = np.log(champ / (1 - champ)) + rng.normal(0, 0.05, len(raw))
        out["shadow_score"] = 1 / (1 + np.exp(-logit))
    elif shadow == "random":
        out["shadow_score"] = rng.random(len(raw))
    out["shadow_version"] = "4"
    labels = pd.DataFrame(
        {
            "transaction_id": raw["transaction_id"],
            "is_fraud": y,
            "label_timestamp": pd.to_datetime(raw["ts"], unit="s", utc=True)
            + pd.Timedelta(minutes=5),
        }
    )
    return out, labels


def _after(frame: pd.DataFrame) -> pd.Timestamp:
    return frame["ts"].max() + pd.Timedelta(hours=1)


def _hand_psi(ref: np.ndarray, cur: np.ndarray, n_bins: int = 10) -> float:
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, n_bins + 1)[1:-1]))
    cuts = [-np.inf, *edges, np.inf]
    r = pd.Series(pd.cut(ref, cuts, right=False)).value_counts(sort=False).to_numpy() / len(ref)
    c = pd.Series(pd.cut(cur, cuts, right=False)).value_counts(sort=False).to_numpy() / len(cur)
    r, c = np.maximum(r, 1e-4), np.maximum(c, 1e-4)
    return float(np.sum((c - r) * np.log(c / r)))


def test_shadow_numbers_agree_with_direct_computation(synth, log_writer) -> None:
    raw = synth(1500, seed=11, shadow=True)
    raw.loc[raw.index[:300], ["shadow_score", "shadow_version"]] = [np.nan, None]  # warm-up
    frame = read_log(log_writer(raw))
    report = shadow_report(frame)

    rows = raw.iloc[300:]
    champ, shadow = rows["score"].to_numpy(), rows["shadow_score"].to_numpy()
    assert report.n_rows == len(rows)
    assert report.pearson == pytest.approx(sps.pearsonr(champ, shadow).statistic, abs=1e-12)
    assert report.spearman == pytest.approx(sps.spearmanr(champ, shadow).statistic, abs=1e-12)
    champ_dec = rows["decision"].astype(bool).to_numpy()
    shadow_dec = shadow >= rows["threshold"].to_numpy()
    assert report.agreement == pytest.approx(np.mean(champ_dec == shadow_dec))
    assert report.confusion["shadow_only"] == int((shadow_dec & ~champ_dec).sum())
    assert sum(report.confusion.values()) == len(rows)
    assert report.score_psi == pytest.approx(_hand_psi(champ, shadow), rel=1e-9)
    assert report.shadow_versions == ("4",)
    # no labels: promotion must wait
    assert report.gate_result.verdict == "inconclusive"
    assert not report.passed
    assert "label" in report.gate_result.message
    json.loads(report.to_json())


def test_spearman_handles_ties_like_scipy(synth, log_writer) -> None:
    raw = synth(400, seed=12, shadow=True)
    raw["shadow_score"] = np.round(raw["shadow_score"], 2)  # heavy ties
    report = shadow_report(read_log(log_writer(raw)))
    want = sps.spearmanr(raw["score"], raw["shadow_score"]).statistic
    assert report.spearman == pytest.approx(want, abs=1e-12)


def test_no_worse_gate_fails_a_worse_shadow_on_labelled_rows(synth, log_writer) -> None:
    raw = synth(2000, seed=13)
    logged, labels = _with_labels(raw, 1, shadow="random")
    frame = read_log(log_writer(logged))
    report = shadow_report(frame, labels, as_of=_after(frame), n_resamples=200)
    assert report.n_labelled == len(raw)
    assert report.gate_result.verdict == "fail"
    assert not report.passed
    assert report.gate_result.name == "no_worse"


def test_no_worse_gate_passes_an_equivalent_shadow(synth, log_writer) -> None:
    raw = synth(2000, seed=14)
    logged, labels = _with_labels(raw, 2, shadow="close")
    frame = read_log(log_writer(logged))
    report = shadow_report(frame, labels, as_of=_after(frame), n_resamples=200)
    assert report.gate_result.passed, report.gate_result.explain()
    assert report.pearson > 0.99


def test_only_labels_that_have_arrived_count(synth, log_writer) -> None:
    raw = synth(800, seed=15)
    logged, labels = _with_labels(raw, 3, shadow="close")
    frame = read_log(log_writer(logged))
    # half the labels arrive a week after the window: they must not be used
    late = labels.index >= 400
    labels.loc[late, "label_timestamp"] += pd.Timedelta(days=7)
    report = shadow_report(frame, labels, as_of=_after(frame), n_resamples=200)
    assert report.n_labelled == 400
    # by default labels count up to the window's last request: the last minutes' are pending
    by_default = shadow_report(frame, labels, n_resamples=200)
    cutoff = frame["ts"].max()
    assert by_default.n_labelled == int((labels["label_timestamp"] <= cutoff).sum())
    nothing = labels.assign(label_timestamp=labels["label_timestamp"] + pd.Timedelta(days=30))
    assert shadow_report(frame, nothing, as_of=_after(frame)).gate_result.verdict == "inconclusive"


def test_a_naive_as_of_is_refused_with_a_clear_error(synth, log_writer) -> None:
    raw = synth(50, seed=17)
    logged, labels = _with_labels(raw, 4, shadow="close")
    frame = read_log(log_writer(logged))
    naive = _after(frame).tz_localize(None)
    with pytest.raises(GateInputError, match="has no time zone"):
        shadow_report(frame, labels, as_of=naive, n_resamples=50)
    aware = shadow_report(frame, labels, as_of=_after(frame), n_resamples=50)
    assert aware.n_labelled == len(raw)


def test_window_without_shadow_scores_is_refused(synth, log_writer) -> None:
    frame = read_log(log_writer(synth(100, seed=16)))
    with pytest.raises(GateInputError, match="no shadow scores"):
        shadow_report(frame)


@pytest.mark.parametrize("label", [0, 1])
def test_labelled_rows_of_one_class_wait_for_labels(synth, log_writer, label: int) -> None:
    """A few labelled rows at a 1% fraud rate are often all legitimate: the gate waits (as
    with no labels) instead of raising from inside the comparison."""
    raw, labels = _with_labels(synth(400, seed=5, shadow=True), 5, shadow="close")
    labels["is_fraud"] = label
    frame = read_log(log_writer(raw))
    report = shadow_report(frame, labels, as_of=_after(frame))
    assert report.gate_result.verdict == "inconclusive"
    assert not report.passed
    kind = "fraud" if label else "legitimate"
    assert f"all {report.n_labelled} labelled shadow rows are {kind}" in report.gate_result.message
