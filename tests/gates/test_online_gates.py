"""The online half's gates enforced against mlref (issue 17): what the served champion runs on
and what it serves, against what it was trained and validated with.

- dependency_drift (monitor-1): the environment training recorded with the champion (the
  ``mlref.environment`` run tag, ``mlref.train.provenance``) against this interpreter, and
  the same comparison as the session's server made it at start (``/metrics``).
- numeric_stability (monitor-5): NaN/inf/out-of-range scores and model inputs, a constant or
  saturated model, requests served defaults, on the served traffic's prediction log (what
  ``mlref monitor`` alerts on, through the same function) and on the training frame.
- explanation_consistency (infra-5): ``mlref explain``'s per-feature contributions (XGBoost
  pred_contribs of the registered native model) plus the bias reproduce the margin of the
  served ONNX model on the logged inputs, whose sigmoid reproduces the logged score, for a
  sample of logged requests.
- offline_online_agreement (model-2): the champion's AUC on its offline test window against
  the AUC realised on the served traffic (the prediction log of the replayed live week joined
  with its labels once they matured, a label delay after the week).

The mutation proofs (tests/mutations/test_online_gates.py) run the helpers of this module on
the defect each gate exists for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np
    import pandas as pd
    from conftest import ServedLog

    from mlgates.config import GatesConfig
    from mlgates.fixture import Gates
    from mlgates.result import GateResult
    from mlref.pipeline import ReferenceSystem
    from mlref.registry import LoadedModel
    from mlref.settings import Settings


def champion_environment(settings: Settings) -> dict[str, Any]:
    """The environment recorded with the registry's champion (a fresh copy: callers may
    change it)."""
    from mlref.train.provenance import recorded_environment

    version, recorded = recorded_environment(settings, "champion")
    assert recorded is not None, f"champion version {version} has no mlref.environment tag"
    return recorded


def dependency_result(recorded: dict[str, Any]) -> GateResult:
    """What ``mlref serve`` checks at start: the recorded environment against this one."""
    from mlref.train.provenance import dependency_check

    return dependency_check(recorded)


@pytest.mark.mlgate("dependency_drift")
def test_champion_runs_in_its_recorded_environment(
    mlgates: Gates, ref_settings: Settings, reference_system: ReferenceSystem, server_url: str
) -> None:
    """The champion's training environment (package versions, Python, uv.lock hash) against
    the one serving it; the server exposes the verdict it reached at start in /metrics."""
    import httpx

    from mlref.serve.metrics import parse_metrics

    recorded = champion_environment(ref_settings)
    assert recorded["packages"].get("xgboost"), recorded  # the versions were really captured
    result = mlgates.check(dependency_result(recorded))
    metrics = parse_metrics(httpx.get(f"{server_url}/metrics", timeout=10.0).text)
    exposed = {k: v for k, v in metrics.items() if k.startswith("mlref_dependency_drift{")}
    assert exposed == {f'mlref_dependency_drift{{verdict="{result.verdict}"}}': 0.0}, exposed


def stability_of(
    config: GatesConfig, champion: LoadedModel, scores: np.ndarray, frame: pd.DataFrame
) -> GateResult:
    """``mlref.monitor.drift.stability`` (what ``mlref monitor`` alerts on) of ``scores`` and
    the champion's inputs in ``frame``, held to ``[tool.mlgates.numeric_stability]``."""
    from mlgates import FrozenBins
    from mlref.monitor.alerts import AlertThresholds
    from mlref.monitor.drift import stability

    thresholds = AlertThresholds(
        max_saturated_share=float(config.threshold("numeric_stability", "max_saturated_share")),
        max_default_share=float(config.threshold("numeric_stability", "max_default_share")),
    )
    bins = FrozenBins.load(champion.bins_path)
    names = [n for n in champion.card["feature_names"] if n in bins.features]
    assert names, f"the champion's frozen bins cover none of its inputs: {sorted(bins.features)}"
    return stability(scores, frame, names, bins, thresholds)


@pytest.mark.mlgate("numeric_stability")
def test_served_scores_and_inputs_are_finite_and_in_range(
    mlgates: Gates, champion: LoadedModel, served_log: ServedLog
) -> None:
    """The prediction log of the replayed live traffic: every score a finite probability,
    no inf input, NaN only where training had it (the model's missing marker), the model
    not constant, few scores saturated and few requests served default features."""
    log = served_log.log
    result = mlgates.check(
        stability_of(mlgates.config, champion, log["score"].to_numpy(float), log)
    )
    # it looked at every logged row and at the inputs, not only at the scores
    assert result.details["rows"] == len(log) > 0
    assert result.details["features_checked"] >= 1, result.explain()


@pytest.mark.mlgate("numeric_stability")
def test_training_frame_scores_and_inputs_are_finite_and_in_range(
    mlgates: Gates,
    champion: LoadedModel,
    reference_system: ReferenceSystem,
    onnx_scores: Callable[[pd.DataFrame], np.ndarray],
) -> None:
    """The same checks on the training rows (Feast historical features) and the champion's
    ONNX scores of them: a NaN or inf born offline is caught before a model learns from it."""
    frame = reference_system.frame
    result = mlgates.check(stability_of(mlgates.config, champion, onnx_scores(frame), frame))
    assert result.details["rows"] == len(frame) > 0


# logged requests whose explanation is checked (seeded sample of the served log)
EXPLAIN_SAMPLE = 300


def explanation_result(
    config: GatesConfig, champion: LoadedModel, rows: pd.DataFrame, inputs: np.ndarray | None = None
) -> GateResult:
    """``explanation_consistency`` of ``mlref.explain``'s contributions for the logged ``rows``
    (computed on ``inputs`` when given, else on the logged model inputs) against the served
    ONNX model's margins on the logged inputs, held to
    ``[tool.mlgates.explanation_consistency]``; first, those margins must reproduce the
    logged scores (else the log does not hold what was scored, and nothing is explained)."""
    import numpy as np
    import pandas as pd

    from mlgates.gates import explanation_consistency
    from mlref.explain import SCORE_TOLERANCE, contributions, onnx_margins

    names = list(champion.card["feature_names"])
    logged = rows[names].to_numpy("float64").astype("float32")
    served = onnx_margins(champion.onnx_path, logged)
    off = np.abs(1.0 / (1.0 + np.exp(-served)) - rows["score"].to_numpy("float64"))
    assert off.max() <= SCORE_TOLERANCE, f"logged inputs do not reproduce the scores: {off.max()}"
    contrib = contributions(champion.native_path, logged if inputs is None else inputs, names)
    # rows named by transaction: a failure names the requests to run `mlref explain` on
    per_feature = pd.DataFrame(
        contrib[:, :-1], columns=names, index=rows["transaction_id"].astype(str).to_numpy()
    )
    return explanation_consistency(
        per_feature,
        served,
        bias=contrib[:, -1],
        link="identity",
        tolerance=float(config.threshold("explanation_consistency", "tolerance")),
    )


def explained_sample(served_log: ServedLog) -> pd.DataFrame:
    log = served_log.log
    return log.sample(n=min(EXPLAIN_SAMPLE, len(log)), random_state=0).sort_index()


@pytest.mark.mlgate("explanation_consistency")
def test_explanations_reproduce_the_served_margin(
    mlgates: Gates, ref_settings: Settings, champion: LoadedModel, served_log: ServedLog
) -> None:
    """For a seeded sample of logged requests, contributions + bias (from the native model,
    on the logged inputs) equal the logit of the score the ONNX model served; and
    ``mlref explain`` of one of them reads the log, the registry and the online store and
    reports the same check."""
    from mlref.explain import explain_transaction

    rows = explained_sample(served_log)
    result = mlgates.check(explanation_result(mlgates.config, champion, rows))
    assert result.details["rows"] == len(rows) > 0

    explained = explain_transaction(ref_settings, str(rows["transaction_id"].iloc[0]))
    assert explained.consistent, explained.summary()
    assert explained.model_version == champion.version
    assert explained.score == pytest.approx(float(rows["score"].iloc[0]), abs=0.0)
    assert [f.name for f in explained.features] == list(champion.card["feature_names"])
    assert explained.online_row is not None, "the online store row was not read"
    assert explained.threshold == pytest.approx(float(champion.card["decision"]["threshold"]))


def agreement_result(
    config: GatesConfig,
    reference_system: ReferenceSystem,
    onnx_scores: Callable[[pd.DataFrame], np.ndarray],
    log: pd.DataFrame,
    served_scores: np.ndarray | None = None,
) -> GateResult:
    """``offline_online_agreement`` of the champion's test-window scores against the served
    scores of ``log`` (or ``served_scores``, one per log row) joined with the live labels
    known a label delay after the live window, held to ``[tool.mlgates.offline_online_agreement]``."""
    import numpy as np
    import pandas as pd

    from mlgates.gates import offline_online_agreement
    from mlref.data.columns import EVENT_TIMESTAMP, LABEL, LABEL_TIMESTAMP

    test = reference_system.run.result.split.test
    live = reference_system.live
    labels = live.set_index(live["transaction_id"].astype(str))[[LABEL, LABEL_TIMESTAMP]]
    joined = labels.reindex(log["transaction_id"].astype(str).to_numpy())
    # judged once the served window's labels have matured: a fraud label arrives up to
    # label_delay_days after the transaction (as the offline test window's had)
    as_of = live[EVENT_TIMESTAMP].max() + pd.Timedelta(
        days=reference_system.settings.data.label_delay_days
    )
    matured = (joined[LABEL_TIMESTAMP] <= as_of).to_numpy()
    scores = log["score"].to_numpy("float64") if served_scores is None else served_scores
    gate = "offline_online_agreement"
    return offline_online_agreement(
        test[LABEL].to_numpy(bool),
        onnx_scores(test),
        joined[LABEL].to_numpy()[matured].astype(bool),
        np.asarray(scores, dtype="float64")[matured],
        metric=str(config.threshold(gate, "metric")),
        tolerance=float(config.threshold(gate, "tolerance")),
        confidence=float(config.threshold(gate, "confidence")),
        min_class_rows=int(config.threshold(gate, "min_class_rows")),
    )


@pytest.mark.mlgate("offline_online_agreement")
def test_offline_auc_holds_on_served_traffic(
    mlgates: Gates,
    reference_system: ReferenceSystem,
    onnx_scores: Callable[[pd.DataFrame], np.ndarray],
    served_log: ServedLog,
) -> None:
    """The AUC the champion was promoted on (its offline test window) against the AUC of
    the scores it served on the replayed live traffic, labelled as the labels matured."""
    result = mlgates.check(
        agreement_result(mlgates.config, reference_system, onnx_scores, served_log.log)
    )
    assert result.details["online_rows"] > 1000, result.explain()  # the labelled replay
