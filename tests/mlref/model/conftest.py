"""A small labelled training frame built by the real pipeline pieces (no Feast needed).

Transactions come from ``mlref.data.generate`` and the model features from the features
stage's reference batch path (``batch_model_features``: the same definitions Feast serves);
the frame has the columns ``training_frame`` returns plus ``merchant_category`` for slices.
"""

from __future__ import annotations

import pandas as pd
import pytest

from mlref.settings import DataConfig

SMALL = DataConfig(n_users=300, days=90, fraud_rate=0.03, seed=11)


def build_frame(cfg: DataConfig = SMALL) -> pd.DataFrame:
    from mlref.data.generate import generate_transactions
    from mlref.features.offline import batch_model_features

    events = generate_transactions(cfg)
    features = batch_model_features(events, events)
    keep = ["transaction_id", "user_id", "event_timestamp", "is_fraud", "label_timestamp"]
    return pd.concat([events[[*keep, "merchant_category", "amount"]], features], axis=1)


@pytest.fixture(scope="session")
def frame() -> pd.DataFrame:
    return build_frame()


@pytest.fixture(scope="session")
def config(frame: pd.DataFrame):
    from mlref.train import TrainConfig

    return TrainConfig.from_dates(frame, experiment_name="mlref-test", test_days=10, val_days=10)


@pytest.fixture(scope="session")
def trained(frame: pd.DataFrame, config):
    from mlref.train import train

    return train(config, frame)


@pytest.fixture(scope="session")
def weak(frame: pd.DataFrame, config):
    """Two stumps on the same rows: a model clearly worse than ``trained``."""
    from mlref.train import train

    return train(
        config.with_(hyperparams={"n_estimators": 2, "max_depth": 1, "learning_rate": 0.3}),
        frame,
    )
