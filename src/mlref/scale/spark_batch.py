"""Batch scoring on Spark: the single-process batch scorer's job, partitioned by user.

The batch (``mlref score-batch``, ``mlref.batch.score_batch``) scores every user active in
``(T - 30 d, T]`` as of a time ``T``: the stored state as of ``T`` (point in time, with the
views' TTLs) plus a zero-amount request (:func:`batch_features`), then the exported ONNX
model. :func:`score_batch_spark` runs the same definitions on Spark:

1. the stored rows are read from the offline store's parquet (the file ``build_feature_store``
   writes, :func:`mlref.features.store.offline_parquet_path`), with the time filter pushed
   down (rows after ``T`` or older than the longest TTL cannot change a result);
2. the active users come from the same rows; rows and users are unioned and hash-partitioned
   by ``user_id``, so each user's rows land in the user's partition;
3. ``mapInPandas`` runs, per partition, the pandas point-in-time join and request transforms
   (:func:`batch_features`, the code the single-process scorer runs) and the model, created
   once per partition from the model bytes shipped with the task (executors need no shared
   filesystem): native XGBoost when the partition has at least ``native_from_rows`` users
   (the crossover ``mlref score-batch`` and ``/predict/batch`` use,
   :data:`mlref.serve.predictor.NATIVE_FROM_ROWS`: native is faster per row there) and the
   native model (``model.xgb.json`` beside the ONNX file, as export and the registry leave it)
   is shipped too; ONNX Runtime (:class:`mlref.export.OnnxScorer`) otherwise.

The output equals the single-process scorer's (:func:`score_batch_local`) within 1e-6 (the
parity test in ``tests/scale`` checks it). Here Spark runs in local mode (``local[2]``, UI off,
bound to 127.0.0.1); on a cluster pass your own ``SparkSession``: the code is the same (ship
the ``mlgates`` wheel to the executors, e.g. ``--py-files`` or a cluster-wide environment).

Feast's own Spark offline store (``feast.infra.offline_stores.contrib.spark_offline_store``)
runs ``get_historical_features`` joins on Spark; it is the tool when training frames
outgrow DuckDB. It is not used here: batch scoring needs one as-of time per run and the model
applied in the same pass, which a ``mapInPandas`` over the offline parquet does without a
second copy of the data and without Feast's Spark-contrib dependencies.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlref.batch import BATCH_COLUMNS, DEFAULT_ACTIVE_WINDOW, batch_features
from mlref.serve.predictor import NATIVE_FROM_ROWS

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from pyspark.sql import DataFrame as SparkDataFrame
    from pyspark.sql import SparkSession

logger = logging.getLogger(__name__)

_KIND_ROW, _KIND_ENTITY = 0, 1


# ----------------------------------------------------------------------------- reference
def _utc(value: datetime | pd.Timestamp | str, name: str) -> pd.Timestamp:
    import pandas as pd

    stamp = pd.Timestamp(value)
    if stamp.tzinfo is None:
        raise ValueError(f"{name}={value!r} has no timezone; pass a UTC-aware time")
    return stamp.tz_convert("UTC")


def _native_bytes(
    model: str | os.PathLike[str] | bytes, native: str | os.PathLike[str] | bytes | None
) -> bytes | None:
    """The native model's bytes: ``native`` when given, else ``model.xgb.json`` beside an
    ONNX path (None: there is none, and every partition is scored by ONNX Runtime)."""
    if native is not None:
        if isinstance(native, bytes):
            return native
        if not Path(native).is_file():
            raise FileNotFoundError(f"no native model at {native}")
        return Path(native).read_bytes()
    if isinstance(model, bytes):
        return None
    beside = Path(model).with_suffix(".xgb.json")
    if not beside.is_file():
        logger.info("no native model at %s: every partition is scored by ONNX Runtime", beside)
        return None
    return beside.read_bytes()


def _model_bytes(model: str | os.PathLike[str] | bytes) -> bytes:
    if isinstance(model, bytes):
        return model
    path = Path(model)
    if not path.is_file():
        raise FileNotFoundError(f"no ONNX model at {path}; export one (mlref.export)")
    return path.read_bytes()


def score_batch_local(
    rows: pd.DataFrame,
    as_of: datetime | pd.Timestamp | str,
    model: str | os.PathLike[str] | bytes,
    model_version: str,
    *,
    users: Sequence[int] | None = None,
    active_window: timedelta = DEFAULT_ACTIVE_WINDOW,
    threshold: float | None = None,
    generated_at: datetime | pd.Timestamp | None = None,
) -> pd.DataFrame:
    """The single-process batch scorer: ``mlref.batch.score_batch`` over the stored ``rows``
    (users active in ``(as_of - active_window, as_of]`` unless ``users`` is given) with
    :func:`batch_features` and ``OnnxScorer``."""
    from mlref.batch import score_batch
    from mlref.export import OnnxScorer

    scorer = OnnxScorer(_model_bytes(model))
    entities: Any = list(users) if users is not None else rows[["user_id", "event_timestamp"]]
    return score_batch(
        entities,
        _utc(as_of, "as_of"),
        lambda entity_df: batch_features(rows, entity_df),
        lambda frame: scorer.score(frame.to_numpy(dtype="float32")),
        model_version,
        active_window=active_window,
        threshold=threshold,
        generated_at=generated_at,
    )


# ----------------------------------------------------------------------------- spark
@contextlib.contextmanager
def local_spark(
    app_name: str = "mlref-batch",
    *,
    cores: int = 2,
    shuffle_partitions: int = 4,
    driver_memory: str = "1g",
) -> Iterator[SparkSession]:
    """A local-mode ``SparkSession`` on loopback only (driver host and bind address
    127.0.0.1, UI off, no progress bars, session time zone UTC); stopped on exit."""
    from pyspark.sql import SparkSession

    if not 1 <= cores <= (os.cpu_count() or 1) * 4:
        raise ValueError(f"cores must be 1..{(os.cpu_count() or 1) * 4}, got {cores}")
    # the JVM resolves its own address at launch: keep it on loopback
    previous = os.environ.get("SPARK_LOCAL_IP")
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    try:
        spark = (
            SparkSession.builder.master(f"local[{cores}]")
            .appName(app_name)
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.driver.memory", driver_memory)
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            .config("spark.pyspark.python", sys.executable)
            .config("spark.pyspark.driver.python", sys.executable)
            .getOrCreate()
        )
    finally:
        if previous is None:
            os.environ.pop("SPARK_LOCAL_IP", None)
        else:
            os.environ["SPARK_LOCAL_IP"] = previous
    spark.sparkContext.setLogLevel("ERROR")
    try:
        yield spark
    finally:
        spark.stop()


def _read_rows(spark: SparkSession, rows_path: str | os.PathLike[str]) -> SparkDataFrame:
    """Stored rows with ``row_ns`` (int64 ns since the epoch) for the row time.

    pandas writes nanosecond parquet timestamps, which Spark reads only as plain longs
    (``spark.sql.legacy.parquet.nanosAsLong``); micro/millisecond files read as timestamps.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import LongType, TimestampType

    from mlref.features.definitions import STORED_COLUMNS

    path = Path(rows_path)
    if not path.exists():
        raise FileNotFoundError(
            f"no offline parquet at {path}; build the feature store first "
            "(mlref.features.store.build_feature_store)"
        )
    spark.conf.set("spark.sql.legacy.parquet.nanosAsLong", "true")
    frame = spark.read.parquet(str(path))
    kind = frame.schema["event_timestamp"].dataType
    if isinstance(kind, LongType):
        row_ns = F.col("event_timestamp")
    elif isinstance(kind, TimestampType):
        row_ns = F.unix_micros(F.col("event_timestamp")) * F.lit(1000)
    else:
        raise ValueError(f"event_timestamp in {path} has type {kind}; expected a timestamp")
    return frame.select(
        F.col("user_id").cast("long").alias("user_id"),
        row_ns.cast("long").alias("row_ns"),
        *(F.col(c).cast("double").alias(c) for c in STORED_COLUMNS),
    )


# the native model per Python worker, keyed by the shipped bytes' digest (computed once on the
# driver and shipped with them: hashing ~1.5 MB on every partition cost ~2 ms, a quarter of
# scoring 1,024 rows). Spark reuses its Python workers across tasks
# (spark.python.worker.reuse), so a 400-tree model is parsed once per worker, not once per
# partition (parsing it cost ~50 ms, more than scoring 4,096 rows with it: bench_model.py)
_NATIVE_CACHE: dict[bytes, Any] = {}


def native_digest(native_bytes: bytes) -> bytes:
    """The cache key of a shipped native model (:func:`partition_scores`)."""
    import hashlib

    return hashlib.blake2b(native_bytes, digest_size=16).digest()


def partition_scores(
    x: np.ndarray,
    model_bytes: bytes,
    native_bytes: bytes | None = None,
    native_from_rows: int | None = None,
    native_key: bytes | None = None,
) -> np.ndarray:
    """One partition's model step (float32 ``x`` in ``MODEL_FEATURES`` order -> float64
    P(fraud)): native XGBoost at and above ``native_from_rows`` rows with ``native_bytes``,
    ONNX Runtime otherwise; ``native_key`` is ``native_digest(native_bytes)``, computed by the
    driver. Benchmarked against native alone (benchmarks/bench_model.py)."""
    import numpy as np

    from mlref.export import OnnxScorer
    from mlref.features.definitions import MODEL_FEATURES
    from mlref.serve.predictor import native_booster, native_predict

    if native_bytes is None or native_from_rows is None or len(x) < native_from_rows:
        return OnnxScorer(model_bytes).score(x).astype(np.float64)  # once per partition
    key = native_key or native_digest(native_bytes)
    booster = _NATIVE_CACHE.get(key)
    if booster is None:
        booster = _NATIVE_CACHE[key] = native_booster(native_bytes, MODEL_FEATURES)
    return native_predict(booster, x, len(MODEL_FEATURES))


def _partition_scorer(
    model_bytes: bytes,
    as_of_ns: int,
    native_bytes: bytes | None = None,
    native_from_rows: int | None = None,
) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """The ``mapInPandas`` function: point-in-time features + the model over one partition
    (native XGBoost from ``native_from_rows`` users with ``native_bytes``, else ONNX)."""
    native_key = native_digest(native_bytes) if native_bytes is not None else None

    def score_partition(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        import numpy as np
        import pandas as pd

        from mlref.features.definitions import MODEL_FEATURES, STORED_COLUMNS

        # a user's rows and entity row can arrive in different Arrow batches: take the partition
        parts = list(batches)
        if not parts:
            return
        part = pd.concat(parts, ignore_index=True)
        entities = part.loc[part["kind"] == _KIND_ENTITY]
        if entities.empty:
            return
        stored = part.loc[part["kind"] == _KIND_ROW]
        rows = pd.DataFrame(
            {
                "user_id": stored["user_id"].to_numpy(dtype=np.int64),
                "event_timestamp": pd.to_datetime(
                    stored["row_ns"].to_numpy(dtype=np.int64), unit="ns", utc=True
                ),
                **{
                    c: stored[c].to_numpy(dtype=np.float64, na_value=np.nan) for c in STORED_COLUMNS
                },
            }
        )
        entity_df = pd.DataFrame(
            {
                "user_id": entities["user_id"].to_numpy(dtype=np.int64),
                "event_timestamp": pd.to_datetime(
                    np.full(len(entities), as_of_ns, dtype=np.int64), unit="ns", utc=True
                ),
            }
        )
        features = batch_features(rows, entity_df)[list(MODEL_FEATURES)]
        x = features.to_numpy(dtype=np.float32)
        scores = partition_scores(x, model_bytes, native_bytes, native_from_rows, native_key)
        yield pd.DataFrame({"user_id": entity_df["user_id"].to_numpy(), "score": scores})

    return score_partition


def spark_batch_scores(
    spark: SparkSession,
    rows_path: str | os.PathLike[str],
    as_of: datetime | pd.Timestamp | str,
    model: str | os.PathLike[str] | bytes,
    *,
    users: Sequence[int] | None = None,
    active_window: timedelta = DEFAULT_ACTIVE_WINDOW,
    partitions: int | None = None,
    native: str | os.PathLike[str] | bytes | None = None,
    native_from_rows: int | None = NATIVE_FROM_ROWS,
) -> SparkDataFrame:
    """The Spark plan: ``user_id``, ``score`` per scored user (lazy; nothing runs yet).

    A partition of at least ``native_from_rows`` users is scored by the native model
    (``native``, default ``model.xgb.json`` beside an ONNX path; refused on the executor
    unless trained on ``MODEL_FEATURES`` in that order); ``native_from_rows=None`` scores
    every partition with ONNX Runtime."""
    import pandas as pd
    from pyspark.sql import functions as F

    from mlref.features.definitions import STORED_COLUMNS, VIEWS

    t = _utc(as_of, "as_of")
    as_of_ns = int(t.value)
    max_ttl = max(v.ttl for v in VIEWS)
    ttl_ns = int(pd.Timedelta(max_ttl).value)
    window_ns = int(pd.Timedelta(active_window).value)
    if window_ns <= 0:
        raise ValueError(f"active_window must be positive, got {active_window}")
    n_parts = partitions or int(spark.conf.get("spark.sql.shuffle.partitions") or "4")
    if n_parts < 1:
        raise ValueError(f"partitions must be >= 1, got {n_parts}")
    if native_from_rows is not None and native_from_rows < 1:
        raise ValueError(f"native_from_rows must be >= 1 or None, got {native_from_rows}")

    stored = _read_rows(spark, rows_path).where(F.col("row_ns") <= F.lit(as_of_ns))
    if users is None:
        # active users: a stored row (= an event second) in (as_of - window, as_of]
        entities = (
            stored.where(F.col("row_ns") > F.lit(as_of_ns - window_ns)).select("user_id").distinct()
        )
    else:
        ids = sorted({int(u) for u in users})
        entities = spark.createDataFrame(pd.DataFrame({"user_id": pd.Series(ids, dtype="int64")}))
    # pushed down: rows after as_of are not visible; rows older than the longest TTL give the
    # defaults, exactly as having no row does
    rows = stored.where(F.col("row_ns") >= F.lit(as_of_ns - ttl_ns)).withColumn(
        "kind", F.lit(_KIND_ROW)
    )
    combined = rows.unionByName(
        entities.withColumn("kind", F.lit(_KIND_ENTITY)), allowMissingColumns=True
    ).select("kind", "user_id", "row_ns", *STORED_COLUMNS)
    return combined.repartition(n_parts, "user_id").mapInPandas(
        _partition_scorer(
            _model_bytes(model),
            as_of_ns,
            _native_bytes(model, native) if native_from_rows is not None else None,
            native_from_rows,
        ),
        schema="user_id long, score double",
    )


def score_batch_spark(
    spark: SparkSession,
    rows_path: str | os.PathLike[str],
    as_of: datetime | pd.Timestamp | str,
    model: str | os.PathLike[str] | bytes,
    model_version: str,
    *,
    users: Sequence[int] | None = None,
    active_window: timedelta = DEFAULT_ACTIVE_WINDOW,
    threshold: float | None = None,
    generated_at: datetime | pd.Timestamp | None = None,
    partitions: int | None = None,
    output_path: str | os.PathLike[str] | None = None,
    native: str | os.PathLike[str] | bytes | None = None,
    native_from_rows: int | None = NATIVE_FROM_ROWS,
) -> pd.DataFrame:
    """Score the batch on Spark; returns :data:`mlref.batch.BATCH_COLUMNS` (+ ``decision``
    with ``threshold``) sorted by user, as :func:`score_batch_local` does.

    ``output_path`` also writes the scores as parquet from the executors (what a cluster job
    does instead of collecting to the driver).
    """
    import numpy as np
    import pandas as pd

    if not model_version:
        raise ValueError("model_version is required: every batch prediction names its model")
    t = _utc(as_of, "as_of")
    stamp = _utc(generated_at, "generated_at") if generated_at is not None else None
    scores = spark_batch_scores(
        spark,
        rows_path,
        t,
        model,
        users=users,
        active_window=active_window,
        partitions=partitions,
        native=native,
        native_from_rows=native_from_rows,
    )
    if output_path is not None:
        scores = scores.cache()
        scores.write.mode("overwrite").parquet(str(output_path))
    got: pd.DataFrame = scores.toPandas()  # pyspark types it as a protocol
    if output_path is not None:
        scores.unpersist()
    got = got.sort_values("user_id", kind="mergesort").reset_index(drop=True)
    if got.empty:
        logger.warning("no active users at %s: empty batch", t.isoformat())
    if not np.isfinite(got["score"].to_numpy(dtype=np.float64)).all():
        raise ValueError("model returned non-finite scores; check the features for NaN")
    out = pd.DataFrame(
        {
            "user_id": got["user_id"].to_numpy(dtype="int64"),
            "as_of": t,
            "score": got["score"].to_numpy(dtype=np.float64),
            "model_version": str(model_version),
            "generated_at": stamp if stamp is not None else pd.Timestamp.now(tz="UTC"),
        }
    )[list(BATCH_COLUMNS)]
    if threshold is not None:
        out["decision"] = out["score"] >= threshold
    logger.info("spark batch: %d users scored as of %s", len(out), t.isoformat())
    return out
