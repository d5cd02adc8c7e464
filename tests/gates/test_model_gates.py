"""Model-development gates of the ML Test Score on the reference system.

- model-5 ``beats_baseline``: the registered champion (ONNX, scored as promotion scores it)
  against two simpler models fitted on the champion's own training split: a logistic
  regression on the same features and a fraud analyst's rules (amount and velocity
  thresholds). All three score the champion's test window, which none of them trained on.
- data-2 ``features_beneficial``: permutation importance of each of the champion's inputs
  (ONNX Runtime scores the permuted copies) on the same test window.
- model-4 ``staleness_impact``: the champion (ONNX) on every labelled row after its
  training window (validation, test, and the served live week once labelled), in weekly
  windows of its age, decay per week of its AUC.
- monitor-4 ``model_staleness``: the serving champion's age (its card's end of training to
  the last logged request) against the age at which that decay loses ``max_loss``.
- model-3 ``tuning_gap``: a seeded random search of a few XGBoost configurations, each
  trained by the reference recipe on a subsample of the training rows and scored on the
  champion's test window, against the champion's hyperparameters trained the same way.
- model-7 ``group_parity``: the champion's alerts (ONNX scores at its chosen threshold) on
  the same window, recall and false-positive rate per age band (a per-user attribute the
  generator derives from spending; not a model input).

The helpers are module functions so the mutation proofs (tests/mutations/test_model_gates.py)
run the same baselines and window against a defective model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pytest

if TYPE_CHECKING:
    import pandas as pd
    from conftest import ServedLog

    from mlgates.config import GatesConfig
    from mlgates.fixture import Gates
    from mlgates.result import GateResult
    from mlref.pipeline import ReferenceSystem
    from mlref.settings import Settings

#: a rule fires above this quantile of the LEGITIMATE training transactions: "unusual for a
#: normal customer", the way an analyst sets a threshold without a model
RULE_QUANTILE = 0.95
#: the rules baseline: amount and velocity thresholds, as a fraud team writes them
RULE_FEATURES: tuple[str, ...] = ("log_amount", "txn_velocity_24h")
CATEGORICAL: tuple[str, ...] = ("merchant_category_code",)


def logistic_baseline(
    train: pd.DataFrame, window: pd.DataFrame, names: Sequence[str], label: str = "is_fraud"
) -> np.ndarray:
    """Scores on ``window`` of a logistic regression fitted on ``train`` with the model's
    inputs: numeric ones median-imputed (with a missing indicator: ``avg_order_30d`` is NaN
    for a user's first purchase) and standardised, categorical ones one-hot encoded."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [c for c in names if c not in CATEGORICAL]
    categorical = [c for c in names if c in CATEGORICAL]
    prep = ColumnTransformer(
        [
            (
                "numeric",
                make_pipeline(
                    SimpleImputer(strategy="median", add_indicator=True), StandardScaler()
                ),
                numeric,
            ),
            ("categorical", OneHotEncoder(handle_unknown="ignore"), categorical),
        ]
    )
    model = make_pipeline(prep, LogisticRegression(max_iter=2000, class_weight="balanced"))
    model.fit(train[list(names)], train[label].to_numpy().astype(int))
    return np.asarray(model.predict_proba(window[list(names)])[:, 1], dtype=np.float64)


def rules_baseline(
    train: pd.DataFrame, window: pd.DataFrame, label: str = "is_fraud"
) -> np.ndarray:
    """Number of rules that fire on each ``window`` row (0, 1 or 2): amount above, and
    24-hour velocity above, their ``RULE_QUANTILE`` among legitimate training rows."""
    legit = train.loc[train[label] == 0]
    fired = np.zeros(len(window))
    for column in RULE_FEATURES:
        cut = float(np.nanquantile(legit[column].to_numpy(dtype=float), RULE_QUANTILE))
        fired += (window[column].to_numpy(dtype=float) > cut).astype(float)
    return fired


def baseline_scores(
    train: pd.DataFrame, window: pd.DataFrame, names: Sequence[str]
) -> dict[str, np.ndarray]:
    """Each simpler model's scores on ``window``, fitted on ``train``."""
    return {
        "logistic regression": logistic_baseline(train, window, names),
        "amount and velocity rules": rules_baseline(train, window),
    }


def champion_predict(settings: Settings) -> Callable[[pd.DataFrame], np.ndarray]:
    """The registry's champion as a frame -> scores callable (ONNX Runtime, as served)."""
    from mlref.export import OnnxScorer
    from mlref.registry import CHAMPION, Registry

    return OnnxScorer(Registry(settings).load(CHAMPION).onnx_path).score_frame


def champion_scores(settings: Settings, window: pd.DataFrame) -> np.ndarray:
    """The registry's champion scored by ONNX Runtime, as promotion scores it."""
    return champion_predict(settings)(window)


@pytest.mark.mlgate("beats_baseline")
def test_champion_beats_simpler_models(
    mlgates: Gates, ref_settings: Settings, reference_system: ReferenceSystem
) -> None:
    """The champion beats a logistic regression and the amount/velocity rules on its test
    window, paired with confidence (DeLong): its trees earn their complexity."""
    from mlgates.gates import beats_baseline

    result = reference_system.run.result
    split = result.split
    mlgates.run(
        beats_baseline,
        split.test["is_fraud"].to_numpy(),
        champion_scores(ref_settings, split.test),
        baseline_scores(split.train, split.test, result.feature_names),
    )


@pytest.mark.mlgate("features_beneficial")
def test_every_champion_input_is_beneficial(
    mlgates: Gates, ref_settings: Settings, reference_system: ReferenceSystem
) -> None:
    """Each of the champion's inputs adds to its AUC on the test window (permutation
    importance, bootstrap over the window's rows). On the reference data (120 fraud rows in
    the window) some inputs cannot be shown to help or to be useless: the gate warns and
    names them; a useless input fails (tests/mutations/test_model_gates.py)."""
    from mlgates.gates import features_beneficial

    result = reference_system.run.result
    window = result.split.test
    mlgates.run(
        features_beneficial,
        champion_predict(ref_settings),
        window[list(result.feature_names)],
        window["is_fraud"].to_numpy(),
    )


def age_bands(system: ReferenceSystem, window: pd.DataFrame) -> np.ndarray:
    """The age band of each window row's user, from the generator's per-user table for the
    configuration that generated the history and live days (the days matter: see
    ``user_age_bands``)."""
    import math
    from dataclasses import replace

    import pandas as pd

    from mlref.data.columns import AGE_BAND, EVENT_TIMESTAMP, USER_ID
    from mlref.data.generate import user_age_bands

    cfg = system.settings.data
    last = max(system.events[EVENT_TIMESTAMP].max(), system.live[EVENT_TIMESTAMP].max())
    days = math.ceil((last - pd.Timestamp(cfg.start, tz="UTC")) / pd.Timedelta(days=1))
    table = user_age_bands(replace(cfg, days=days)).set_index(USER_ID)[AGE_BAND]
    return table.loc[window[USER_ID].to_numpy()].to_numpy()


def parity_window(system: ReferenceSystem) -> pd.DataFrame:
    """The champion's validation and test windows: every labelled row after its training
    window. The test window alone holds 120 fraud rows, 16 of them in the 65+ band, too few
    to tell a recall gap of 0.1; validation chose the number of trees and the alert
    threshold for all users alike, so it does not favour a band."""
    import pandas as pd

    split = system.run.result.split
    return pd.concat([split.val, split.test], ignore_index=True)


def champion_alerts(
    settings: Settings, system: ReferenceSystem, window: pd.DataFrame
) -> np.ndarray:
    """The champion's decisions on ``window``: ONNX scores at the threshold chosen in training."""
    threshold = system.run.result.threshold.value
    return (champion_scores(settings, window) >= threshold).astype(int)


@pytest.mark.mlgate("group_parity")
def test_champion_errs_alike_across_age_bands(
    mlgates: Gates, ref_settings: Settings, reference_system: ReferenceSystem
) -> None:
    """Recall and false-positive rate of the champion's alerts differ between age bands by
    no more than ``max_gap`` / ``max_fpr_gap`` (Newcombe intervals), on the validation and
    test windows (``parity_window``)."""
    from mlgates.gates import group_parity

    window = parity_window(reference_system)
    mlgates.run(
        group_parity,
        window["is_fraud"].to_numpy(),
        champion_alerts(ref_settings, reference_system, window),
        age_bands(reference_system, window),
    )


def model_age_weeks(frame: pd.DataFrame, train_end: pd.Timestamp) -> np.ndarray:
    """Each row's time since the end of the model's training window, in weeks."""
    import pandas as pd

    return ((frame["event_timestamp"] - train_end) / pd.Timedelta(weeks=1)).to_numpy()


def served_labelled(system: ReferenceSystem, log: pd.DataFrame) -> pd.DataFrame:
    """The prediction-log rows of ``log`` whose fraud label had matured a label delay after
    the live window (as ``agreement_result`` in test_online_gates judges them), with the
    label as ``is_fraud``: the served traffic's own evidence of the model's quality."""
    import pandas as pd

    from mlref.data.columns import EVENT_TIMESTAMP, LABEL, LABEL_TIMESTAMP

    live = system.live
    labels = live.set_index(live["transaction_id"].astype(str))[[LABEL, LABEL_TIMESTAMP]]
    joined = labels.reindex(log["transaction_id"].astype(str).to_numpy())
    as_of = live[EVENT_TIMESTAMP].max() + pd.Timedelta(days=system.settings.data.label_delay_days)
    matured = (joined[LABEL_TIMESTAMP] <= as_of).to_numpy()
    out = log.loc[matured, [EVENT_TIMESTAMP, "score"]].reset_index(drop=True)
    out[LABEL] = joined[LABEL].to_numpy()[matured].astype(int)
    return out


def staleness_inputs(
    settings: Settings, system: ReferenceSystem, log: pd.DataFrame | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(age in weeks, labels, champion scores) of every labelled row after the champion's
    training window: its validation and test windows (ages 2-8 weeks) and, given the
    prediction ``log`` of the replayed live week, the served scores whose labels matured
    (ages 11-12 weeks: the age the model serves at, measured rather than extrapolated)."""
    window = parity_window(system)
    train_end = system.run.result.config.train_end
    ages = [model_age_weeks(window, train_end)]
    labels = [window["is_fraud"].to_numpy()]
    scores = [champion_scores(settings, window)]
    if log is not None:
        served = served_labelled(system, log)
        ages.append(model_age_weeks(served, train_end))
        labels.append(served["is_fraud"].to_numpy())
        scores.append(served["score"].to_numpy("float64"))
    return np.concatenate(ages), np.concatenate(labels), np.concatenate(scores)


@pytest.fixture(scope="module")
def decay_cache() -> dict[str, GateResult]:
    """The champion's ``staleness_impact`` result, shared by the two staleness tests (the
    monitor-4 gate reuses the model-4 figure instead of measuring it twice)."""
    return {}


@pytest.mark.mlgate("staleness_impact")
def test_champion_staleness_within_the_retrain_cadence(
    mlgates: Gates,
    ref_settings: Settings,
    reference_system: ReferenceSystem,
    served_log: ServedLog,
    decay_cache: dict[str, GateResult],
) -> None:
    """The champion's AUC decays by no more than ``max_loss`` over the retrain interval,
    judged on its validation and test windows (ages 2-8 weeks after its training window;
    validation chose its number of trees, which if anything flatters the early windows and
    so errs towards finding decay) and on the scores it served on the replayed live week
    whose labels matured (ages 11-12 weeks). The cadence the data support is printed."""
    from mlgates.gates import staleness_impact

    inputs = staleness_inputs(ref_settings, reference_system, served_log.log)
    kwargs, _ = mlgates.kwargs_for(staleness_impact, *inputs)
    decay_cache["champion"] = staleness_impact(*inputs, **kwargs)
    result = mlgates.run(staleness_impact, *inputs)
    print(f"mlref retrain cadence: {result.message}")


def model_trained_at(card: Mapping[str, object]) -> str | None:
    """When the model's knowledge ends: the end of its training window, from its model card
    (``training_config.train_end``, the origin ``staleness_impact`` measures ages from);
    ``None`` for a card that does not record it."""
    config = card.get("training_config")
    value = config.get("train_end") if isinstance(config, Mapping) else None
    return None if value is None else str(value)


def staleness_result(
    config: GatesConfig, card: Mapping[str, object], log: pd.DataFrame, decay: GateResult
) -> GateResult:
    """``model_staleness`` of the model of ``card`` serving the prediction log ``log`` (its
    age at the log's last event time), held to ``decay``'s limit and
    ``[tool.mlgates.model_staleness]``."""
    from mlgates.gates import model_staleness

    cap = config.gate_defaults("model_staleness").get("max_age_weeks")
    return model_staleness(
        model_trained_at(card),
        log["event_timestamp"].max(),
        staleness=decay,
        max_age_weeks=None if cap is None else float(cap),
    )


@pytest.mark.mlgate("model_staleness")
def test_serving_champion_is_not_too_stale(
    mlgates: Gates,
    ref_settings: Settings,
    reference_system: ReferenceSystem,
    served_log: ServedLog,
    decay_cache: dict[str, GateResult],
) -> None:
    """The model serving the replayed live traffic (the registry's champion: its card's end
    of training) is younger, at the last logged request, than the age at which its measured
    decay (``staleness_impact``, the same figure as model-4) loses ``max_loss``."""
    from mlgates.gates import staleness_impact
    from mlref.registry import CHAMPION, Registry

    if "champion" not in decay_cache:
        inputs = staleness_inputs(ref_settings, reference_system, served_log.log)
        kwargs, _ = mlgates.kwargs_for(staleness_impact, *inputs)
        decay_cache["champion"] = staleness_impact(*inputs, **kwargs)
    champion = Registry(ref_settings).load(CHAMPION)
    assert set(served_log.log["model_version"].astype(str)) == {champion.version}
    result = mlgates.check(
        staleness_result(mlgates.config, champion.card, served_log.log, decay_cache["champion"])
    )
    assert result.details["age_weeks"] > 0, result.explain()


#: the search space of ``tuning_gap`` on mlref (the knobs of DEFAULT_HYPERPARAMS that matter)
TUNING_SPACE: dict[str, object] = {
    "max_depth": (3, 8),
    "learning_rate": ("log", 0.02, 0.3),
    "min_child_weight": (1.0, 10.0),
    "subsample": (0.6, 1.0),
}
#: share of the legitimate training rows each search run trains on (all fraud rows kept):
#: bounds the search's cost (five trainings) on two shared cores
TUNING_SUBSAMPLE = 0.4


def tuning_trainer(
    system: ReferenceSystem, frame: pd.DataFrame | None = None
) -> Callable[[Mapping[str, object]], tuple[np.ndarray, np.ndarray]]:
    """``params -> (labels, scores)``: the reference recipe with ``params`` as its
    hyperparameters, trained on a fixed seeded subsample of the training-period rows of
    ``frame`` (default: the reference rows; validation and test rows kept whole), scored on
    the champion's test window (the same rows for every configuration)."""
    from mlref.data.columns import LABEL
    from mlref.train import train

    rows = system.frame if frame is None else frame
    config = system.run.result.config
    in_train = (rows["event_timestamp"] < config.train_end).to_numpy()
    legit = (rows[LABEL] == 0).to_numpy()
    drop = in_train & legit & (np.random.default_rng(0).random(len(rows)) > TUNING_SUBSAMPLE)
    sub = rows.loc[~drop].copy()
    window = system.run.result.split.test
    y = window[LABEL].to_numpy()

    def train_and_score(params: Mapping[str, object]) -> tuple[np.ndarray, np.ndarray]:
        run = train(config.with_(hyperparams=dict(params)), sub, check_data_version=False)
        return y, run.scores(window)

    return train_and_score


@pytest.mark.mlgate("tuning_gap")
def test_champion_hyperparameters_are_tuned(
    mlgates: Gates, reference_system: ReferenceSystem
) -> None:
    """No configuration of a bounded random search (seeded, ``budget`` draws from
    ``TUNING_SPACE``) beats the champion's hyperparameters by more than the margin with
    confidence, all trained alike on a subsample and scored on the champion's test window."""
    from mlgates.gates import tuning_gap

    mlgates.run(
        tuning_gap,
        tuning_trainer(reference_system),
        dict(reference_system.run.result.config.hyperparams),
        TUNING_SPACE,
    )
