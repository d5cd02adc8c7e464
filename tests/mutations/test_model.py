"""Model gates: a worse candidate, an undecidable comparison, a reordered ONNX export.

The champion is the reference system's registered ONNX model, scored on the latest labelled
window exactly as promotion scores it. Candidates are trained here from a private copy of
the reference training rows with the reference ``TrainConfig``.

The proofs for the gate tests of tests/gates run those tests' own helpers (the module is
loaded by path, ``gate_suite``) on the defect, so what fails here is the gate test's
comparison, not a copy of it:

- regression (test_regression_gates): the week-later retrain passes; the same retrain whose
  labels were joined one row off fails.
- export parity across training and serving (test_export_gates): the serving path as it is
  passes; a serving lookup that hands the model float16 features, or one feature cast to an
  integer, fails. The gate test before it fed one float32 array to both models and never ran
  the serving code, so neither defect could reach it.
- rollback drill (test_infra_gates): the real registry passes; a rollback that rewrites the
  history but leaves the champion alias in place, and one that restores the oldest champion
  instead of the previous one, fail. The drill before it registered one export twice, so a
  wrong version restored would have had the same bytes and passed.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlref.data.columns import LABEL
from mlref.registry import CHAMPION, Registry

SMALL_SAMPLE_ROWS = 60
SMALL_SAMPLE_POSITIVES = 6


def gate_suite(name: str) -> ModuleType:
    """``tests/gates/<name>.py`` as a module (test modules are not importable by name)."""
    path = Path(__file__).parents[1] / "gates" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"mlref_gate_suite_{name}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _train(reference_system: Any, frame: pd.DataFrame, **hyperparams: Any) -> Any:
    from mlref.train import train

    config = reference_system.run.result.config
    if hyperparams:
        config = config.with_(hyperparams={**dict(config.hyperparams), **hyperparams})
    return train(config, frame, check_data_version=False)


@pytest.fixture(scope="module")
def shuffled_label_model(reference_system: Any) -> Any:
    """The defect: the candidate learned from labels shuffled across rows."""
    frame = reference_system.frame.copy()
    rng = np.random.default_rng(0)
    frame[LABEL] = rng.permutation(frame[LABEL].to_numpy())
    return _train(reference_system, frame)


@pytest.fixture(scope="module")
def stump_model(reference_system: Any) -> Any:
    """The defect: far fewer trees (two stumps)."""
    return _train(
        reference_system,
        reference_system.frame.copy(),
        n_estimators=2,
        max_depth=1,
    )


@pytest.fixture(scope="module")
def similar_model(reference_system: Any) -> Any:
    """A comparable candidate: same data, other tree settings (not the champion's trees)."""
    return _train(reference_system, reference_system.frame.copy(), max_depth=3, subsample=0.7)


@pytest.fixture(scope="module")
def regression_gate() -> ModuleType:
    return gate_suite("test_regression_gates")


@pytest.fixture(scope="module")
def week_later_rows(
    reference_system: Any, full_history_store: Any, regression_gate: ModuleType
) -> pd.DataFrame:
    """The training rows the regression gate's candidate is trained on (a private copy)."""
    frame = regression_gate.week_later_training_rows(reference_system, full_history_store)
    return frame.copy()


def _regression_gate_verdict(
    regression_gate: ModuleType,
    reference_system: Any,
    champion: Any,
    rows: pd.DataFrame,
    workdir: Path,
    config: Any,
    training_rows: pd.DataFrame | None = None,
) -> Any:
    """The regression gate test's comparison on ``rows`` with a candidate trained by the real
    pipeline (train -> ONNX with parity) on ``training_rows`` (default: ``rows``), exported
    under ``workdir`` (not registered), held to the thresholds the gate test is held to
    (``config``: the ``mlgates_config`` fixture)."""
    from mlgates.gates import no_worse
    from mlref.pipeline import burn_in
    from mlref.train.pipeline import run_training

    frame = rows if training_rows is None else training_rows
    settings = reference_system.settings.with_(workdir=workdir)
    run = run_training(settings, frame, register=False, **burn_in(frame))
    gate = regression_gate
    window = gate.comparison_window(rows, run.result.config, reference_system.run.result.config)
    return no_worse(
        window[LABEL].to_numpy(),
        gate.onnx_scores(champion.onnx_path, window),
        gate.onnx_scores(run.export.onnx_path, window),
        slices=gate.merchant_groups(window),
        **{
            key: config.threshold("no_worse", key)
            for key in ("metric", "margin", "slice_margin", "confidence")
        },
    )


def test_the_week_later_retrain_passes_the_regression_gate(
    regression_gate: ModuleType,
    reference_system: Any,
    champion: Any,
    week_later_rows: pd.DataFrame,
    tmp_path: Path,
    mlgates_config: Any,
) -> None:
    result = _regression_gate_verdict(
        regression_gate, reference_system, champion, week_later_rows, tmp_path, mlgates_config
    )
    assert result.verdict == "pass", result.explain()
    # a different model from the champion: the comparison had something to measure
    assert result.details["candidate"] != result.details["champion"]


def test_labels_joined_one_row_off_fail_the_regression_gate(
    regression_gate: ModuleType,
    reference_system: Any,
    champion: Any,
    week_later_rows: pd.DataFrame,
    tmp_path: Path,
    mlgates_config: Any,
) -> None:
    """The defect: the label join is off by one row, so every training row carries the label
    of the transaction before it (a plausible pipeline bug: the retrain runs, exports with
    parity and looks like any candidate)."""
    joined_off = week_later_rows.copy()
    joined_off[LABEL] = joined_off[LABEL].shift(1, fill_value=0)
    result = _regression_gate_verdict(
        regression_gate,
        reference_system,
        champion,
        week_later_rows,  # the comparison reads the true labels
        tmp_path,
        mlgates_config,
        training_rows=joined_off,
    )
    assert result.verdict == "fail", result.explain()
    assert "worse than the champion by more than the margin" in result.message
    # clearly worse, not a CI grazing the margin
    assert result.details["ci_high"] < -0.005, result.details


@pytest.mark.parametrize("defect", ["shuffled_label_model", "stump_model"])
def test_a_worse_candidate_fails_no_worse(
    defect: str,
    request: pytest.FixtureRequest,
    evaluation_window: pd.DataFrame,
    champion_scores: np.ndarray,
) -> None:
    from mlgates.gates import no_worse
    from mlgates.metrics import roc_auc

    candidate = request.getfixturevalue(defect)
    y = evaluation_window[LABEL].to_numpy()
    scores = candidate.scores(evaluation_window)
    result = no_worse(y, champion_scores, scores)

    assert result.verdict == "fail", result.explain()
    assert "worse than the champion by more than the margin" in result.message
    assert result.details["ci_high"] < -0.005
    # the gate's figures are the metric's (independent: sklearn)
    from sklearn.metrics import roc_auc_score

    assert result.details["candidate"] == pytest.approx(roc_auc_score(y, scores), abs=1e-9)
    assert result.details["champion"] == pytest.approx(roc_auc(y, champion_scores), abs=1e-12)
    assert result.details["candidate"] < result.details["champion"] - 0.1


def test_too_few_rows_is_inconclusive_not_pass(
    similar_model: Any, evaluation_window: pd.DataFrame, champion_scores: np.ndarray
) -> None:
    from mlgates.gates import no_worse

    y_all = evaluation_window[LABEL].to_numpy()
    rng = np.random.default_rng(1)
    pos = rng.choice(np.flatnonzero(y_all == 1), SMALL_SAMPLE_POSITIVES, replace=False)
    neg = rng.choice(
        np.flatnonzero(y_all == 0), SMALL_SAMPLE_ROWS - SMALL_SAMPLE_POSITIVES, replace=False
    )
    rows = np.sort(np.r_[pos, neg])
    candidate = similar_model.scores(evaluation_window)

    full = no_worse(y_all, champion_scores, candidate)
    small = no_worse(y_all[rows], champion_scores[rows], candidate[rows])

    assert small.verdict == "inconclusive", small.explain()
    assert "inconclusive" in small.message
    assert small.details["rows"] == SMALL_SAMPLE_ROWS
    assert small.details["rows_to_settle"] is None or small.details["rows_to_settle"] > 60
    # the CI on 60 rows is far wider than on the whole window: the sample size is the cause
    small_width = small.details["ci_high"] - small.details["ci_low"]
    full_width = full.details["ci_high"] - full.details["ci_low"]
    assert small_width > 3 * full_width


def test_export_in_the_training_order_keeps_parity(
    reference_system: Any, evaluation_window: pd.DataFrame
) -> None:
    from mlref.export import check_parity, to_onnx

    model = reference_system.run.result.model
    names = list(reference_system.run.result.feature_names)
    payload = to_onnx(model, names).SerializeToString()
    result = check_parity(model, payload, evaluation_window, names)
    assert result.verdict == "pass", result.explain()


def test_features_reordered_in_the_export_fail_model_parity(
    reference_system: Any, evaluation_window: pd.DataFrame, tmp_path: Any
) -> None:
    from mlgates.gates import model_parity
    from mlref.export import ExportParityError, OnnxScorer, check_parity, export_onnx, to_onnx
    from mlref.train.fit import native_scores

    model = reference_system.run.result.model
    names = list(reference_system.run.result.feature_names)
    reordered = names[::-1]
    payload = to_onnx(model, reordered).SerializeToString()

    # serving scores by the order the graph declares: every column lands in the wrong slot
    served = OnnxScorer(payload).score_frame(evaluation_window)
    result = model_parity(native_scores(model, evaluation_window), served)
    assert result.verdict == "fail"
    assert "differ by more than" in result.message
    assert result.details["rows_over_tolerance"] > 0.5 * len(evaluation_window)

    assert check_parity(model, payload, evaluation_window, reordered).verdict == "fail"
    target = tmp_path / "model.onnx"
    with pytest.raises(ExportParityError, match="declared feature order differs") as err:
        export_onnx(model, target, reordered, parity_data=evaluation_window)
    assert names[0] in str(err.value)
    assert not target.exists()


def test_training_that_is_not_reproducible_fails_the_reproducibility_gate(
    reference_system: Any,
) -> None:
    """The infra-1 gate (tests/gates/test_infra_gates.py) compares two trainings of one
    config bit for bit; a training whose randomness is not pinned (here: another seed with
    row and column subsampling, as an unseeded run would draw) must fail it."""
    from mlgates.gates import model_parity
    from mlref.train.fit import train

    first = reference_system.run.result
    config = first.config
    unpinned = config.with_(
        seed=config.seed + 1,
        hyperparams={**dict(config.hyperparams), "subsample": 0.8, "colsample_bytree": 0.8},
    )
    again = train(unpinned, reference_system.frame)
    window = first.split.test
    result = model_parity(first.scores(window), again.scores(window), atol=0.0)
    assert result.verdict == "fail", result.explain()
    assert "differ by more than" in result.message, result.message


@pytest.fixture(scope="module")
def export_gate() -> ModuleType:
    return gate_suite("test_export_gates")


class Float16Lookup:
    """The defect: the serving lookup keeps its features as float16 (a feature cache made
    smaller), so the model sees values rounded to 11 significant bits."""

    def __init__(self, source: Any) -> None:
        self.source = source

    def lookup(self, requests: Any) -> dict[str, Any]:
        out = dict(self.source.lookup(requests))
        with np.errstate(over="ignore"):  # seconds past 65504 become inf, silently
            return {k: v if k == "unknown_user" else v.astype(np.float16) for k, v in out.items()}


class IntegerRatioLookup:
    """The defect: ``amount_vs_user_avg`` reaches the model cast to an integer (an online
    store column typed Int64), so every ratio below 1 becomes 0."""

    def __init__(self, source: Any) -> None:
        self.source = source

    def lookup(self, requests: Any) -> dict[str, Any]:
        out = dict(self.source.lookup(requests))
        ratio = out["amount_vs_user_avg"]
        out["amount_vs_user_avg"] = np.where(np.isfinite(ratio), np.trunc(ratio), ratio)
        return out


def test_the_serving_path_reproduces_the_training_path(
    export_gate: ModuleType, reference_system: Any, champion: Any
) -> None:
    from mlgates.gates import model_parity

    reference, served = export_gate.training_and_serving_scores(champion, reference_system.frame)
    result = model_parity(reference, served)
    assert result.verdict == "pass", result.explain()
    assert reference.size > len(reference_system.frame)  # the edge inputs were scored too


@pytest.mark.parametrize("defect", [Float16Lookup, IntegerRatioLookup])
def test_a_dtype_skew_on_the_serving_path_fails_model_parity(
    defect: type, export_gate: ModuleType, reference_system: Any, champion: Any
) -> None:
    from mlgates.gates import model_parity

    reference, served = export_gate.training_and_serving_scores(
        champion,
        reference_system.frame,
        features=lambda rows: defect(export_gate.TrainingRows(rows)),
    )
    result = model_parity(reference, served)
    assert result.verdict == "fail", result.explain()
    assert "differ by more than" in result.message
    assert result.details["rows_over_tolerance"] > 0


@pytest.fixture(scope="module")
def infra_gate() -> ModuleType:
    return gate_suite("test_infra_gates")


@pytest.fixture(scope="module")
def drill_exports(
    infra_gate: ModuleType, reference_system: Any, tmp_path_factory: pytest.TempPathFactory
) -> list[Any]:
    """The drill's three versions, trained once for the three drills below."""
    return list(infra_gate.drill_exports(reference_system, tmp_path_factory.mktemp("drill")))


class AliasLeftInPlace(Registry):
    """The defect: rollback pops the history and tags the versions, but the ``champion``
    alias is never moved (the call that moves it was lost in a refactor)."""

    def rollback(self) -> tuple[str, str]:
        current = self.version_of(CHAMPION)
        assert current is not None
        history = self.history()
        previous = history.pop()
        self._write_history(history)
        self.client.set_model_version_tag(self.name, current, "mlref.rolled_back_at", "now")
        return current, previous


class RestoresTheOldest(Registry):
    """The defect: rollback restores the first champion of the history instead of the last
    (``history.pop(0)``): with one earlier champion it looks right."""

    def rollback(self) -> tuple[str, str]:
        current = self.version_of(CHAMPION)
        assert current is not None
        history = self.history()
        previous = history.pop(0)
        self.client.set_registered_model_alias(self.name, CHAMPION, previous)
        self._write_history(history)
        return current, previous


def test_the_rollback_drill_passes_on_the_real_registry(
    infra_gate: ModuleType,
    ref_settings: Any,
    reference_system: Any,
    drill_exports: list[Any],
    tmp_path: Path,
) -> None:
    result = infra_gate.rollback_drill(
        ref_settings, reference_system, tmp_path, exports=drill_exports
    )
    assert result.verdict == "pass", result.explain()
    assert result.details["rows_changed_by_promotion"] > 0


@pytest.mark.parametrize("defect", [AliasLeftInPlace, RestoresTheOldest])
def test_a_broken_rollback_fails_the_drill(
    defect: type[Registry],
    infra_gate: ModuleType,
    ref_settings: Any,
    reference_system: Any,
    drill_exports: list[Any],
    tmp_path: Path,
) -> None:
    result = infra_gate.rollback_drill(
        ref_settings, reference_system, tmp_path, registry_type=defect, exports=drill_exports
    )
    assert result.verdict == "fail", result.explain()
    second = result.details["versions"][1]
    # the server did not answer with the restored version's scores
    assert result.details["rows_restored"] < result.details["requests"]
    assert f"not {second}" in result.message
