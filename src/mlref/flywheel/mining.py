"""Hard-example mining: the logged predictions the deployed model was least sure about.

"Least sure" is measured against the decision threshold the model was *deployed with* (the
``threshold`` column of each log row), not a hard-coded 0.5: a fraud model whose threshold is
0.08 is most uncertain at 0.08. The distance is taken on the logit scale,
``|logit(score) - logit(threshold)|``, because probabilities near a small threshold are
crowded together: 0.04 and 0.16 are both a factor of ~2 in odds from 0.08 and rank as equally
uncertain, while on the probability scale 0.16 would look twice as far away. A distance of 0
is a coin flip at the operating point; the queue serves the smallest distances first.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

logger = logging.getLogger(__name__)

# scores are clipped to [EPS, 1 - EPS] before the logit so 0 and 1 stay finite
EPS = 1e-6
HARD_EXAMPLE_COLUMNS: tuple[str, ...] = (
    "transaction_id",
    "request_id",
    "user_id",
    "event_timestamp",
    "ts",
    "score",
    "threshold",
    "decision",
    "model_version",
    "uncertainty",
    "features",
)


def logit_distance(scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """``|logit(score) - logit(threshold)|`` with both clipped to [EPS, 1 - EPS]."""
    import numpy as np

    s = np.clip(np.asarray(scores, dtype="float64"), EPS, 1.0 - EPS)
    t = np.clip(np.asarray(thresholds, dtype="float64"), EPS, 1.0 - EPS)
    return np.abs((np.log(s) - np.log1p(-s)) - (np.log(t) - np.log1p(-t)))


def mine_hard_examples(
    log_frame: pd.DataFrame,
    k: int | None = 100,
    max_distance: float | None = None,
) -> pd.DataFrame:
    """The ``k`` logged predictions nearest the deployed threshold, most uncertain first.

    ``log_frame`` is a frame from :func:`mlref.monitor.read_log`. A transaction logged more
    than once (client retries) counts once, with its latest request. ``max_distance`` keeps
    only rows within that logit distance. The ``features`` column holds the model inputs as
    a JSON object so a reviewer sees what the model saw. Ties are broken by request time then
    transaction id, so the order is deterministic.
    """
    import pandas as pd

    from mlref.monitor.log import feature_columns

    required = {"transaction_id", "score", "threshold", "ts"}
    missing = sorted(required - set(log_frame.columns))
    if missing:
        raise ValueError(f"log frame lacks columns {missing}; read it with mlref.monitor.read_log")
    if k is not None and k <= 0:
        raise ValueError(f"k must be a positive number of examples or None, got {k}")
    if max_distance is not None and max_distance < 0:
        raise ValueError(f"max_distance must be >= 0, got {max_distance}")
    if log_frame.empty:
        return pd.DataFrame({c: [] for c in HARD_EXAMPLE_COLUMNS})
    bad = log_frame["threshold"].isna() | ~log_frame["threshold"].between(0, 1)
    if bad.any():
        raise ValueError(
            f"{int(bad.sum())} log rows have no usable threshold (must be in [0, 1]); "
            "the server must log the threshold it decided with"
        )

    frame = log_frame.sort_values(["ts", "request_id"] if "request_id" in log_frame else ["ts"])
    frame = frame.drop_duplicates("transaction_id", keep="last").copy()
    frame = frame[frame["score"].notna()]
    frame["uncertainty"] = logit_distance(frame["score"].to_numpy(), frame["threshold"].to_numpy())
    if max_distance is not None:
        frame = frame[frame["uncertainty"] <= max_distance]
    frame = frame.sort_values(["uncertainty", "ts", "transaction_id"], kind="mergesort")
    if k is not None:
        frame = frame.head(k)

    feats = feature_columns(log_frame)
    frame["features"] = (
        [
            json.dumps({name: _json_number(v) for name, v in rec.items()})
            for rec in frame[feats].to_dict("records")
        ]
        if feats
        else ["{}"] * len(frame)
    )
    for col in HARD_EXAMPLE_COLUMNS:
        if col not in frame.columns:
            frame[col] = None
    logger.info(
        "mined %d hard examples (max logit distance %.3g)",
        len(frame),
        float(frame["uncertainty"].max()) if len(frame) else float("nan"),
    )
    return frame.loc[:, list(HARD_EXAMPLE_COLUMNS)].reset_index(drop=True)


def _json_number(value: object) -> float | None:
    number = float(value)  # type: ignore[arg-type]
    return None if number != number else number
