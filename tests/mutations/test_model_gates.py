"""Mutation proofs of the model-development gates (tests/gates/test_model_gates.py).

Each proof runs the gate test's own helpers (the module loaded by path) on a defect built
from a private copy of the reference training rows, held to the thresholds the gate test is
held to (``mlgates_config``), next to the clean counterpart that passes:

- beats_baseline: the champion beats the logistic regression and the rules; an XGBoost cut
  to three depth-1 trees (a training recipe whose capacity was set by mistake) does not beat
  the logistic regression, and the gate fails naming it.
- features_beneficial: the champion's inputs are not failed; the reference recipe trained
  on a private copy of the rows with an input whose pipeline broke into a constant fails,
  naming it as unused. A pure-noise input (seeded N(0, 1)) is not called beneficial, but
  on the reference window (120 fraud rows) the gate can only warn about it: see that test.
- staleness_impact: the champion's decay is within the cadence; the reference recipe
  trained on a private copy of the rows with an input whose relation to fraud flips after
  the validation window (a merchant-risk flag that fraudsters learn to avoid while
  legitimate users start to trigger it) decays fast and fails.
- model_staleness: the champion serving the replayed live week is younger than its decay
  allows; the same card with its training window ended a year earlier (a model nobody
  retrained) fails, and a card without a training time is inconclusive.
- tuning_gap: the champion's hyperparameters pass; a deliberately mistuned recipe
  (learning rate 0.001 with 20 trees) fails, naming a better configuration found.
- group_parity: the champion's alerts pass; the same model with the scores of the 65+ band
  pushed down (a model biased against one group: it misses their fraud) fails, naming the
  band.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from mlref.data.columns import LABEL


def gate_suite(name: str) -> ModuleType:
    """``tests/gates/<name>.py`` as a module (test modules are not importable by name)."""
    path = Path(__file__).parents[1] / "gates" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"mlref_gate_suite_{name}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def model_gates() -> ModuleType:
    return gate_suite("test_model_gates")


def _thresholds(config: Any, gate: str, keys: tuple[str, ...]) -> dict[str, Any]:
    return {key: config.threshold(gate, key) for key in keys}


def _train(reference_system: Any, **hyperparams: Any) -> Any:
    """The reference recipe on a private copy of the reference rows, with ``hyperparams``."""
    from mlref.train import train

    config = reference_system.run.result.config
    config = config.with_(hyperparams={**dict(config.hyperparams), **hyperparams})
    return train(config, reference_system.frame.copy(), check_data_version=False)


def _beats_baseline(
    model_gates: ModuleType, reference_system: Any, scores: np.ndarray, config: Any
) -> Any:
    from mlgates.gates import beats_baseline

    result = reference_system.run.result
    split = result.split
    return beats_baseline(
        split.test[LABEL].to_numpy(),
        scores,
        model_gates.baseline_scores(split.train.copy(), split.test.copy(), result.feature_names),
        **_thresholds(config, "beats_baseline", ("metric", "margin", "confidence")),
    )


def test_the_champion_beats_the_baselines(
    model_gates: ModuleType, ref_settings: Any, reference_system: Any, mlgates_config: Any
) -> None:
    window = reference_system.run.result.split.test
    scores = model_gates.champion_scores(ref_settings, window)
    result = _beats_baseline(model_gates, reference_system, scores, mlgates_config)
    assert result.verdict == "pass", result.explain()


def test_a_model_worse_than_logistic_regression_fails_beats_baseline(
    model_gates: ModuleType, reference_system: Any, mlgates_config: Any
) -> None:
    """The defect: three depth-1 trees (a capacity set by mistake). It still beats the
    rules, so only the logistic regression is named."""
    weak = _train(reference_system, n_estimators=3, max_depth=1)
    window = reference_system.run.result.split.test
    result = _beats_baseline(model_gates, reference_system, weak.scores(window), mlgates_config)
    assert result.verdict == "fail", result.explain()
    rows = result.details["baselines"]
    assert rows["logistic regression"]["verdict"] == "fail"
    assert rows["logistic regression"]["ci_high"] < 0  # clearly worse, not a grazing CI
    assert "'logistic regression'" in result.message.split("undecided")[0]
    assert rows["amount and velocity rules"]["verdict"] != "fail"


def _features_beneficial(predict: Any, window: Any, names: Any, config: Any) -> Any:
    from mlgates.gates import features_beneficial

    keys = ("metric", "min_importance", "n_repeats", "confidence", "n_resamples", "allow")
    return features_beneficial(
        predict,
        window[list(names)],
        window[LABEL].to_numpy(),
        **_thresholds(config, "features_beneficial", keys),
    )


def test_the_champion_inputs_are_not_failed(
    model_gates: ModuleType, ref_settings: Any, reference_system: Any, mlgates_config: Any
) -> None:
    result = reference_system.run.result
    verdict = _features_beneficial(
        model_gates.champion_predict(ref_settings),
        result.split.test,
        result.feature_names,
        mlgates_config,
    )
    assert verdict.verdict in ("pass", "warn"), verdict.explain()


def _train_with(reference_system: Any, column: str, values: np.ndarray) -> tuple[Any, tuple]:
    """The reference recipe on a private copy of the rows with one more input ``column``."""
    from mlref.train import train

    frame = reference_system.frame.copy()
    frame[column] = values
    config = reference_system.run.result.config
    names = (*config.feature_names, column)
    return train(config.with_(feature_names=names), frame, check_data_version=False), names


def _predict(model: Any, names: tuple) -> Any:
    from mlref.train.fit import feature_matrix, native_scores

    return lambda rows: native_scores(model, feature_matrix(rows, names))


def test_a_useless_input_fails_features_beneficial(
    reference_system: Any, mlgates_config: Any
) -> None:
    """The defect: an input whose pipeline broke into a constant (a card-present flag that
    is 0 for every row). The model trains, exports and scores as before; it never reads the
    input, and the gate fails naming it."""
    n = len(reference_system.frame)
    run, names = _train_with(reference_system, "card_present", np.zeros(n))
    result = _features_beneficial(_predict(run.model, names), run.split.test, names, mlgates_config)
    assert result.verdict == "fail", result.explain()
    row = result.details["features"]["card_present"]
    assert row["verdict"] == "fail"
    assert row["unused"]
    assert "'card_present': unused" in result.message


def test_a_random_input_is_not_called_beneficial(
    reference_system: Any, mlgates_config: Any
) -> None:
    """A pure-noise input (seeded N(0, 1)) that the trees do split on: permutation importance
    of noise is 0 in expectation, and on this window (120 fraud rows) its interval is about
    +-0.004 AUC, wider than ``min_importance``: the gate cannot fail it and says so (warn,
    naming it), but never calls it beneficial. Failing it needs a window with many more
    fraud rows (or drop-column importance)."""
    n = len(reference_system.frame)
    run, names = _train_with(reference_system, "noise", np.random.default_rng(0).normal(size=n))
    result = _features_beneficial(_predict(run.model, names), run.split.test, names, mlgates_config)
    row = result.details["features"]["noise"]
    assert row["verdict"] in ("warn", "fail"), result.explain()
    assert row["ci_low"] <= 0
    assert result.verdict != "pass"


def _group_parity(y: np.ndarray, alerts: np.ndarray, groups: np.ndarray, config: Any) -> Any:
    from mlgates.gates import group_parity

    keys = ("max_gap", "max_fpr_gap", "confidence", "min_class_rows")
    return group_parity(y, alerts, groups, **_thresholds(config, "group_parity", keys))


def test_the_champion_alerts_pass_group_parity(
    model_gates: ModuleType, ref_settings: Any, reference_system: Any, mlgates_config: Any
) -> None:
    window = model_gates.parity_window(reference_system)
    result = _group_parity(
        window[LABEL].to_numpy(),
        model_gates.champion_alerts(ref_settings, reference_system, window),
        model_gates.age_bands(reference_system, window),
        mlgates_config,
    )
    assert result.verdict == "pass", result.explain()


def test_a_model_biased_against_one_band_fails_group_parity(
    model_gates: ModuleType, ref_settings: Any, reference_system: Any, mlgates_config: Any
) -> None:
    """The defect: the champion's scores pushed down for the 65+ band, by 12 on the logit
    scale (as a model that learned a proxy of age would): their fraud goes unflagged more
    often."""
    window = model_gates.parity_window(reference_system)
    groups = model_gates.age_bands(reference_system, window)
    scores = model_gates.champion_scores(ref_settings, window)
    eps = 1e-7
    logit = np.log(np.clip(scores, eps, 1 - eps) / (1 - np.clip(scores, eps, 1 - eps)))
    biased = np.where(groups == "65+", 1 / (1 + np.exp(-(logit - 12.0))), scores)
    alerts = (biased >= reference_system.run.result.threshold.value).astype(int)
    result = _group_parity(window[LABEL].to_numpy(), alerts, groups, mlgates_config)
    assert result.verdict == "fail", result.explain()
    failing = [p for p in result.details["pairs"] if p["verdict"] == "fail"]
    assert failing
    assert all("65+" in p["groups"] for p in failing)
    assert {p["rate"] for p in failing} == {"recall"}


def _staleness(
    model_gates: ModuleType, window: Any, train_end: Any, scores: Any, config: Any
) -> Any:
    from mlgates.gates import staleness_impact

    keys = ("retrain_interval_weeks", "max_loss", "metric", "window_weeks", "confidence")
    return staleness_impact(
        model_gates.model_age_weeks(window, train_end),
        window[LABEL].to_numpy(),
        scores,
        **_thresholds(config, "staleness_impact", keys),
    )


def test_the_champion_staleness_is_within_the_cadence(
    model_gates: ModuleType, ref_settings: Any, reference_system: Any, mlgates_config: Any
) -> None:
    window = model_gates.parity_window(reference_system)
    result = _staleness(
        model_gates,
        window,
        reference_system.run.result.config.train_end,
        model_gates.champion_scores(ref_settings, window),
        mlgates_config,
    )
    assert result.verdict == "pass", result.explain()


def test_a_model_that_decays_fast_fails_staleness_impact(
    model_gates: ModuleType, reference_system: Any, mlgates_config: Any
) -> None:
    """The defect: an input ``risk_flag`` that marks 99% of fraud and 0.1% of legitimate
    rows while the model trains and validates (so the model leans on it, and early stopping
    sees nothing wrong), and whose relation flips week by week after the validation window
    (fraud marked 99% -> 0%, legitimate 0.1% -> 50% over three weeks; seeded)."""
    import pandas as pd

    frame = reference_system.frame.copy()
    config = reference_system.run.result.config
    train_end = config.train_end
    after = (frame["event_timestamp"] - config.val_end) / pd.Timedelta(weeks=1)
    weeks = after.clip(0, 3).to_numpy()
    p_fraud = 0.99 - 0.33 * weeks
    p_legit = 0.001 + 0.1663 * weeks
    p = np.where(frame[LABEL].to_numpy() == 1, p_fraud, p_legit)
    flag = (np.random.default_rng(0).random(len(frame)) < p).astype(float)
    run, names = _train_with(reference_system, "risk_flag", flag)
    window = pd.concat([run.split.val, run.split.test], ignore_index=True)
    scores = _predict(run.model, names)(window)
    result = _staleness(model_gates, window, train_end, scores, mlgates_config)
    assert result.verdict == "fail", result.explain()
    assert result.details["loss_ci_low"] > result.details["max_loss"]
    assert "retrain at least every" in result.message


def _champion_decay(
    model_gates: ModuleType, ref_settings: Any, reference_system: Any, log: Any, config: Any
) -> Any:
    """The champion's decay as the gate test measures it (validation, test and the labelled
    served week), held to the staleness_impact thresholds."""
    from mlgates.gates import staleness_impact

    keys = ("retrain_interval_weeks", "max_loss", "metric", "window_weeks", "confidence")
    return staleness_impact(
        *model_gates.staleness_inputs(ref_settings, reference_system, log),
        **_thresholds(config, "staleness_impact", keys),
    )


def test_an_old_model_fails_model_staleness(
    model_gates: ModuleType,
    ref_settings: Any,
    reference_system: Any,
    served_log: Any,
    mlgates_config: Any,
) -> None:
    """The defect: the registry serves a model whose training data ended a year before the
    champion's (a model nobody retrained: its card's ``train_end`` 52 weeks earlier), held
    to the champion's own measured decay. The clean champion passes (11.6 weeks old against
    a limit of 45.8 here); the old one fails (63.6), and a card that does not record its
    training time is inconclusive, not passed. Half a year (37.6 weeks) is within what this
    decay's interval allows: the limit is the age at which the decay's upper bound loses
    max_loss, so it is only as tight as the labelled windows make it."""
    import copy

    import pandas as pd

    from mlref.registry import CHAMPION, Registry

    card = Registry(ref_settings).load(CHAMPION).card
    decay = _champion_decay(
        model_gates, ref_settings, reference_system, served_log.log, mlgates_config
    )
    clean = model_gates.staleness_result(mlgates_config, card, served_log.log, decay)
    assert clean.verdict == "pass", clean.explain()

    old = copy.deepcopy(card)
    train_end = pd.Timestamp(old["training_config"]["train_end"]) - pd.Timedelta(weeks=52)
    old["training_config"]["train_end"] = train_end.isoformat()
    result = model_gates.staleness_result(mlgates_config, old, served_log.log, decay)
    assert result.verdict == "fail", result.explain()
    assert result.measured == pytest.approx(clean.measured + 52)
    assert "too stale" in result.message

    unrecorded = copy.deepcopy(card)
    del unrecorded["training_config"]["train_end"]
    result = model_gates.staleness_result(mlgates_config, unrecorded, served_log.log, decay)
    assert result.verdict == "inconclusive", result.explain()


def _tuning(model_gates: ModuleType, reference_system: Any, chosen: Any, config: Any) -> Any:
    from mlgates.gates import tuning_gap

    keys = ("budget", "metric", "margin", "confidence", "n_resamples", "seed")
    return tuning_gap(
        model_gates.tuning_trainer(reference_system, reference_system.frame.copy()),
        chosen,
        model_gates.TUNING_SPACE,
        **_thresholds(config, "tuning_gap", keys),
    )


def test_the_champion_hyperparameters_pass_tuning_gap(
    model_gates: ModuleType, reference_system: Any, mlgates_config: Any
) -> None:
    chosen = dict(reference_system.run.result.config.hyperparams)
    result = _tuning(model_gates, reference_system, chosen, mlgates_config)
    assert result.verdict == "pass", result.explain()


def test_a_mistuned_model_fails_tuning_gap(
    model_gates: ModuleType, reference_system: Any, mlgates_config: Any
) -> None:
    """The defect: learning rate 0.001 with 20 trees (a config typo): the model barely
    moves from its first trees."""
    chosen = {
        **dict(reference_system.run.result.config.hyperparams),
        "learning_rate": 0.001,
        "n_estimators": 20,
    }
    result = _tuning(model_gates, reference_system, chosen, mlgates_config)
    assert result.verdict == "fail", result.explain()
    better = [c for c in result.details["configurations"] if c["verdict"] == "better"]
    assert better
    assert str(better[0]["params"]) in result.message
