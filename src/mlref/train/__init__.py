"""Training: a frozen config, a time split with an embargo, XGBoost, test-window metrics.

XGBoost is imported by ``train`` when it runs, not when this package is imported.
"""

from __future__ import annotations

from mlref.train.config import DecisionPolicy, TrainConfig, data_version
from mlref.train.evaluate import Evaluation, Threshold, business_cost, choose_threshold, evaluate
from mlref.train.fit import TrainResult, feature_matrix, native_scores, train
from mlref.train.pipeline import TrainingRun, run_training
from mlref.train.split import Split, SplitError, check_split, time_split

__all__ = [
    "DecisionPolicy",
    "Evaluation",
    "Split",
    "SplitError",
    "Threshold",
    "TrainConfig",
    "TrainResult",
    "TrainingRun",
    "business_cost",
    "check_split",
    "choose_threshold",
    "data_version",
    "evaluate",
    "feature_matrix",
    "native_scores",
    "run_training",
    "time_split",
    "train",
]
