"""Model inputs, computed two ways: in batch for training and one case at a time for serving.

The two paths are written separately on purpose (pandas columns vs. a dict and ``math``),
as they usually are in production; the ``feature_parity`` gate checks that they agree.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from screening.data import KEY, LEAKED_FEATURE, check_defect

PASSTHROUGH: tuple[str, ...] = (
    "mean radius",
    "mean texture",
    "mean smoothness",
    "mean compactness",
    "mean concavity",
    "mean concave points",
    "mean symmetry",
    "mean fractal dimension",
)
DERIVED: tuple[str, ...] = ("log area", "irregularity", "radius spread")


def model_features(defect: str | None = None) -> list[str]:
    """The model's input columns, in order."""
    names = [*PASSTHROUGH, *DERIVED]
    if check_defect(defect) == "leak":
        names.append(LEAKED_FEATURE)
    return names


def batch_features(raw: pd.DataFrame, defect: str | None = None) -> pd.DataFrame:
    """Training path: the key and the model features for every row of ``raw``."""
    out = raw[[KEY, *PASSTHROUGH]].copy()
    area = raw["mean area"].to_numpy(dtype=np.float64)
    perimeter = raw["mean perimeter"].to_numpy(dtype=np.float64)
    out["log area"] = np.log1p(area)
    # 0 for a perfect circle, larger for ragged outlines.
    out["irregularity"] = perimeter**2 / (4.0 * np.pi * area) - 1.0
    out["radius spread"] = raw["worst radius"] / raw["mean radius"]
    if check_defect(defect) == "leak":
        out[LEAKED_FEATURE] = raw[LEAKED_FEATURE]
    return out.reset_index(drop=True)


def row_features(request: Mapping[str, Any], defect: str | None = None) -> dict[str, Any]:
    """Serving path: the key and the model features of one request."""
    defect = check_defect(defect)
    row: dict[str, Any] = {KEY: request[KEY]}
    for name in PASSTHROUGH:
        row[name] = float(request[name])
    area = float(request["mean area"])
    perimeter = float(request["mean perimeter"])
    row["log area"] = math.log(area) if defect == "skew" else math.log1p(area)
    row["irregularity"] = perimeter * perimeter / (4.0 * math.pi * area) - 1.0
    row["radius spread"] = float(request["worst radius"]) / float(request["mean radius"])
    if defect == "leak":
        row[LEAKED_FEATURE] = float(request[LEAKED_FEATURE])
    return row


def online_features(requests: pd.DataFrame, defect: str | None = None) -> pd.DataFrame:
    """The serving path applied to every request, one at a time, as a frame."""
    rows = [row_features(r, defect) for r in requests.to_dict(orient="records")]
    return pd.DataFrame(rows)
