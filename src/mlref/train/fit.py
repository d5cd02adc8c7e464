"""Train the fraud model: time split -> XGBoost with early stopping -> threshold -> test metrics.

Deterministic by construction: the seed and the thread count come from ``TrainConfig``
(``hist`` with a fixed ``nthread`` gives bit-identical trees), the training rows keep their
frame order, and the booster is cut at the best iteration so the stored model holds exactly
the trees that score.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlref.train.config import LABEL_COL, REQUIRED_COLS, TrainConfig, _require_columns, data_version
from mlref.train.evaluate import (
    Evaluation,
    Threshold,
    choose_threshold,
    evaluate,
    fraud_amounts,
    labels_of,
    slice_columns,
)
from mlref.train.split import Split, time_split

log = logging.getLogger(__name__)


def feature_matrix(frame: pd.DataFrame, feature_names: tuple[str, ...] | list[str]) -> np.ndarray:
    """The model input: ``feature_names`` in order, float32 (what ONNX serving receives)."""
    missing = [c for c in feature_names if c not in frame.columns]
    if missing:
        raise ValueError(f"the frame lacks model features {missing}")
    return np.ascontiguousarray(frame[list(feature_names)].to_numpy(dtype=np.float32))


def native_scores(model: Any, x: np.ndarray | pd.DataFrame, *, n_threads: int = 1) -> np.ndarray:
    """P(fraud) from the XGBoost model itself (no ONNX), float32.

    A DataFrame is reordered to the model's own feature order; an array must already be in it.
    """
    booster = model.get_booster()
    names = booster.feature_names
    if isinstance(x, pd.DataFrame):
        if names is None:
            raise ValueError("the model has no feature names; pass a float32 array in its order")
        x = feature_matrix(x, names)
    arr = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
    if arr.ndim != 2 or arr.shape[1] != booster.num_features():
        raise ValueError(
            f"expected a 2-d array with {booster.num_features()} feature columns, got {arr.shape}"
        )
    booster.set_param({"nthread": n_threads})
    return np.asarray(booster.inplace_predict(arr, validate_features=False), dtype=np.float32)


@dataclass(frozen=True)
class TrainResult:
    """A trained model and what it achieved. ``to_json()`` holds everything but the model and
    the split frames."""

    config: TrainConfig
    model: Any = field(repr=False)  # xgboost.XGBClassifier, cut at the best iteration
    threshold: Threshold
    validation: Evaluation
    test: Evaluation
    best_iteration: int
    n_trees: int
    scale_pos_weight: float
    split_summary: dict[str, dict[str, Any]]
    fit_seconds: float
    split: Split = field(repr=False, compare=False)
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.config.feature_names

    def scores(self, frame: pd.DataFrame) -> np.ndarray:
        return native_scores(self.model, frame, n_threads=self.config.n_threads)

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "threshold": self.threshold.to_dict(),
            "validation": self.validation.to_dict(),
            "test": self.test.to_dict(),
            "best_iteration": self.best_iteration,
            "n_trees": self.n_trees,
            "scale_pos_weight": self.scale_pos_weight,
            "split": self.split_summary,
            "fit_seconds": self.fit_seconds,
            "versions": dict(self.versions),
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True, default=str)

    def summary(self) -> str:
        """A few readable lines for the terminal."""
        m = self.test.metrics
        lines = [
            f"experiment {self.config.experiment_name}  data {self.config.data_version[:12]}  "
            f"seed {self.config.seed}",
        ]
        for name, part in self.split_summary.items():
            lines.append(
                f"  {name:<5} {part['rows']:>7} rows {part['positives']:>5} fraud  "
                f"{part['first_event'][:10]} .. {part['last_event'][:10]}"
            )
        lines.append(f"  trees {self.n_trees} (best iteration {self.best_iteration})")
        lines.append(
            f"  threshold {self.threshold.value:.4f} ({self.threshold.kind}; validation "
            f"precision {_f(self.threshold.precision)} recall {self.threshold.recall:.3f})"
        )
        lines.append(
            "  test: "
            + "  ".join(
                f"{k} {_f(m.get(k))}" for k in ("roc_auc", "pr_auc", "log_loss", "brier") if k in m
            )
        )
        recall_key = next((k for k in m if k.startswith("recall_at_precision")), None)
        if recall_key:
            lines.append(f"        {recall_key} {_f(m[recall_key])}")
        lines.append(
            f"        expected cost {_f(m.get('expected_cost'))} "
            f"(without model {_f(m.get('cost_without_model'))}), alert rate "
            f"{_f(m.get('alert_rate'))}"
        )
        for column, rows in self.test.slices.items():
            parts = [f"{value}: auc {_f(r.get('roc_auc'))} n={r['n']}" for value, r in rows.items()]
            lines.append(f"  by {column}: " + "; ".join(parts))
        return "\n".join(lines)


def _f(value: Any) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def training_data_version(frame: pd.DataFrame, feature_names: tuple[str, ...]) -> str:
    """The content hash ``TrainConfig.data_version`` must carry for ``frame``."""
    return data_version(frame[[*REQUIRED_COLS, *feature_names]])


def train(
    config: TrainConfig, frame: pd.DataFrame, *, check_data_version: bool = True
) -> TrainResult:
    """Split by time, fit XGBoost with early stopping on validation, choose the threshold on
    validation, report metrics on test."""
    import xgboost as xgb

    _require_columns(frame, (*REQUIRED_COLS, *config.feature_names), "train")
    if check_data_version:
        actual = training_data_version(frame, config.feature_names)
        if actual != config.data_version:
            raise ValueError(
                f"TrainConfig.data_version {config.data_version[:12]}... does not match the "
                f"frame ({actual[:12]}...): the config describes other data. Build it from this "
                "frame (TrainConfig.from_dates(frame) or data_version=...)"
            )
    split = time_split(frame, config)
    names = config.feature_names
    x_train, y_train = feature_matrix(split.train, names), labels_of(split.train)
    x_val, y_val = feature_matrix(split.val, names), labels_of(split.val)
    params = dict(config.hyperparams)
    spw = params.pop("scale_pos_weight", "auto")
    if spw == "auto":
        positives = float(y_train.sum())
        spw = (y_train.size - positives) / positives
    early = params.pop("early_stopping_rounds", 30)
    log.info(
        "training xgboost on %d rows x %d features (scale_pos_weight %.2f, seed %d, %d threads)",
        x_train.shape[0],
        x_train.shape[1],
        spw,
        config.seed,
        config.n_threads,
    )
    clf = xgb.XGBClassifier(
        objective="binary:logistic",
        tree_method="hist",
        random_state=config.seed,
        n_jobs=config.n_threads,
        scale_pos_weight=float(spw),
        early_stopping_rounds=early,
        **params,
    )
    started = time.perf_counter()
    clf.fit(
        pd.DataFrame(x_train, columns=list(names)),
        y_train,
        eval_set=[(pd.DataFrame(x_val, columns=list(names)), y_val)],
        verbose=False,
    )
    fit_seconds = time.perf_counter() - started
    best = int(clf.best_iteration)
    # keep exactly the trees that score: native and ONNX then cannot disagree on the count
    trimmed = clf.get_booster()[: best + 1]
    model = xgb.XGBClassifier(n_jobs=config.n_threads)
    model.load_model(bytearray(trimmed.save_raw("json")))
    log.info(
        "fitted in %.1fs: best iteration %d of %d",
        fit_seconds,
        best,
        clf.get_booster().num_boosted_rounds(),
    )

    val_scores = native_scores(model, x_val, n_threads=config.n_threads)
    amounts_val = fraud_amounts(split.val, config.policy)
    threshold = choose_threshold(y_val, val_scores, config.policy, amounts_val)
    log.info(
        "threshold %.4f chosen on validation (%s): precision %s recall %.3f",
        threshold.value,
        config.policy.kind,
        _f(threshold.precision),
        threshold.recall,
    )
    validation = evaluate(
        y_val,
        val_scores,
        threshold=threshold.value,
        policy=config.policy,
        amounts=amounts_val,
    )
    test = evaluate_window(model, frame, split.test, config, threshold.value)
    log.info(
        "test window: roc_auc %s pr_auc %s expected cost %s",
        _f(test.metrics["roc_auc"]),
        _f(test.metrics["pr_auc"]),
        _f(test.metrics["expected_cost"]),
    )
    return TrainResult(
        config=config,
        model=model,
        threshold=threshold,
        validation=validation,
        test=test,
        best_iteration=best,
        n_trees=model.get_booster().num_boosted_rounds(),
        scale_pos_weight=float(spw),
        split_summary=split.summary(),
        fit_seconds=fit_seconds,
        split=split,
        versions={"xgboost": xgb.__version__, "pandas": pd.__version__, "numpy": np.__version__},
    )


def evaluate_window(
    model: Any,
    frame: pd.DataFrame,
    window: pd.DataFrame,
    config: TrainConfig,
    threshold: float,
) -> Evaluation:
    """Metrics of ``model`` on ``window`` (rows of ``frame``) with the merchant and user-tenure
    slices."""
    scores = native_scores(
        model, feature_matrix(window, config.feature_names), n_threads=config.n_threads
    )
    return evaluate(
        window[LABEL_COL].to_numpy(dtype=np.float64),
        scores,
        threshold=threshold,
        policy=config.policy,
        amounts=fraud_amounts(window, config.policy),
        slices=slice_columns(frame, window, config.new_user_days),
    )
