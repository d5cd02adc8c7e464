"""Mutation proofs of the model-development gates (tests/gates/test_model_gates.py).

Each proof runs the gate test's own helpers (the module loaded by path) on a defect built
from a private copy of the reference training rows, held to the thresholds the gate test is
held to (``mlgates_config``), next to the clean counterpart that passes:

- beats_baseline: the champion beats the logistic regression and the rules; an XGBoost cut
  to three depth-1 trees (a training recipe whose capacity was set by mistake) does not beat
  the logistic regression, and the gate fails naming it.
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
