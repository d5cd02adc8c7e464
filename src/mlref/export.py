"""ONNX export of the fraud model, with parity proven on data and a model card beside it.

The exported graph takes one float32 input ``features`` of shape ``[N, n_features]`` in the
FeatureService order and returns ``score`` ``[N]``, the probability of fraud (class 1).

XGBoost 3.x needs two things from the converter (onnxmltools issues 624 and 732): feature
names must look like ``f0..fN`` (a model fitted on a DataFrame dumps its column names, which
the converter cannot read), and ``base_score`` is stored as a vector string ``'[5E-1]'``
(onnxmltools >= 1.16 reads it). The first is handled here by converting a copy of the booster
with its names removed; the names and their order are kept in the graph metadata and in the
model card instead. Neither is trusted: ``export_onnx`` scores the whole test window plus
generated edge inputs (missing values, zeros, extremes, values exactly on split thresholds)
with XGBoost and with ONNX Runtime and refuses the export unless ``model_parity`` passes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import onnx

    from mlgates.result import GateResult
    from mlref.train.fit import TrainResult

log = logging.getLogger(__name__)

INPUT_NAME = "features"
OUTPUT_NAME = "score"
PARITY_ATOL = 1e-5
DEFAULT_OPSET = 17
CARD_SUFFIX = ".card.json"
# What monitoring compares production against, frozen at training time and registered with
# the model: PSI bins fitted on the training window, and the test window's scores.
BINS_FILE = "reference_bins.json"
REFERENCE_SCORES_FILE = "reference_scores.npy"
UNMONITORED_FEATURES = frozenset({"day_of_week"})
NATIVE_SUFFIX = ".xgb.json"


class ExportParityError(RuntimeError):
    """The ONNX model does not reproduce the native model's scores; nothing was written."""

    def __init__(self, result: GateResult, context: str = "") -> None:
        self.result = result
        message = "ONNX export refused: the exported model disagrees with XGBoost.\n"
        message += result.explain()
        if context:
            message += f"\n{context}"
        super().__init__(message)


@dataclass(frozen=True)
class ExportResult:
    onnx_path: Path
    card_path: Path
    native_path: Path
    card: dict[str, Any] = field(repr=False)
    parity: GateResult = field(repr=False)


def _trained_feature_names(model: Any) -> list[str]:
    names = model.get_booster().feature_names
    if not names:
        raise ValueError(
            "the model carries no feature names; train it with mlref.train.train so the "
            "feature order it learned is known"
        )
    return list(names)


def to_onnx(model: Any, feature_names: Sequence[str]) -> onnx.ModelProto:
    """Convert an ``XGBClassifier`` to ONNX with input ``features`` (float32, the columns in
    ``feature_names`` order, as declared: parity is what proves it) and output ``score``."""
    import onnx
    import onnxmltools
    import xgboost as xgb
    from onnx import TensorProto, helper
    from onnxmltools.convert.common.data_types import FloatTensorType

    names = list(feature_names)
    n = len(names)
    booster = model.get_booster()
    if booster.num_features() != n:
        raise ValueError(
            f"the model was trained on {booster.num_features()} features but {n} names were "
            f"given: {names}"
        )
    # onnxmltools reads split features as 'f<index>': convert a copy without names
    clone = xgb.XGBClassifier()
    clone.load_model(bytearray(booster.save_raw("json")))
    clone_booster = clone.get_booster()
    clone_booster.feature_names = None
    clone_booster.feature_types = None
    converted = onnxmltools.convert_xgboost(
        clone,
        name="mlref_fraud",
        initial_types=[(INPUT_NAME, FloatTensorType([None, n]))],
    )
    if not any(o.domain in ("", "ai.onnx") for o in converted.opset_import):
        # the converter only declares ai.onnx.ml; Gather needs the default domain
        converted.opset_import.append(helper.make_opsetid("", DEFAULT_OPSET))
    graph = converted.graph
    probabilities = next(o.name for o in graph.output if o.name != "label")
    column = helper.make_tensor("fraud_column", TensorProto.INT64, dims=[], vals=[1])
    graph.initializer.append(column)
    graph.node.append(
        helper.make_node(
            "Gather", [probabilities, "fraud_column"], [OUTPUT_NAME], axis=1, name="fraud_score"
        )
    )
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, [None]))
    meta = {
        "feature_names": json.dumps(names),
        "output": "P(is_fraud = 1)",
    }
    for key, value in meta.items():
        prop = converted.metadata_props.add()
        prop.key, prop.value = key, value
    onnx.checker.check_model(converted)
    return converted


class OnnxScorer:
    """ONNX Runtime session on the CPU provider with explicit thread counts.

    ``score(x)`` takes float32 ``[N, n_features]`` in the model's input order and returns
    ``[N]`` float32 fraud probabilities.
    """

    def __init__(self, model: str | os.PathLike[str] | bytes, *, intra_op_threads: int = 1):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        source = model if isinstance(model, bytes) else str(model)
        self.session = ort.InferenceSession(
            source, sess_options=options, providers=["CPUExecutionProvider"]
        )
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise ValueError(f"expected one model input, found {[i.name for i in inputs]}")
        self.input_name = inputs[0].name
        self.n_features = int(inputs[0].shape[1])
        meta = self.session.get_modelmeta().custom_metadata_map
        self.feature_names: list[str] | None = (
            json.loads(meta["feature_names"]) if "feature_names" in meta else None
        )

    def score(self, x: np.ndarray) -> np.ndarray:
        arr = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
        if arr.ndim != 2 or arr.shape[1] != self.n_features:
            raise ValueError(
                f"expected float32 [N, {self.n_features}] input, got shape {arr.shape}"
            )
        (out,) = self.session.run([OUTPUT_NAME], {self.input_name: arr})
        return np.asarray(out, dtype=np.float32).reshape(-1)

    def score_frame(self, frame: pd.DataFrame) -> np.ndarray:
        if self.feature_names is None:
            raise ValueError("the ONNX model has no feature_names metadata; use score(array)")
        from mlref.train.fit import feature_matrix

        return self.score(feature_matrix(frame, self.feature_names))


def edge_inputs(model: Any, base: np.ndarray, *, seed: int = 0, max_rows: int = 2000) -> np.ndarray:
    """Inputs that break careless exports, in the model's trained feature order.

    Whole rows of NaN, 0, +-float32 max, +-inf and the smallest subnormal; then, on real
    rows, one feature at a time set to each of those; every split threshold of the trees,
    exactly and one float32 step below (where float64 vs float32 comparisons diverge); and
    random masks of missing values. Deterministic for a given ``seed``.
    """
    rng = np.random.default_rng(seed)
    base = np.asarray(base, dtype=np.float32)
    n_features = base.shape[1]
    f32 = np.finfo(np.float32)
    specials = np.array(
        [np.nan, 0.0, f32.max, -f32.max, np.inf, -np.inf, f32.smallest_subnormal, -1.0],
        dtype=np.float32,
    )
    rows: list[np.ndarray] = [np.full((1, n_features), v, dtype=np.float32) for v in specials]
    anchors = base[rng.choice(base.shape[0], size=min(4, base.shape[0]), replace=False)]
    for anchor in anchors:
        block = np.repeat(anchor[None, :], n_features * specials.size, axis=0)
        for j in range(n_features):
            block[j * specials.size : (j + 1) * specials.size, j] = specials
        rows.append(block)
    splits = model.get_booster().trees_to_dataframe()
    splits = splits[splits["Feature"] != "Leaf"][["Feature", "Split"]].drop_duplicates()
    names = _trained_feature_names(model)
    index = {name: i for i, name in enumerate(names)}
    if not splits.empty:
        cols = splits["Feature"].map(index).to_numpy()
        values = splits["Split"].to_numpy(dtype=np.float32)
        below = np.nextafter(values, np.float32(-np.inf))
        anchor_ids = rng.integers(0, base.shape[0], size=cols.size)
        for vals in (values, below):
            block = base[anchor_ids].copy()
            block[np.arange(cols.size), cols] = vals
            rows.append(block)
    masks = base[rng.integers(0, base.shape[0], size=64)].copy()
    masks[rng.random(masks.shape) < 0.3] = np.nan
    rows.append(masks)
    out = np.vstack(rows)
    if out.shape[0] > max_rows:
        keep = np.r_[
            np.arange(len(specials)),
            rng.choice(
                np.arange(len(specials), out.shape[0]), size=max_rows - len(specials), replace=False
            ),
        ]
        out = out[np.sort(keep)]
    return out


def check_parity(
    model: Any,
    onnx_model: str | os.PathLike[str] | bytes,
    data: pd.DataFrame,
    feature_names: Sequence[str],
    *,
    atol: float = PARITY_ATOL,
    n_threads: int = 1,
    edges: bool = True,
    seed: int = 0,
) -> GateResult:
    """Score ``data`` (plus edge inputs) natively and with ONNX Runtime; run ``model_parity``.

    Native scores read the columns in the order the model was trained on; the ONNX model is
    fed the same rows in the declared ``feature_names`` order, exactly as serving will.
    """
    from mlgates.gates import model_parity
    from mlref.train.fit import feature_matrix, native_scores

    trained = _trained_feature_names(model)
    declared = list(feature_names)
    if sorted(trained) != sorted(declared):
        raise ValueError(
            f"the declared features {declared} are not the features the model was trained on "
            f"{trained}"
        )
    x_native = feature_matrix(data, trained)
    if x_native.shape[0] == 0:
        raise ValueError("check_parity: no rows to compare; pass the test window")
    if edges:
        x_native = np.vstack([x_native, edge_inputs(model, x_native, seed=seed)])
    x_onnx = x_native[:, [trained.index(name) for name in declared]]
    reference = native_scores(model, x_native, n_threads=n_threads)
    candidate = OnnxScorer(onnx_model, intra_op_threads=n_threads).score(x_onnx)
    result = model_parity(reference, candidate, atol=atol)
    log.info("parity on %d rows (%d from data): %s", x_native.shape[0], len(data), result.verdict)
    return result


def _order_context(trained: list[str], declared: list[str]) -> str:
    if trained == declared:
        return ""
    moved = [
        f"{name} (trained #{trained.index(name)}, declared #{i})"
        for i, name in enumerate(declared)
        if trained[i] != name
    ]
    return (
        "The declared feature order differs from the order the model was trained on: "
        + ", ".join(moved)
        + ". Export with the training order (TrainResult.feature_names)."
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for package in ("xgboost", "onnx", "onnxmltools", "onnxruntime", "numpy"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:  # pragma: no cover
            out[package] = "unknown"
    return out


def export_onnx(
    model: Any,
    path: str | os.PathLike[str],
    feature_names: Sequence[str],
    *,
    parity_data: pd.DataFrame,
    card: Mapping[str, Any] | None = None,
    atol: float = PARITY_ATOL,
    n_threads: int = 1,
) -> ExportResult:
    """Write ``path`` (.onnx), the native model (``.xgb.json``) and the model card
    (``.card.json``) beside it, only if parity holds on ``parity_data`` plus edge inputs.

    Raises ``ExportParityError`` (with the gate's explanation) otherwise; nothing is left at
    ``path`` then.
    """
    target = Path(path)
    if target.suffix != ".onnx":
        raise ValueError(f"export path must end in .onnx, got {target}")
    target.parent.mkdir(parents=True, exist_ok=True)
    declared = list(feature_names)
    trained = _trained_feature_names(model)
    converted = to_onnx(model, declared)
    payload = converted.SerializeToString()
    parity = check_parity(model, payload, parity_data, declared, atol=atol, n_threads=n_threads)
    if not parity.passed:
        if target.exists():
            target.unlink()
        raise ExportParityError(parity, _order_context(trained, declared))
    tmp = target.with_suffix(".onnx.tmp")
    tmp.write_bytes(payload)
    tmp.replace(target)
    native_path = target.with_suffix(NATIVE_SUFFIX)
    model.get_booster().save_model(str(native_path))
    full_card: dict[str, Any] = {
        **dict(card or {}),
        "feature_names": declared,
        "input": {"name": INPUT_NAME, "dtype": "float32", "shape": [None, len(declared)]},
        "output": {
            "name": OUTPUT_NAME,
            "dtype": "float32",
            "shape": [None],
            "meaning": "probability of fraud (class 1)",
        },
        "onnx_file": target.name,
        "onnx_sha256": _sha256(target),
        "native_file": native_path.name,
        "opsets": {o.domain or "ai.onnx": o.version for o in converted.opset_import},
        "parity": parity.to_dict(),
        "versions": _versions(),
        "exported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    card_path = target.with_suffix(CARD_SUFFIX)
    card_path.write_text(json.dumps(full_card, indent=2, sort_keys=True, default=str))
    log.info("exported %s (+ %s, %s)", target, card_path.name, native_path.name)
    return ExportResult(
        onnx_path=target,
        card_path=card_path,
        native_path=native_path,
        card=full_card,
        parity=parity,
    )


def model_card(result: TrainResult, *, model_name: str = "mlref-fraud") -> dict[str, Any]:
    """What a reader of the registry needs to know about a trained model."""
    config = result.config
    return {
        "model_name": model_name,
        "model_type": config.model_type,
        "feature_service": config.feature_service,
        "data_version": config.data_version,
        "seed": config.seed,
        "decision": {
            "threshold": result.threshold.value,
            "rule": "review when score >= threshold",
            **result.threshold.to_dict(),
            "policy": config.to_dict()["policy"],
        },
        "metrics": {"test": result.test.metrics, "validation": result.validation.metrics},
        "slices": result.test.slices,
        "windows": result.split_summary,
        "best_iteration": result.best_iteration,
        "n_trees": result.n_trees,
        "training_config": config.to_dict(),
    }


def export_trained(
    result: TrainResult,
    out_dir: str | os.PathLike[str],
    *,
    model_name: str = "mlref-fraud",
    atol: float = PARITY_ATOL,
) -> ExportResult:
    """Export a ``TrainResult`` to ``out_dir/model.onnx`` with its card; parity is checked on
    the result's whole test window."""
    export = export_onnx(
        result.model,
        Path(out_dir) / "model.onnx",
        result.feature_names,
        parity_data=result.split.test,
        card=model_card(result, model_name=model_name),
        atol=atol,
        n_threads=result.config.n_threads,
    )
    write_monitoring_reference(result, Path(out_dir))
    return export


def write_monitoring_reference(result: TrainResult, out_dir: Path) -> tuple[Path, Path]:
    """Freeze the drift reference beside the model: PSI bins of the training window and the
    test window's scores, so CI and production monitoring bin and compare the same way."""
    import numpy as np

    from mlgates import FrozenBins

    # day_of_week is left out: a serving window shorter than a week always "drifts" on it
    features = [f for f in result.feature_names if f not in UNMONITORED_FEATURES]
    bins_path = FrozenBins.fit(result.split.train[features], features).save(out_dir / BINS_FILE)
    scores_path = out_dir / REFERENCE_SCORES_FILE
    np.save(scores_path, result.scores(result.split.test).astype(np.float64))
    return bins_path, scores_path


def read_card(onnx_path: str | os.PathLike[str]) -> dict[str, Any]:
    """The model card written beside an exported ``.onnx``."""
    card_path = Path(onnx_path).with_suffix(CARD_SUFFIX)
    if not card_path.exists():
        raise FileNotFoundError(f"no model card beside {onnx_path} (expected {card_path})")
    data: dict[str, Any] = json.loads(card_path.read_text())
    return data
