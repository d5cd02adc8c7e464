"""TrainConfig validation and the time split: random splits refused, embargo respected."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlref.train import SplitError, TrainConfig, check_split, data_version, time_split
from mlref.train.config import DecisionPolicy, mature_end

FEATURES = ("f1", "f2")
DAY = pd.Timedelta(days=1)
T0 = pd.Timestamp("2026-01-01T00:00:00+00:00")


def dated(**changes: object) -> TrainConfig:
    base: dict[str, object] = {
        "experiment_name": "e",
        "data_version": "v",
        "train_end": T0 + 30 * DAY,
        "val_start": T0 + 37 * DAY,
        "val_end": T0 + 47 * DAY,
        "test_start": T0 + 54 * DAY,
        "test_end": T0 + 64 * DAY,
        "feature_names": FEATURES,
        "embargo": 7 * DAY,
        "label_delay": 7 * DAY,
    }
    base.update(changes)
    return TrainConfig(**base)  # type: ignore[arg-type]


def tiny_frame(days: int = 70, per_day: int = 40, delay: pd.Timedelta = 7 * DAY) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = days * per_day
    times = T0 + pd.to_timedelta(np.sort(rng.integers(0, days * 86400, n)), unit="s")
    y = (rng.random(n) < 0.1).astype(np.int8)
    return pd.DataFrame(
        {
            "transaction_id": [f"t{i:06d}" for i in range(n)],
            "user_id": rng.integers(0, 50, n),
            "event_timestamp": times,
            "is_fraud": y,
            "label_timestamp": times + delay,
            "f1": rng.normal(size=n) + y,
            "f2": rng.normal(size=n),
        }
    )


def test_valid_config_is_frozen_with_an_immutable_mapping() -> None:
    config = dated(hyperparams={"max_depth": 3})
    with pytest.raises(AttributeError):
        config.seed = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.hyperparams["max_depth"] = 9  # type: ignore[index]
    assert config.to_dict()["embargo"] == 7 * 86400
    assert config.mlflow_params()["hyperparams.max_depth"] == "3"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"val_start": T0 + 20 * DAY}, "strictly ordered"),
        ({"test_start": T0 + 47 * DAY}, "strictly ordered"),
        ({"test_end": T0 + 50 * DAY}, "strictly ordered"),
        ({"embargo": 3 * DAY}, "shorter than the label delay"),
        ({"val_start": T0 + 33 * DAY}, "shorter than the embargo"),
        ({"train_end": pd.Timestamp("2026-01-31")}, "no timezone"),
        ({"model_type": "lightgbm"}, "not supported"),
        ({"hyperparams": {"seed": 1}}, "may not set"),
        ({"feature_names": ("f1", "f1")}, "unique"),
        ({"n_threads": 0}, "n_threads"),
        ({"data_version": ""}, "data_version"),
    ],
)
def test_invalid_configs_say_what_is_wrong(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dated(**changes)


def test_policy_is_validated() -> None:
    with pytest.raises(ValueError, match="target_precision"):
        DecisionPolicy(kind="precision", target_precision=1.5)
    with pytest.raises(ValueError, match="kind"):
        DecisionPolicy(kind="f1")  # type: ignore[arg-type]


def test_data_version_is_a_content_hash() -> None:
    frame = tiny_frame(days=5)
    assert data_version(frame) == data_version(frame.copy())
    assert len(data_version(frame)) == 64
    changed = frame.copy()
    changed.loc[3, "f1"] += 1e-9
    assert data_version(changed) != data_version(frame)
    assert data_version(frame.iloc[::-1]) != data_version(frame)


def test_from_dates_derives_ordered_windows_from_the_span() -> None:
    frame = tiny_frame(days=80)
    config = TrainConfig.from_dates(frame, feature_names=FEATURES, test_days=10, val_days=10)
    last = frame["event_timestamp"].max()
    assert config.label_delay == 7 * DAY  # measured from the frame
    assert config.embargo == config.label_delay
    assert config.test_end == mature_end(last, 7 * DAY)
    assert config.test_end - config.test_start == 10 * DAY
    assert config.test_start - config.val_end == config.embargo
    assert config.val_start - config.train_end == config.embargo
    assert config.data_version == data_version(
        frame[
            [
                "transaction_id",
                "user_id",
                "event_timestamp",
                "is_fraud",
                "label_timestamp",
                *FEATURES,
            ]
        ]
    )


def test_from_dates_refuses_a_span_that_is_too_short() -> None:
    with pytest.raises(ValueError, match="too short"):
        TrainConfig.from_dates(tiny_frame(days=30), feature_names=FEATURES)


def test_random_split_is_refused_with_the_reason() -> None:
    frame = tiny_frame()
    with pytest.raises(SplitError, match=r"temporal data.*leaks the future"):
        time_split(frame, dated(), method="random")


def test_time_split_respects_the_embargo_and_label_availability() -> None:
    frame = tiny_frame()
    config = dated()
    split = time_split(frame, config)
    assert split.check is not None
    assert split.check.passed
    assert split.train["event_timestamp"].max() < config.train_end
    assert split.val["event_timestamp"].min() >= config.train_end + config.embargo
    assert split.test["event_timestamp"].min() >= config.val_end + config.embargo
    assert split.train["label_timestamp"].max() <= config.val_start
    assert split.val["label_timestamp"].max() <= config.test_start
    in_gap = frame["event_timestamp"].between(config.train_end, config.val_start, inclusive="left")
    assert not frame.index[in_gap].isin(split.train.index.union(split.val.index)).any()


def test_labels_later_than_the_embargo_are_refused() -> None:
    # labels arrive 10 days late but the config believes 7: training would use labels that
    # only existed during validation
    frame = tiny_frame(delay=10 * DAY)
    with pytest.raises(SplitError, match="got their labels after val_start"):
        time_split(frame, dated())


def test_interleaved_splits_are_refused_by_the_time_split_gate() -> None:
    frame = tiny_frame()
    rng = np.random.default_rng(1)
    shuffled = frame.iloc[rng.permutation(len(frame))]
    third = len(frame) // 3
    train, val, test = shuffled[:third], shuffled[third : 2 * third], shuffled[2 * third :]
    with pytest.raises(SplitError, match="random split"):
        check_split(train, val, test, embargo=7 * DAY)


def test_clean_prebuilt_split_passes_the_gate() -> None:
    frame = tiny_frame()
    config = dated()
    split = time_split(frame, config)
    result = check_split(split.train, split.val, split.test, embargo=config.embargo)
    assert result.passed, result.explain()


def test_a_window_without_fraud_is_refused() -> None:
    frame = tiny_frame()
    frame.loc[frame["event_timestamp"] >= T0 + 54 * DAY, "is_fraud"] = 0
    with pytest.raises(SplitError, match=r"test window .* only class \[0\]"):
        time_split(frame, dated())
