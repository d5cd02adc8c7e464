"""Batch scoring (the seed's batch pattern) and the staleness gate that keeps it honest.

``score_batch`` scores every active user with point-in-time features at ``as_of`` and stamps
each prediction with ``as_of``, ``generated_at`` and the model version. ``staleness_gate``
fails predictions older than a freshness budget: a batch computed at midnight describes the
users as they were at midnight, and by noon their behaviour has moved on.

The age of a prediction is measured from the *older* of ``as_of`` (the moment its features
describe) and ``generated_at`` (when it was computed): re-running last week's ``as_of`` today
does not make the predictions fresh.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from mlgates.result import GateResult

logger = logging.getLogger(__name__)

BATCH_COLUMNS: tuple[str, ...] = (
    "user_id",
    "as_of",
    "score",
    "model_version",
    "generated_at",
)
DEFAULT_ACTIVE_WINDOW = timedelta(days=30)

FeatureFn = Callable[["pd.DataFrame"], "pd.DataFrame"]


def _utc(value: datetime | pd.Timestamp | str, name: str) -> pd.Timestamp:
    import pandas as pd

    stamp = pd.Timestamp(value)
    if stamp.tzinfo is None:
        raise ValueError(f"{name}={value!r} has no timezone; pass a UTC-aware time")
    return stamp.tz_convert("UTC")


def active_users(
    events: pd.DataFrame, as_of: datetime | pd.Timestamp | str, window: timedelta
) -> pd.DataFrame:
    """Users with at least one event in ``(as_of - window, as_of]``, sorted by user id."""
    import pandas as pd

    missing = sorted({"user_id", "event_timestamp"} - set(events.columns))
    if missing:
        raise ValueError(f"events lack columns {missing}")
    t = _utc(as_of, "as_of")
    ts = pd.to_datetime(events["event_timestamp"], utc=True)
    live = events.loc[(ts <= t) & (ts > t - window), "user_id"]
    users = sorted(live.drop_duplicates().astype("int64").tolist())
    return pd.DataFrame({"user_id": pd.Series(users, dtype="int64")})


def _predict(model: Any, features: pd.DataFrame) -> np.ndarray:
    """Scores from a model: ``predict_proba`` (positive class), else ``predict``, else call."""
    import numpy as np

    if hasattr(model, "predict_proba"):
        out = np.asarray(model.predict_proba(features), dtype="float64")
        if out.ndim == 2:
            out = out[:, -1]
    elif hasattr(model, "predict"):
        out = np.asarray(model.predict(features), dtype="float64")
    elif callable(model):
        out = np.asarray(model(features), dtype="float64")
    else:
        raise TypeError(
            "model must have predict_proba(frame) or predict(frame), or be a callable "
            f"frame -> scores; got {type(model).__name__}"
        )
    return out.reshape(-1)


def frame_scorer(
    onnx_path: str | Path, feature_names: Sequence[str] | None = None
) -> Callable[[pd.DataFrame], np.ndarray]:
    """``frame -> scores`` for a batch score: the model's inputs taken from the frame by name
    (in ``feature_names`` order: the model card's, ``MODEL_FEATURES`` when not given), scored
    by ``mlref.serve.predictor.large_batch_model``: native XGBoost at and above the measured
    crossover (a batch score is thousands of rows, where the native model is faster per row
    than ONNX Runtime), ONNX Runtime below it."""
    from mlref.features.definitions import MODEL_FEATURES
    from mlref.serve.predictor import large_batch_model

    names = list(feature_names or MODEL_FEATURES)
    model = large_batch_model(onnx_path, names)

    def score(frame: pd.DataFrame) -> np.ndarray:
        missing = [n for n in names if n not in frame.columns]
        if missing:
            raise ValueError(f"the batch features lack the model inputs {missing}")
        return model.predict(frame[names].to_numpy(dtype="float32"))

    return score


def score_batch(
    entities: pd.DataFrame | Sequence[int],
    as_of: datetime | pd.Timestamp | str,
    feature_fn: FeatureFn,
    model: Any,
    model_version: str,
    *,
    active_window: timedelta = DEFAULT_ACTIVE_WINDOW,
    threshold: float | None = None,
    generated_at: datetime | pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Score every active user at ``as_of`` with point-in-time features.

    ``entities`` is either the event log (``user_id``, ``event_timestamp``; users with an
    event in the ``active_window`` before ``as_of`` are scored) or the user ids to score.
    ``feature_fn(entity_df)`` gets ``user_id`` and ``event_timestamp`` (= ``as_of`` for every
    row) and returns the model inputs, one row per entity row in the same order (a
    ``user_id`` column, if returned, is checked against the input and dropped). ``model`` has
    ``predict_proba`` / ``predict`` or is a callable frame -> scores. Returns
    :data:`BATCH_COLUMNS` (plus ``decision`` when ``threshold`` is given), sorted by user.
    """
    import numpy as np
    import pandas as pd

    t = _utc(as_of, "as_of")
    if not model_version:
        raise ValueError("model_version is required: every batch prediction names its model")
    if isinstance(entities, pd.DataFrame) and "event_timestamp" in entities.columns:
        users = active_users(entities, t, active_window)
    elif isinstance(entities, pd.DataFrame):
        if "user_id" not in entities.columns:
            raise ValueError("entities frame needs a user_id column")
        users = pd.DataFrame(
            {"user_id": np.sort(entities["user_id"].drop_duplicates().to_numpy("int64"))}
        )
    else:
        users = pd.DataFrame({"user_id": np.unique(np.asarray(list(entities), dtype="int64"))})

    generated = _utc(generated_at, "generated_at") if generated_at is not None else None
    if users.empty:
        logger.warning("no active users at %s: empty batch", t.isoformat())
        out = pd.DataFrame({c: [] for c in BATCH_COLUMNS})
        return out

    entity_df = users.assign(event_timestamp=t)
    logger.info("scoring %d users as of %s", len(entity_df), t.isoformat())
    features = feature_fn(entity_df.copy())
    if len(features) != len(entity_df):
        raise ValueError(
            f"feature_fn returned {len(features)} rows for {len(entity_df)} users; it must "
            "return one row per entity row, in order"
        )
    features = features.reset_index(drop=True)
    if "user_id" in features.columns:
        if not np.array_equal(features["user_id"].to_numpy("int64"), users["user_id"].to_numpy()):
            raise ValueError("feature_fn returned rows in a different user order than given")
        features = features.drop(columns=["user_id"])
    features = features.drop(columns=[c for c in ("event_timestamp",) if c in features])
    scores = _predict(model, features)
    if len(scores) != len(users):
        raise ValueError(f"model returned {len(scores)} scores for {len(users)} rows")
    if not np.isfinite(scores).all():
        raise ValueError("model returned non-finite scores; check the features for NaN")

    stamp = generated if generated is not None else pd.Timestamp.now(tz="UTC")
    out = pd.DataFrame(
        {
            "user_id": users["user_id"].to_numpy(),
            "as_of": t,
            "score": scores,
            "model_version": str(model_version),
            "generated_at": stamp,
        }
    )
    if threshold is not None:
        out["decision"] = out["score"] >= threshold
    return out


def staleness_gate(
    predictions: pd.DataFrame,
    now: datetime | pd.Timestamp | str,
    max_age: timedelta,
) -> GateResult:
    """Fail batch predictions older than ``max_age`` at ``now`` (``mlgates.freshness``).

    Age runs from the older of ``as_of`` and ``generated_at`` per row (see module doc).
    """
    import pandas as pd

    from mlgates import freshness
    from mlgates.result import GateInputError

    if "generated_at" not in predictions.columns:
        raise GateInputError(
            "batch predictions lack generated_at; produce them with mlref.batch.score_batch"
        )
    if predictions.empty:
        raise GateInputError("no batch predictions to check; run score-batch first")
    stamps = pd.to_datetime(predictions["generated_at"], utc=True)
    if "as_of" in predictions.columns:
        as_of = pd.to_datetime(predictions["as_of"], utc=True)
        stamps = stamps.where(stamps <= as_of, as_of)
    return freshness(stamps, as_of=_utc(now, "now"), max_age=max_age)


NO_CATEGORY = "__none__"  # the batch request's merchant category: none of CATEGORIES


def batch_features(
    rows: pd.DataFrame | None, entity_df: pd.DataFrame, *, events: pd.DataFrame | None = None
) -> pd.DataFrame:
    """MODEL_FEATURES of a batch score (what ``mlref score-batch`` and the Spark scorer use).

    A batch score has no transaction: the stored state as of each entity row's
    ``event_timestamp`` (``as_of``; point in time with the views' TTLs, from the offline
    store's stored ``rows`` or from raw ``events``), with a zero-amount request in no known
    merchant category at that time.
    """
    from mlref.features.definitions import MODEL_FEATURES
    from mlref.features.offline import point_in_time_features, transform_inputs
    from mlref.features.transforms import request_features

    state = point_in_time_features(events, entity_df, rows=rows)
    request = entity_df.assign(amount=0.0, merchant_category=NO_CATEGORY)
    return request_features(transform_inputs(request, state))[list(MODEL_FEATURES)]
