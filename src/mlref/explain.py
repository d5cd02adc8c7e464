"""``mlref explain TRANSACTION_ID``: one served prediction, step by step (infra-5).

From the prediction log row of the transaction: the request as the server received it, each
model input as it was served with where it came from (the request itself through a transform,
or a Feast online view's field; ``mlref.features.definitions``), the per-feature contributions
to the score (XGBoost's ``pred_contribs``, exact TreeSHAP values of the registered native
model ``model.xgb.json``: additive on the margin) and the bias, the threshold and the
decision. The user's current online-store row and its write time are shown when the store
is available: the state has usually moved on since the request, which the times say.

The contributions are only worth reading if they explain the score that was served:
``explanation_consistency`` checks that contributions + bias reproduce the margin of the
served ONNX model on the logged inputs (``onnx_margins``: the same graph with its sigmoid
switched off), and that margin's sigmoid reproduces the logged score. Why not the logit of
the logged probability: ONNX Runtime's tree-ensemble sigmoid is an approximation good to
~1e-7 in probability, which at a fraud score of 5e-4 moves the logit by ~1e-4 (measured on
the reference champion: native and ONNX margins agree within 2e-6, the logit of the served
score is off by up to 1.3e-4). ``mlref explain`` prints both checks with every explanation.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from mlgates.result import GateResult
    from mlref.settings import Settings

__all__ = [
    "Explanation",
    "FeatureExplanation",
    "contributions",
    "explain_rows",
    "explain_transaction",
    "margins",
    "model_dir",
    "onnx_margins",
]

# |sigmoid(ONNX margin) - served score| above this: the logged inputs are not what was
# scored (ONNX Runtime's sigmoid approximation stays within ~1e-7; model_parity's 1e-5)
SCORE_TOLERANCE = 1e-6

# the request fields as logged (mlref.serve.predlog); the rest of a log row is the answer
REQUEST_FIELDS: tuple[str, ...] = (
    "transaction_id",
    "user_id",
    "amount",
    "merchant_category",
    "event_timestamp",
)


@dataclass(frozen=True)
class FeatureExplanation:
    """One model input: the value served, where it came from, what it added to the margin."""

    name: str
    value: float | None  # None where the input was missing (the model's NaN branch)
    source: str  # "<request source or view>.<field>, ..." (definitions.MODEL_FEATURE_SOURCES)
    meaning: str
    contribution: float


@dataclass(frozen=True)
class Explanation:
    """One served prediction, explained."""

    transaction_id: str
    request: dict[str, Any]
    model_version: str
    score: float
    threshold: float
    decision: bool
    unknown_user: bool
    features: tuple[FeatureExplanation, ...]
    bias: float
    served_margin: float  # the ONNX model's margin on the logged inputs
    reproduced_score: float  # its sigmoid: what the served score must be
    consistency: GateResult
    online_row: dict[str, Any] | None = None  # the user's row in the online store now

    @property
    def explained_margin(self) -> float:
        return self.bias + math.fsum(f.contribution for f in self.features)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["consistency"] = self.consistency.to_dict()
        out["explained_margin"] = self.explained_margin
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, default=str)

    def summary(self) -> str:
        req = self.request
        lines = [
            f"transaction {self.transaction_id}: user {req.get('user_id')}, amount "
            f"{req.get('amount')}, {req.get('merchant_category')}, at {req.get('event_timestamp')}"
            + (" (unknown user: default state)" if self.unknown_user else ""),
            f"model version {self.model_version}: score {self.score:.6g}, threshold "
            f"{self.threshold:.6g} -> {'REVIEW' if self.decision else 'approve'}",
            f"margin {self.served_margin:+.6f} = bias {self.bias:+.6f} + contributions "
            "(largest first):",
        ]
        width = max(len(f.name) for f in self.features)
        for f in sorted(self.features, key=lambda f: -abs(f.contribution)):
            shown = "missing" if f.value is None else f"{f.value:.6g}"
            lines.append(
                f"  {f.name:<{width}}  {f.contribution:+.6f}  value {shown:<12} from {f.source}"
            )
        if self.online_row is not None:
            row = ", ".join(f"{k}={v}" for k, v in self.online_row.items())
            lines.append(f"online store now: {row}")
        lines.append(self.consistency.explain())
        off = abs(self.reproduced_score - self.score)
        lines.append(
            f"served score reproduced from the logged inputs: {self.reproduced_score:.9g} "
            f"(off by {off:.2g}; {'ok' if off <= SCORE_TOLERANCE else 'NOT what was served'})"
        )
        return "\n".join(lines)

    @property
    def consistent(self) -> bool:
        """The explanation adds up to the served margin, which reproduces the served score."""
        return self.consistency.passed and abs(self.reproduced_score - self.score) <= (
            SCORE_TOLERANCE
        )


def model_dir(settings: Settings, version: str) -> Path:
    """The registered artefacts of model ``version`` (ONNX, card, native model), local."""
    from mlflow.artifacts import download_artifacts

    from mlref.registry import Registry

    registry = Registry(settings)
    uri = registry.client.get_model_version_download_uri(registry.name, version)
    if uri.startswith("file://") or uri.startswith("/"):
        from urllib.parse import urlparse
        from urllib.request import url2pathname

        local = Path(url2pathname(urlparse(uri).path))
        if local.is_dir():
            return local
    target = settings.artifacts_dir / "registry" / f"v{version}"
    target.mkdir(parents=True, exist_ok=True)
    return Path(
        download_artifacts(artifact_uri=uri, dst_path=str(target), tracking_uri=registry.uri)
    )


def contributions(
    native_model: str | Path, rows: np.ndarray, feature_names: Sequence[str]
) -> np.ndarray:
    """XGBoost ``pred_contribs`` of ``rows`` (float32 model inputs, NaN = missing): one column
    per feature, then the bias; each row sums to the model's margin."""
    import numpy as np
    import xgboost as xgb

    booster = xgb.Booster()
    booster.load_model(str(native_model))
    matrix = xgb.DMatrix(
        np.asarray(rows, dtype=np.float32), feature_names=list(feature_names), missing=np.nan
    )
    return np.asarray(booster.predict(matrix, pred_contribs=True), dtype=np.float64)


def margins(scores: np.ndarray) -> np.ndarray:
    """The logit of probabilities, in float64 (for comparison only: see the module
    docstring for why the served margin is not read this way)."""
    import numpy as np

    p = np.asarray(scores, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.log(p) - np.log1p(-p)


def onnx_margins(onnx_model: str | Path, rows: np.ndarray) -> np.ndarray:
    """The served ONNX model's margin (log-odds of fraud) for ``rows``: the same graph with
    the tree ensemble's LOGISTIC post-transform switched off, run by ONNX Runtime."""
    import numpy as np
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(onnx_model))
    ensembles = [n for n in model.graph.node if n.op_type.startswith("TreeEnsemble")]
    if len(ensembles) != 1:
        raise ValueError(f"{onnx_model}: expected one tree ensemble node, found {len(ensembles)}")
    transform = [a for a in ensembles[0].attribute if a.name == "post_transform"]
    if not transform or transform[0].s != b"LOGISTIC":
        raise ValueError(f"{onnx_model}: the tree ensemble's output is not a logistic of a margin")
    transform[0].s = b"NONE"
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.ascontiguousarray(rows, dtype=np.float32)
    (out,) = session.run([session.get_outputs()[0].name], {session.get_inputs()[0].name: x})
    out = np.asarray(out, dtype=np.float64)
    return out[:, 1] if out.ndim == 2 else out.reshape(-1)


def _model_inputs(rows: pd.DataFrame, feature_names: Sequence[str]) -> np.ndarray:
    """The float32 matrix the server fed the model, from the logged inputs (NaN = missing)."""
    import numpy as np

    missing = [n for n in feature_names if n not in rows.columns]
    if missing:
        raise ValueError(
            f"the prediction log rows lack model inputs {missing}: the server logs every input"
        )
    return rows[list(feature_names)].to_numpy(np.float64).astype(np.float32)


def explain_rows(
    rows: pd.DataFrame,
    native_model: str | Path,
    onnx_model: str | Path,
    feature_names: Sequence[str],
    *,
    tolerance: float = 1e-5,
    online_rows: Sequence[dict[str, Any] | None] | None = None,
) -> list[Explanation]:
    """Explain prediction log rows (``read_log`` frame) served by the model whose native and
    ONNX files are ``native_model``/``onnx_model``, inputs ``feature_names`` (card order)."""
    import numpy as np

    from mlgates.gates.explanation import explanation_consistency
    from mlref.features.definitions import MODEL_FEATURE_DESCRIPTIONS, MODEL_FEATURE_SOURCES

    x = _model_inputs(rows, feature_names)
    contrib = contributions(native_model, x, feature_names)
    served = onnx_margins(onnx_model, x)
    reproduced = 1.0 / (1.0 + np.exp(-served))
    out: list[Explanation] = []
    for i, (_, row) in enumerate(rows.iterrows()):
        check = explanation_consistency(
            contrib[i : i + 1], served[i : i + 1], link="identity", tolerance=tolerance
        )
        feats = tuple(
            FeatureExplanation(
                name=name,
                value=None if math.isnan(float(x[i, j])) else float(x[i, j]),
                source=MODEL_FEATURE_SOURCES.get(name, "(no source declared)"),
                meaning=MODEL_FEATURE_DESCRIPTIONS.get(name, ""),
                contribution=float(contrib[i, j]),
            )
            for j, name in enumerate(feature_names)
        )
        request = {k: _plain(row[k]) for k in REQUEST_FIELDS if k in row.index}
        out.append(
            Explanation(
                transaction_id=str(row["transaction_id"]),
                request=request,
                model_version=str(row["model_version"]),
                score=float(row["score"]),
                threshold=float(row["threshold"]),
                decision=bool(row["decision"]),
                unknown_user=bool(row.get("unknown_user", False)),
                features=feats,
                bias=float(contrib[i, -1]),
                served_margin=float(served[i]),
                reproduced_score=float(reproduced[i]),
                consistency=check,
                online_row=None if online_rows is None else online_rows[i],
            )
        )
    return out


def _plain(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):
        return value.item()
    return value


def online_row(settings: Settings, user_id: int) -> dict[str, Any] | None:
    """The user's stored state in the online store now, with the time each view's row was
    written; None when the store cannot be opened (explaining must not need it)."""
    import numpy as np

    from mlref.features.store import open_feature_store, read_online_state

    if not (settings.feature_repo / "feature_store.yaml").is_file():
        return None
    store = open_feature_store(settings)
    now = np.array([np.datetime64("now", "ns").astype(np.int64)], dtype=np.int64)
    state = read_online_state(store, np.array([user_id], dtype=np.int64), now)
    return {k: _plain(v) for k, v in state.iloc[0].items()}


def explain_transaction(
    settings: Settings, transaction_id: str, *, with_online_row: bool = True
) -> Explanation:
    """The last logged prediction of ``transaction_id``, explained with the model version
    that served it."""
    from mlref.monitor.log import read_log
    from mlref.registry import CARD_FILE, NATIVE_FILE, ONNX_FILE

    frame = read_log(settings.prediction_log)
    rows = frame.loc[frame["transaction_id"].astype(str) == str(transaction_id)]
    if rows.empty:
        raise LookupError(
            f"transaction {transaction_id!r} is not in the prediction log "
            f"{settings.prediction_log} ({len(frame)} rows)"
        )
    rows = rows.tail(1)
    version = str(rows["model_version"].iloc[0])
    directory = model_dir(settings, version)
    card = json.loads((directory / CARD_FILE).read_text())
    names = list(card["feature_names"])
    extra = None
    if with_online_row:
        extra = [online_row(settings, int(rows["user_id"].iloc[0]))]
    (explanation,) = explain_rows(
        rows, directory / NATIVE_FILE, directory / ONNX_FILE, names, online_rows=extra
    )
    return explanation
