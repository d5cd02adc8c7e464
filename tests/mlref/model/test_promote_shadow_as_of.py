"""A backtest promotion at ``as_of`` counts only the shadow labels that had arrived by then.

``promote(as_of=X)`` evaluates offline on the labels known at X; the shadow gate must use
the same cutoff. The prediction log is read later than X (its request times run past X), so
without the cutoff the shadow comparison would count labels from X's future. Real parts: an
MLflow SQLite registry, ONNX exports, XGBoost models trained on generated data.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from mlref.export import ExportResult, export_trained
from mlref.settings import Settings, make_settings
from mlref.train import TrainConfig, TrainResult

pytestmark = pytest.mark.filterwarnings(
    # mlflow 3.17's SQLAlchemy store configures a loader strategy SQLAlchemy 2.1 deprecates
    "ignore:The ``noload`` loader strategy is deprecated:DeprecationWarning",
    # raised while mlflow.pyfunc imports its own chat types (save_model imports pyfunc)
    "ignore:.*Any type hint is inferred as AnyType:UserWarning",
)

SERVED_DAYS = 14


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_settings(tmp_path_factory.mktemp("mlref-shadow-as-of"), model_name="as-of")


@pytest.fixture(scope="module")
def models(
    tmp_path_factory: pytest.TempPathFactory,
    frame: pd.DataFrame,
    config: TrainConfig,
    trained: TrainResult,
    weak: TrainResult,
) -> dict[str, tuple[ExportResult, TrainResult]]:
    """weak (two stumps, the champion) and good (the full model, the challenger)."""
    out = tmp_path_factory.mktemp("exports")
    return {
        name: (export_trained(result, out / name), result)
        for name, result in (("weak", weak), ("good", trained))
    }


def _labelled(note_lines: tuple[str, ...]) -> int:
    shadow = [n for n in note_lines if n.startswith("shadow:")]
    assert len(shadow) == 1, note_lines
    found = re.search(r"in shadow, (\d+) labelled", shadow[0])
    assert found, shadow[0]
    return int(found.group(1))


def test_shadow_labels_after_as_of_are_not_counted(
    settings: Settings,
    models: dict[str, tuple[ExportResult, TrainResult]],
    frame: pd.DataFrame,
) -> None:
    from mlref.promote import promote
    from mlref.registry import Registry

    reg = Registry(settings)
    weak_export, weak = models["weak"]
    reg.register(weak_export)
    assert promote(settings, frame, registry=reg, n_resamples=200).promoted  # champion
    good_export, good = models["good"]
    good_version = reg.register(good_export)

    cutoff = frame["event_timestamp"].max()  # X: the offline window's default cutoff
    later = cutoff + pd.Timedelta(days=10)
    served = frame.loc[frame["event_timestamp"] > cutoff - pd.Timedelta(days=SERVED_DAYS)]
    arrives_late = (served["label_timestamp"] > cutoff).to_numpy()
    assert 0 < arrives_late.sum() < len(served)
    # the challenger misbehaves exactly on the rows whose labels arrive after X
    shadow = np.where(arrives_late, 1.0 - good.scores(served), good.scores(served))
    champion = weak.scores(served)
    log = pd.DataFrame(
        {
            "transaction_id": served["transaction_id"].to_numpy(),
            # request (wall-clock) times of a log read after X: well past every label
            "ts": pd.to_datetime(served["event_timestamp"], utc=True) + pd.Timedelta(days=40),
            "score": champion,
            "decision": champion >= 0.5,
            "threshold": 0.5,
            "shadow_score": shadow,
            "shadow_version": good_version,
        }
    )

    def decide(as_of: pd.Timestamp):  # type: ignore[no-untyped-def]
        return promote(
            settings,
            frame,
            registry=reg,
            n_resamples=200,
            as_of=as_of,
            apply=False,
            shadow_log=log,
        )

    at_x = decide(cutoff)
    assert _labelled(at_x.notes) == int((served["label_timestamp"] <= cutoff).sum())
    assert at_x.gates[-1].name == "no_worse"
    assert at_x.gates[-1].passed, at_x.explain()  # the misbehaving rows are not labelled yet
    assert at_x.promoted, at_x.explain()

    after = decide(later)
    n_after = int((served["label_timestamp"] <= later).sum())
    assert _labelled(after.notes) == n_after > _labelled(at_x.notes)
    assert after.gates[-1].verdict == "fail", after.explain()  # now they count
    assert not after.promoted
