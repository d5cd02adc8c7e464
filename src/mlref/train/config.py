"""What a training run is: a frozen, validated description that can be logged and replayed.

``TrainConfig`` names the data (a content hash), the split dates, the embargo, the model,
its hyperparameters, the seed and thread count, and the decision policy that turns a score
into a "review this transaction" decision. Invalid configurations fail at construction
with a message that says what to change; nothing is ever silently adjusted.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import timedelta
from itertools import pairwise
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from collections.abc import Iterable

TIME_COL = "event_timestamp"
LABEL_COL = "is_fraud"
LABEL_TIME_COL = "label_timestamp"
ID_COLS: tuple[str, ...] = ("transaction_id", "user_id")
REQUIRED_COLS: tuple[str, ...] = (*ID_COLS, TIME_COL, LABEL_COL, LABEL_TIME_COL)

# Fixed by the config itself (seed, n_threads) or by the pipeline (objective, early stopping on
# the validation window): hyperparams may not override them.
_RESERVED_HYPERPARAMS = frozenset(
    {"seed", "random_state", "nthread", "n_jobs", "objective", "tree_method", "missing"}
)

DEFAULT_HYPERPARAMS: Mapping[str, Any] = MappingProxyType(
    {
        "n_estimators": 400,
        "learning_rate": 0.08,
        "max_depth": 5,
        "min_child_weight": 2.0,
        "subsample": 0.9,
        "colsample_bytree": 0.9,
        "reg_lambda": 1.0,
        "max_bin": 256,
        "early_stopping_rounds": 30,
        "eval_metric": "aucpr",
        # "auto" = negatives / positives in the training window
        "scale_pos_weight": "auto",
    }
)


@dataclass(frozen=True)
class DecisionPolicy:
    """How the decision threshold is chosen on the validation window.

    ``kind="cost"`` minimises the expected business cost: every missed fraud loses
    ``missed_fraud_share`` of its amount, every false alarm costs ``review_cost`` (an analyst
    looks at a legitimate transaction). ``kind="precision"`` takes the lowest threshold
    whose precision reaches ``target_precision`` (the most recall at that precision).
    The cost is reported for either kind so two models can be compared in money.
    """

    kind: Literal["cost", "precision"] = "cost"
    target_precision: float = 0.9
    review_cost: float = 5.0
    missed_fraud_share: float = 1.0
    # used when the frame carries neither ``amount`` nor ``log_amount``
    default_fraud_amount: float = 100.0

    def __post_init__(self) -> None:
        if self.kind not in ("cost", "precision"):
            raise ValueError(
                f"DecisionPolicy.kind must be 'cost' or 'precision', got {self.kind!r}"
            )
        if not 0.0 < self.target_precision <= 1.0:
            raise ValueError(
                f"DecisionPolicy.target_precision must be in (0, 1], got {self.target_precision}"
            )
        for name in ("review_cost", "missed_fraud_share", "default_fraud_amount"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"DecisionPolicy.{name} must be finite and >= 0, got {value}")


def data_version(frame: pd.DataFrame) -> str:
    """Content hash of a frame: sha256 over column names, dtypes and every cell.

    Row order counts (the same rows in another order are another data set for a seeded,
    order-sensitive learner); the index does not.
    """
    digest = hashlib.sha256()
    header = "|".join(f"{name}:{dtype}" for name, dtype in frame.dtypes.items())
    digest.update(header.encode())
    cells = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    digest.update(np.ascontiguousarray(cells).tobytes())
    return digest.hexdigest()


def _utc(value: Any, name: str) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"TrainConfig.{name}: cannot read {value!r} as a timestamp") from exc
    if ts is pd.NaT:
        raise ValueError(f"TrainConfig.{name} is missing (NaT); give a UTC timestamp")
    if ts.tzinfo is None:
        raise ValueError(
            f"TrainConfig.{name}={ts} has no timezone; give an aware UTC timestamp "
            "(e.g. '2026-03-01T00:00:00+00:00'), event times are UTC"
        )
    return ts.tz_convert("UTC")


def _duration(value: Any, name: str) -> pd.Timedelta:
    try:
        delta = pd.Timedelta(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"TrainConfig.{name}: cannot read {value!r} as a duration") from exc
    if delta is pd.NaT or delta < pd.Timedelta(0):
        raise ValueError(f"TrainConfig.{name} must be a duration >= 0, got {value!r}")
    return delta


@dataclass(frozen=True)
class TrainConfig:
    """A training run, frozen. Windows are half-open: ``[start, end)``.

    train: ``[train_start, train_end)`` (``train_start=None``: from the first event)
    validation (early stopping, threshold): ``[val_start, val_end)``
    test (reported metrics): ``[test_start, test_end)`` (``test_end=None``: to the last event)

    The gaps ``val_start - train_end`` and ``test_start - val_end`` must be at least
    ``embargo``, and ``embargo`` at least ``label_delay``: a fraud label arrives up to
    ``label_delay`` after the transaction, so without the gap the last training rows carry
    labels that were only known during the validation window.
    """

    experiment_name: str
    data_version: str
    train_end: pd.Timestamp
    val_start: pd.Timestamp
    val_end: pd.Timestamp
    test_start: pd.Timestamp
    feature_names: tuple[str, ...]
    test_end: pd.Timestamp | None = None
    train_start: pd.Timestamp | None = None
    embargo: pd.Timedelta = field(default_factory=lambda: pd.Timedelta(days=7))
    label_delay: pd.Timedelta = field(default_factory=lambda: pd.Timedelta(days=7))
    model_type: str = "xgboost"
    hyperparams: Mapping[str, Any] = field(default_factory=lambda: DEFAULT_HYPERPARAMS, hash=False)
    seed: int = 0
    n_threads: int = 1
    policy: DecisionPolicy = field(default_factory=DecisionPolicy)
    feature_service: str = "fraud_model_v1"
    # a user is "new" for the first ``new_user_days`` after their first event (slice metric)
    new_user_days: int = 30

    def __post_init__(self) -> None:
        setattr_ = object.__setattr__
        if not self.experiment_name:
            raise ValueError("TrainConfig.experiment_name is empty; name the MLflow experiment")
        if not self.data_version:
            raise ValueError(
                "TrainConfig.data_version is empty; use mlref.train.data_version(frame)"
            )
        for name in ("train_end", "val_start", "val_end", "test_start"):
            setattr_(self, name, _utc(getattr(self, name), name))
        for name in ("test_end", "train_start"):
            if getattr(self, name) is not None:
                setattr_(self, name, _utc(getattr(self, name), name))
        setattr_(self, "embargo", _duration(self.embargo, "embargo"))
        setattr_(self, "label_delay", _duration(self.label_delay, "label_delay"))
        self._check_dates()
        if self.model_type != "xgboost":
            raise ValueError(
                f"TrainConfig.model_type={self.model_type!r} is not supported; use 'xgboost'"
            )
        names = tuple(self.feature_names)
        if not names or len(set(names)) != len(names):
            raise ValueError(
                f"TrainConfig.feature_names must be a non-empty list of unique names, got {names}"
            )
        setattr_(self, "feature_names", names)
        params = dict(self.hyperparams)
        reserved = sorted(_RESERVED_HYPERPARAMS & params.keys())
        if reserved:
            raise ValueError(
                f"TrainConfig.hyperparams may not set {reserved}: the seed and thread count are "
                "TrainConfig.seed / TrainConfig.n_threads, the objective and tree method are fixed"
            )
        setattr_(self, "hyperparams", MappingProxyType(params))
        if self.n_threads < 1:
            raise ValueError(f"TrainConfig.n_threads must be >= 1, got {self.n_threads}")
        if self.new_user_days < 1:
            raise ValueError(f"TrainConfig.new_user_days must be >= 1, got {self.new_user_days}")

    def _check_dates(self) -> None:
        order = [
            ("train_start", self.train_start),
            ("train_end", self.train_end),
            ("val_start", self.val_start),
            ("val_end", self.val_end),
            ("test_start", self.test_start),
            ("test_end", self.test_end),
        ]
        present = [(n, t) for n, t in order if t is not None]
        for (n1, t1), (n2, t2) in pairwise(present):
            if not t1 < t2:
                raise ValueError(
                    f"TrainConfig dates must be strictly ordered "
                    f"({' < '.join(n for n, _ in present)}), but {n1}={t1} is not before "
                    f"{n2}={t2}"
                )
        if self.embargo < self.label_delay:
            raise ValueError(
                f"TrainConfig.embargo={self.embargo} is shorter than the label delay "
                f"{self.label_delay}: rows at the end of a window would carry labels that only "
                "became known inside the next window. Set embargo >= label_delay."
            )
        for gap_name, start, end in (
            ("val_start - train_end", self.train_end, self.val_start),
            ("test_start - val_end", self.val_end, self.test_start),
        ):
            if end - start < self.embargo:
                raise ValueError(
                    f"TrainConfig gap {gap_name} = {end - start} is shorter than the embargo "
                    f"{self.embargo}; move the windows apart (or derive them with "
                    "TrainConfig.from_dates)"
                )

    @classmethod
    def from_dates(
        cls,
        frame: pd.DataFrame,
        *,
        experiment_name: str = "mlref-fraud",
        feature_names: Sequence[str] | None = None,
        test_days: float = 14,
        val_days: float = 14,
        embargo: timedelta | None = None,
        label_delay: timedelta | None = None,
        label_delay_quantile: float = 0.99,
        as_of: Any = None,
        **overrides: Any,
    ) -> TrainConfig:
        """Derive the windows from the data span, latest window last.

        ``as_of`` (default: the latest event) is when the labels are read. The test window
        ends at ``mature_end(as_of, label_delay)``, the last midnight whose labels have had
        ``label_delay`` to arrive, and spans ``test_days``; then an embargo, ``val_days`` of
        validation, an embargo, and training gets everything earlier.

        ``label_delay`` defaults to the ``label_delay_quantile`` of the delays seen in the
        frame (per class, the later one: fraud labels arrive last), rounded up to whole days (the maximum of an open-ended chargeback delay is one
        outlier; the few rows whose label is later still are left out by ``time_split`` as
        "not yet labelled", and too many of them is an error there). ``embargo`` defaults to
        ``label_delay``; ``feature_names`` to ``mlref.features.definitions.MODEL_FEATURES``.
        """
        names = tuple(feature_names) if feature_names is not None else _model_features()
        _require_columns(frame, (*REQUIRED_COLS, *names), "TrainConfig.from_dates")
        if frame.empty:
            raise ValueError("TrainConfig.from_dates: the frame is empty")
        events = frame[TIME_COL]
        cutoff = _utc(as_of, "as_of") if as_of is not None else events.max()
        if label_delay is None:
            delays = (frame[LABEL_TIME_COL] - events).dropna()
            if delays.empty:
                raise ValueError("TrainConfig.from_dates: no row has a label timestamp")
            # per class: fraud labels (chargebacks) come later than the all-clear ones
            classes = frame.loc[delays.index, LABEL_COL]
            observed = delays.groupby(classes).quantile(label_delay_quantile).max()
            label_delay = pd.Timedelta(days=max(1, math.ceil(observed / pd.Timedelta(days=1))))
        delay = _duration(label_delay, "label_delay")
        gap = _duration(embargo if embargo is not None else delay, "embargo")
        test_end = mature_end(cutoff, delay)
        test_start = test_end - pd.Timedelta(days=test_days)
        val_end = test_start - gap
        val_start = val_end - pd.Timedelta(days=val_days)
        train_end = val_start - gap
        first = events.min()
        if train_end <= first:
            need = (test_end - train_end) + delay + pd.Timedelta(days=1)
            raise ValueError(
                f"TrainConfig.from_dates: the data spans {first} .. {events.max()}, too short "
                f"for {test_days}d test + {val_days}d validation + 2 x {gap} embargo + "
                f"{delay} for the test labels to arrive; need more than {need} of data, or "
                "shorter windows"
            )
        return cls(
            experiment_name=experiment_name,
            data_version=data_version(frame[[*REQUIRED_COLS, *names]]),
            train_end=train_end,
            val_start=val_start,
            val_end=val_end,
            test_start=test_start,
            test_end=test_end,
            feature_names=names,
            embargo=gap,
            label_delay=delay,
            **overrides,
        )

    def with_(self, **changes: Any) -> TrainConfig:
        from dataclasses import replace

        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types: timestamps as ISO strings, durations in seconds."""
        out: dict[str, Any] = {}
        for f in fields(self):
            key, value = f.name, getattr(self, f.name)
            if isinstance(value, pd.Timestamp):
                out[key] = value.isoformat()
            elif isinstance(value, pd.Timedelta):
                out[key] = value.total_seconds()
            elif isinstance(value, tuple):
                out[key] = list(value)
            elif isinstance(value, Mapping):
                out[key] = dict(value)
            else:
                out[key] = value
        out["hyperparams"] = dict(self.hyperparams)
        out["policy"] = asdict(self.policy)
        return out

    def mlflow_params(self) -> dict[str, str]:
        """Flat ``key -> str`` parameters for the experiment tracker."""
        flat: dict[str, str] = {}
        for key, value in self.to_dict().items():
            if isinstance(value, dict):
                for sub, sub_value in value.items():
                    flat[f"{key}.{sub}"] = str(sub_value)
            elif isinstance(value, list):
                flat[key] = ",".join(map(str, value))
            else:
                flat[key] = str(value)
        return flat


def mature_end(as_of: Any, label_delay: Any) -> pd.Timestamp:
    """The latest midnight whose events have had ``label_delay`` for their labels to arrive
    by ``as_of``: the (exclusive) end of the latest evaluable window."""
    return (_utc(as_of, "as_of") - _duration(label_delay, "label_delay")).floor("D")


def _model_features() -> tuple[str, ...]:
    try:
        from mlref.features.definitions import MODEL_FEATURES
    except ImportError as exc:  # pragma: no cover - only before the features stage exists
        raise ValueError(
            "feature_names not given and mlref.features.definitions.MODEL_FEATURES is not "
            "importable; pass feature_names explicitly"
        ) from exc
    return tuple(MODEL_FEATURES)


def _require_columns(frame: pd.DataFrame, columns: Iterable[str], where: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{where}: the frame lacks columns {missing}; expected {list(REQUIRED_COLS)} plus "
            "the model features (mlref.features.store.training_frame builds it)"
        )
