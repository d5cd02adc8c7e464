"""A small but real reference system for load tests and benchmarks.

``build_small_system(settings)`` runs the stages the lead's pipeline runs, at a small size:
generated transactions -> raw parquet -> Feast repo (apply + materialize into the SQLite online
store) -> training frame (Feast ``get_historical_features``) -> XGBoost -> ONNX export with
its parity check and model card under ``settings.artifacts_dir``. It skips the MLflow
registry: the server is started on the exported file (``ServeConfig.model_path``), which keeps
a benchmark's set-up short. A workdir built by the full pipeline (registry champion) serves
just as well: pass no ``model_path`` to the runner.

Everything heavy is imported inside the function.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from mlref.export import ExportResult
    from mlref.settings import Settings

logger = logging.getLogger(__name__)

SMALL_USERS = 300
SMALL_DAYS = 60


@dataclass(frozen=True)
class SmallSystem:
    """What the build left behind: where the model is and how long each step took."""

    settings: Settings
    model_path: Path  # ONNX; its card is model.card.json, the native model model.xgb.json
    native_path: Path
    n_events: int
    n_users: int
    train_rows: int
    fit_seconds: float
    timings: dict[str, float]


def build_small_system(settings: Settings, *, seed: int = 0, quick: bool = False) -> SmallSystem:
    """Data -> Feast -> train -> ONNX in ``settings.workdir`` (sizes from ``settings.data``).

    Call it on an empty workdir. Takes ~20-50 s on 2 cores, most of it the Feast import and
    materialize. ``quick=True`` (tests) skips the Feast training frame and ``mlref.train``:
    a small XGBoost model is fitted on the offline reference features
    (``batch_model_features``, the same definitions) and exported with the same parity check;
    the served store is the same real Feast store.
    """
    from mlref.data.generate import generate_transactions, write_parquet
    from mlref.features.store import build_feature_store

    timings: dict[str, float] = {}
    settings.ensure_dirs()
    started = time.perf_counter()
    events = generate_transactions(settings.data)
    write_parquet(events, settings.raw_path)
    timings["generate"] = time.perf_counter() - started
    logger.info("generated %d transactions of %d users", len(events), settings.data.n_users)

    started = time.perf_counter()
    store = build_feature_store(settings, events)
    timings["feature_store"] = time.perf_counter() - started

    if quick:
        return _quick_model(settings, events, timings, seed)

    from mlref.export import export_trained
    from mlref.features.store import training_frame
    from mlref.train import TrainConfig, train

    started = time.perf_counter()
    frame = training_frame(store, events)
    timings["training_frame"] = time.perf_counter() - started

    started = time.perf_counter()
    config = TrainConfig.from_dates(
        frame,
        experiment_name="mlref-load",
        test_days=7,
        val_days=7,
        seed=seed,
        hyperparams=_small_hyperparams(),
    )
    result = train(config, frame)
    timings["train"] = time.perf_counter() - started

    started = time.perf_counter()
    exported = export_trained(result, settings.artifacts_dir, model_name=settings.model_name)
    timings["export"] = time.perf_counter() - started
    logger.info(
        "small system ready in %.1fs: %s",
        sum(timings.values()),
        ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()),
    )
    return _system(settings, exported, events, len(result.split.train), result.fit_seconds, timings)


def _quick_model(
    settings: Settings, events: Any, timings: dict[str, float], seed: int
) -> SmallSystem:
    import xgboost as xgb

    from mlref.export import export_onnx
    from mlref.features.definitions import MODEL_FEATURES
    from mlref.features.offline import batch_model_features

    started = time.perf_counter()
    frame = batch_model_features(events, events)
    labels = events["is_fraud"].to_numpy()
    model = xgb.XGBClassifier(
        n_estimators=30, max_depth=3, learning_rate=0.3, random_state=seed, n_jobs=1
    )
    model.fit(frame[MODEL_FEATURES], labels)
    fit_seconds = time.perf_counter() - started
    timings["train"] = fit_seconds
    started = time.perf_counter()
    exported = export_onnx(
        model,
        settings.artifacts_dir / "model.onnx",
        MODEL_FEATURES,
        parity_data=frame,
        card={"model_name": settings.model_name, "decision": {"threshold": 0.5}, "seed": seed},
    )
    timings["export"] = time.perf_counter() - started
    return _system(settings, exported, events, len(frame), fit_seconds, timings)


def _system(
    settings: Settings,
    exported: ExportResult,
    events: pd.DataFrame,
    train_rows: int,
    fit_seconds: float,
    timings: dict[str, float],
) -> SmallSystem:
    """The record of either build (full or quick): the exported files and the data's size."""
    return SmallSystem(
        settings=settings,
        model_path=exported.onnx_path,
        native_path=exported.native_path,
        n_events=len(events),
        n_users=int(events["user_id"].nunique()),
        train_rows=train_rows,
        fit_seconds=float(fit_seconds),
        timings=timings,
    )


def _small_hyperparams() -> dict[str, Any]:
    from mlref.train.config import DEFAULT_HYPERPARAMS

    params = dict(DEFAULT_HYPERPARAMS)
    params["n_estimators"] = 150  # a realistic tree count for the model benchmark, fast to fit
    return params
