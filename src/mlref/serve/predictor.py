"""The model side of serving: an ONNX Runtime session and the per-batch scoring function.

``Model`` is the small protocol the server needs (``predict(x) -> fraud probability``);
``OnnxModel`` is the real one. ``ServedModel`` adds what the model card says about it
(version, decision threshold, input order). ``Scorer.score_batch`` is what the batcher runs
in its worker thread: one feature lookup and one model call for the whole batch.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from mlref.serve.features import FeatureSource, check_features, request_batch

if TYPE_CHECKING:
    import numpy as np

    from mlref.serve.schemas import Transaction
    from mlref.settings import Settings

logger = logging.getLogger(__name__)


@runtime_checkable
class Model(Protocol):
    def predict(self, x: np.ndarray) -> np.ndarray:
        """Fraud probability for each row of a float32 (n, k) matrix."""
        ...


class OnnxModel:
    """An ONNX Runtime session on the CPU with explicit thread settings.

    ``intra_op_threads=1`` by default: the server scores one batch at a time and a batch of a
    few dozen rows of a small tree model does not gain from more threads, while extra threads
    compete with the event loop for the same cores.
    """

    def __init__(self, path: str | Path, *, intra_op_threads: int = 1) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"ONNX model not found: {self.path}")
        if intra_op_threads < 1:
            raise ValueError(f"intra_op_threads must be >= 1, got {intra_op_threads}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.session = ort.InferenceSession(
            str(self.path), options, providers=["CPUExecutionProvider"]
        )
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise ValueError(
                f"{self.path}: expected one input tensor (n, k), found {[i.name for i in inputs]}"
            )
        self.input_name = inputs[0].name
        width = inputs[0].shape[1] if len(inputs[0].shape) == 2 else None
        self.n_features: int | None = width if isinstance(width, int) else None
        self._output = self._probability_output()

    def _probability_output(self) -> str:
        outputs = self.session.get_outputs()
        for out in outputs:
            if out.name == "probabilities":
                return out.name
        floats = [o for o in outputs if o.type == "tensor(float)"]
        if not floats:
            raise ValueError(
                f"{self.path}: no float output to read a probability from "
                f"(outputs: {[(o.name, o.type) for o in outputs]})"
            )
        return floats[-1].name

    def predict(self, x: np.ndarray) -> np.ndarray:
        import numpy as np

        x = np.ascontiguousarray(x, dtype=np.float32)
        if self.n_features is not None and (x.ndim != 2 or x.shape[1] != self.n_features):
            raise ValueError(f"model expects (n, {self.n_features}) inputs, got {x.shape}")
        (out,) = self.session.run([self._output], {self.input_name: x})
        out = np.asarray(out)
        if out.ndim == 2 and out.shape[1] == 2:
            return out[:, 1].astype(np.float64)  # P(class 1 = fraud)
        if out.ndim == 2 and out.shape[1] == 1:
            return out[:, 0].astype(np.float64)
        if out.ndim == 1:
            return out.astype(np.float64)
        raise ValueError(f"{self.path}: cannot read a probability from output shape {out.shape}")


# Rows per call from which native XGBoost (``inplace_predict``) scores faster per row than
# ONNX Runtime's tree ensemble, both on one thread, 400 trees of depth 5: measured by
# benchmarks/bench_model.py (``nox -s perf``; benchmarks/results/perf.md). ONNX Runtime is
# 1.1-1.4x faster at 64 rows; native is faster from 256 rows (0.87x ONNX's time there, within
# the noise of a shared machine) and clearly from 512 (0.4-0.6x at 512-4096). Set at 512, the
# first size where the gap is larger than the noise. Below it ONNX Runtime scores (the
# serving path's small batches), at and above it the native model does, with the same scores
# (tests/mlref/serve/test_crossover.py proves parity at and above this size). Two ONNX
# Runtime intra-op threads did not close the gap on 2 cores (0.4-0.5x native at 512-1024).
NATIVE_FROM_ROWS = 512


class CrossoverModel:
    """ONNX Runtime below ``native_from_rows`` rows per call, native XGBoost at and above.

    ``feature_names`` is the ONNX input order (the model card's). The native model must have
    been trained on exactly these columns in this order (export writes both from one fit):
    otherwise it is refused, not reordered, because a score must never depend on the batch
    size (were the card's order wrong, ONNX would read it by position and a by-name native
    path would not, and the same transaction would score differently at 511 and 512 rows).
    The native model is loaded on the first large call: a server whose batches never reach
    the crossover (``max_batch_size`` 64 by default) never imports XGBoost.
    """

    def __init__(
        self,
        onnx: OnnxModel,
        native_path: str | Path,
        feature_names: tuple[str, ...] | list[str],
        *,
        native_from_rows: int = NATIVE_FROM_ROWS,
        n_threads: int = 1,
    ) -> None:
        if native_from_rows < 1:
            raise ValueError(f"native_from_rows must be >= 1, got {native_from_rows}")
        self.native_path = Path(native_path)
        if not self.native_path.is_file():
            raise FileNotFoundError(f"native model not found: {self.native_path}")
        self.onnx = onnx
        self.feature_names = list(feature_names)
        self.native_from_rows = native_from_rows
        self.n_threads = n_threads
        self.n_features = onnx.n_features
        self._booster: Any = None

    def crosses_over(self, n_rows: int) -> bool:
        """True when a call of ``n_rows`` rows is scored by the native model."""
        return n_rows >= self.native_from_rows

    def _native(self) -> Any:
        if self._booster is None:
            self._booster = native_booster(
                self.native_path, self.feature_names, n_threads=self.n_threads
            )
        return self._booster

    def predict(self, x: np.ndarray) -> np.ndarray:
        if len(x) < self.native_from_rows:
            return self.onnx.predict(x)
        return native_predict(self._native(), x, len(self.feature_names))


def native_booster(
    source: str | Path | bytes, feature_names: Sequence[str], *, n_threads: int = 1
) -> Any:
    """The native XGBoost model from its file (or the file's bytes, as the Spark scorer ships
    it to executors), on ``n_threads`` threads, refused unless it was trained on exactly
    ``feature_names`` in this order (see :class:`CrossoverModel`)."""
    import xgboost as xgb

    booster = xgb.Booster()
    booster.load_model(bytearray(source) if isinstance(source, bytes) else str(source))
    booster.set_param({"nthread": n_threads})
    trained = booster.feature_names
    if trained is None or list(trained) != list(feature_names):
        where = "the shipped native model" if isinstance(source, bytes) else str(source)
        raise ValueError(
            f"{where}: native features {trained} do not match the ONNX "
            f"inputs {list(feature_names)} (same names, same order); re-export the "
            "model (mlref.export writes both from one fit)"
        )
    return booster


def native_predict(booster: Any, x: np.ndarray, n_features: int) -> np.ndarray:
    """P(fraud) per row of ``x`` from a native booster, float64, as ``OnnxModel`` returns."""
    import numpy as np

    arr = np.asarray(x, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[1] != n_features:
        raise ValueError(f"model expects (n, {n_features}) inputs, got {arr.shape}")
    out = booster.inplace_predict(np.ascontiguousarray(arr), validate_features=False)
    return np.asarray(out, dtype=np.float64).reshape(-1)


def crossover_rows(model: Model) -> int | None:
    """Rows per call from which ``model`` scores with native XGBoost (None: it never does).
    The server scores a ``/predict/batch`` call that large in one call, not in the batcher's
    chunks, so the call reaches the native path (``mlref.serve.scoring``)."""
    return model.native_from_rows if isinstance(model, CrossoverModel) else None


def large_batch_model(
    onnx_path: str | Path,
    feature_names: tuple[str, ...] | list[str],
    *,
    native_from_rows: int = NATIVE_FROM_ROWS,
    intra_op_threads: int = 1,
) -> OnnxModel | CrossoverModel:
    """The model for paths that score large batches: a :class:`CrossoverModel` when the
    native model sits beside the ONNX file (``model.xgb.json``, as export and the registry
    leave it), else ONNX Runtime alone (logged: large batches then run at ONNX speed)."""
    onnx = OnnxModel(onnx_path, intra_op_threads=intra_op_threads)
    native = Path(onnx_path).with_suffix(".xgb.json")
    if not native.is_file():
        logger.info("no native model at %s: large batches are scored by ONNX Runtime", native)
        return onnx
    return CrossoverModel(onnx, native, feature_names, native_from_rows=native_from_rows)


@dataclass(frozen=True)
class ServedModel:
    """A model plus what its card says: version, decision threshold, input order."""

    model: Model
    version: str
    threshold: float
    feature_names: tuple[str, ...]

    def __post_init__(self) -> None:
        if not (math.isfinite(self.threshold) and 0.0 <= self.threshold <= 1.0):
            raise ValueError(f"threshold must be a probability in [0, 1], got {self.threshold}")
        if not self.feature_names:
            raise ValueError("feature_names is empty; the model card must list the inputs")
        if len(set(self.feature_names)) != len(self.feature_names):
            raise ValueError(f"feature_names has duplicates: {list(self.feature_names)}")

    def warm_up(self) -> None:
        """One prediction on zeros: fails at start-up, not on the first request."""
        import numpy as np

        x = np.zeros((1, len(self.feature_names)), dtype=np.float32)
        out = np.asarray(self.model.predict(x))
        if out.shape[0] != 1:
            raise ValueError(f"model {self.version}: 1 input row gave {out.shape[0]} scores")


def card_value(card: Any, *names: str) -> Any:
    """Read the first of ``names`` from a model card given as a mapping or an object."""
    for name in names:
        if isinstance(card, Mapping) and name in card:
            return card[name]
        if not isinstance(card, Mapping) and hasattr(card, name):
            return getattr(card, name)
    return None


def served_model_from_card(
    onnx_path: str | Path, card: Any, version: str | None, *, intra_op_threads: int = 1
) -> ServedModel:
    """Build a ``ServedModel`` from an ONNX file and its model card (dict, object or path)."""
    if isinstance(card, (str, Path)):
        card = json.loads(Path(card).read_text())
    threshold = card_value(card, "threshold", "decision_threshold")
    if threshold is None:  # mlref.export.model_card nests it: {"decision": {"threshold": ..}}
        decision = card_value(card, "decision")
        threshold = card_value(decision, "threshold") if decision is not None else None
    if threshold is None:
        raise ValueError(
            f"model card for {onnx_path} has no decision threshold ('threshold' or "
            "'decision.threshold'); re-export the model with its card"
        )
    names = card_value(card, "feature_names", "features")
    if names is None:
        from mlref.features.definitions import MODEL_FEATURES

        names = MODEL_FEATURES
    if version is None:
        version = card_value(card, "version", "model_version")
    if version is None:
        digest = card_value(card, "onnx_sha256")
        stem = Path(onnx_path).stem
        version = f"{stem}-{str(digest)[:12]}" if digest else stem
    model = large_batch_model(onnx_path, tuple(names), intra_op_threads=intra_op_threads)
    if model.n_features is not None and model.n_features != len(names):
        raise ValueError(
            f"{onnx_path} takes {model.n_features} inputs but its card lists {len(names)}: "
            f"{list(names)}"
        )
    return ServedModel(
        model=model,
        version=str(version),
        threshold=float(threshold),
        feature_names=tuple(str(n) for n in names),
    )


def load_registered_model(
    settings: Settings, alias: str, *, intra_op_threads: int = 1
) -> ServedModel:
    """Load the model the registry alias (``champion`` / ``challenger``) points at; creates
    nothing (a missing registry database or model file is named: ``RegistryMissing``)."""
    from mlref.registry import Registry

    onnx_path, card, version = Registry(settings, create=False).load(alias)
    logger.info("loaded %s model version %s from %s", alias, version, onnx_path)
    return served_model_from_card(onnx_path, card, str(version), intra_op_threads=intra_op_threads)


@dataclass(frozen=True)
class Scored:
    """One request's outcome from a batch: the score and the inputs it was computed on."""

    score: float
    features: tuple[float | None, ...]  # model inputs as looked up (None where missing)
    row: np.ndarray  # the float32 row the model saw (reused by the shadow model)
    unknown_user: bool


class Scorer:
    """Score a batch: one feature lookup, one model call. Runs in the batcher's thread."""

    def __init__(self, model: ServedModel, features: FeatureSource) -> None:
        self.model = model
        self.features = features

    def score_batch(self, transactions: list[Transaction]) -> list[Scored]:
        import numpy as np

        n = len(transactions)
        values, unknown = check_features(
            self.features.lookup(request_batch(transactions)), n, self.model.feature_names
        )
        x = values.astype(np.float32)
        scores = np.asarray(self.model.model.predict(x), dtype=np.float64).reshape(-1)
        if scores.shape[0] != n:
            raise ValueError(
                f"model {self.model.version} returned {scores.shape[0]} scores for {n} rows"
            )
        # NaN (a missing input) -> None, via Python floats: NaN is the only value != itself
        rows = values.tolist()
        return [
            Scored(
                score=score,
                features=tuple(v if v == v else None for v in row),
                row=x[i],
                unknown_user=flag,
            )
            for i, (score, row, flag) in enumerate(
                zip(scores.tolist(), rows, unknown.tolist(), strict=True)
            )
        ]


def score_rows(model: ServedModel, rows: list[np.ndarray]) -> list[float]:
    """Score precomputed input rows (the shadow path: same features, other model)."""
    import numpy as np

    scores = np.asarray(model.model.predict(np.stack(rows)), dtype=np.float64).reshape(-1)
    return [float(s) for s in scores]
