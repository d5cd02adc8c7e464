"""Batch scoring on Spark (local mode) equals the single-process batch scorer.

The reference is ``mlref.batch.score_batch`` with the feature function ``mlref score-batch``
uses (point-in-time state from the *events* + a zero-amount request) and ONNX Runtime; Spark
reads the offline store's parquet, computes the features per partition and scores with ONNX
Runtime per partition (``mapInPandas``). Skips when java or pyspark is missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlref.batch import BATCH_COLUMNS, score_batch

AS_OF = pd.Timestamp("2026-01-15T06:00:00+00:00")
MADE = AS_OF + pd.Timedelta(minutes=20)


@pytest.fixture(scope="module")
def offline(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, Path]:
    """Events and the offline store's parquet written from them (as build_feature_store does)."""
    from mlref.data.generate import generate_transactions
    from mlref.features.offline import stored_rows, write_offline_parquet
    from mlref.settings import DataConfig

    events = generate_transactions(DataConfig(n_users=300, days=20, seed=3))
    path = tmp_path_factory.mktemp("offline") / "user_state.parquet"
    return events, write_offline_parquet(stored_rows(events), path)


def reference_batch(events: pd.DataFrame, as_of: pd.Timestamp, model_path: Path) -> pd.DataFrame:
    """The single-process batch scorer, written out as `mlref score-batch` runs it."""
    from mlref.export import OnnxScorer
    from mlref.features.definitions import MODEL_FEATURES
    from mlref.features.offline import point_in_time_features, transform_inputs
    from mlref.features.transforms import request_features

    scorer = OnnxScorer(model_path)

    def features(entity_df: pd.DataFrame) -> pd.DataFrame:
        state = point_in_time_features(events, entity_df)
        request = entity_df.assign(amount=0.0, merchant_category="__none__")
        return request_features(transform_inputs(request, state))[list(MODEL_FEATURES)]

    return score_batch(
        events,
        as_of,
        features,
        lambda frame: scorer.score(frame.to_numpy(dtype="float32")),
        "tiny-1",
        threshold=0.05,
        generated_at=MADE,
    )


def test_spark_batch_equals_the_single_process_scorer(
    spark: Any, offline: tuple[pd.DataFrame, Path], tiny_model: Any, tmp_path: Path
) -> None:
    from mlref.scale.spark_batch import score_batch_local, score_batch_spark

    events, parquet = offline
    expected = reference_batch(events, AS_OF, tiny_model.onnx_path)
    got = score_batch_spark(
        spark,
        parquet,
        AS_OF,
        tiny_model.onnx_path,
        "tiny-1",
        threshold=0.05,
        generated_at=MADE,
        partitions=3,
        output_path=tmp_path / "scores",
    )
    assert list(got.columns) == [*BATCH_COLUMNS, "decision"]
    assert len(got) > 100
    assert got["user_id"].tolist() == expected["user_id"].tolist()
    np.testing.assert_allclose(got["score"], expected["score"], rtol=0, atol=1e-6)
    pd.testing.assert_frame_equal(got, expected, check_exact=False, atol=1e-6, rtol=0)
    # the executors wrote the same scores
    written = pd.read_parquet(tmp_path / "scores").sort_values("user_id", ignore_index=True)
    np.testing.assert_allclose(written["score"], expected["score"], rtol=0, atol=1e-6)
    # the library's single-process scorer (stored rows instead of events) agrees too
    local = score_batch_local(
        pd.read_parquet(parquet),
        AS_OF,
        tiny_model.onnx_path,
        "tiny-1",
        threshold=0.05,
        generated_at=MADE,
    )
    pd.testing.assert_frame_equal(local, expected)


def test_the_parity_comparison_catches_a_wrong_as_of(
    offline: tuple[pd.DataFrame, Path], tiny_model: Any
) -> None:
    """Scoring a few hours later (features that are not point-in-time at T) is visible."""
    from mlref.scale.spark_batch import score_batch_local

    events, parquet = offline
    rows = pd.read_parquet(parquet)
    expected = reference_batch(events, AS_OF, tiny_model.onnx_path)
    later = score_batch_local(
        rows,
        AS_OF + pd.Timedelta(hours=6),
        tiny_model.onnx_path,
        "tiny-1",
        users=expected["user_id"].tolist(),
        generated_at=MADE,
    )
    assert later["user_id"].tolist() == expected["user_id"].tolist()
    assert np.max(np.abs(later["score"].to_numpy() - expected["score"].to_numpy())) > 1e-6


def test_spark_batch_refuses_a_missing_offline_store(
    spark: Any, tiny_model: Any, tmp_path: Path
) -> None:
    from mlref.scale.spark_batch import score_batch_spark

    with pytest.raises(FileNotFoundError, match="build the feature store first"):
        score_batch_spark(spark, tmp_path / "nope.parquet", AS_OF, tiny_model.onnx_path, "1")
    with pytest.raises(ValueError, match="no timezone"):
        score_batch_spark(spark, tmp_path / "nope.parquet", "2026-01-15", tiny_model.onnx_path, "1")


# ----------------------------------------------------------------------------- crossover
CROSS_AS_OF = pd.Timestamp("2026-01-08T06:00:00+00:00")
CROSS_PARITY_ATOL = 1e-5  # the crossover's own (tests/mlref/serve/test_crossover.py)


@pytest.fixture(scope="module")
def crossover_world(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[pd.DataFrame, Path, Path, bytes]:
    """Enough users for partitions at and above the crossover; a model exported as ONNX with
    its native model beside it (as export leaves it), and a decoy native model (same inputs,
    other labels) that shows which model scored a partition."""
    import xgboost as xgb

    from mlref.data.generate import generate_transactions
    from mlref.export import to_onnx
    from mlref.features.definitions import MODEL_FEATURES
    from mlref.features.offline import batch_model_features, stored_rows, write_offline_parquet
    from mlref.settings import DataConfig

    events = generate_transactions(DataConfig(n_users=1400, days=8, seed=5, fraud_rate=0.05))
    folder = tmp_path_factory.mktemp("crossover")
    parquet = write_offline_parquet(stored_rows(events), folder / "user_state.parquet")
    x = batch_model_features(events, events)
    # labels the batch's features carry (a batch request has no amount): so the scores spread
    noise = np.random.default_rng(5).normal(0.0, 1.0, len(x))
    velocity = x["txn_velocity_24h"] + noise > x["txn_velocity_24h"].median()
    orders = x["avg_order_30d"].fillna(0.0) > x["avg_order_30d"].median()
    fits = []
    for seed, labels in ((0, velocity), (1, orders)):
        model = xgb.XGBClassifier(
            n_estimators=40, max_depth=4, learning_rate=0.3, random_state=seed, n_jobs=1
        )
        model.fit(x, np.asarray(labels, dtype=int))
        fits.append(model)
    onnx_path = folder / "model.onnx"
    onnx_path.write_bytes(to_onnx(fits[0], MODEL_FEATURES).SerializeToString())
    fits[0].get_booster().save_model(str(folder / "model.xgb.json"))
    fits[1].get_booster().save_model(str(folder / "decoy.xgb.json"))
    return events, parquet, onnx_path, (folder / "decoy.xgb.json").read_bytes()


def test_spark_partitions_at_the_crossover_are_scored_by_the_native_model_with_parity(
    spark: Any, crossover_world: tuple[pd.DataFrame, Path, Path, bytes]
) -> None:
    """Every partition has at least NATIVE_FROM_ROWS users, so every one is scored by the
    native model shipped beside the ONNX one; the scores equal the single-process ONNX
    scorer's within the crossover's tolerance. A decoy native model shows the path taken:
    it changes the scores at the crossover and not below it."""
    from pyspark.sql import functions as F

    from mlref.scale.spark_batch import score_batch_spark
    from mlref.serve.predictor import NATIVE_FROM_ROWS

    events, parquet, onnx_path, decoy = crossover_world
    expected = reference_batch(events, CROSS_AS_OF, onnx_path)
    users = spark.createDataFrame(expected[["user_id"]].astype("int64"))
    sizes = users.repartition(2, "user_id").groupBy(F.spark_partition_id()).count().toPandas()
    assert len(sizes) == 2
    assert sizes["count"].min() >= NATIVE_FROM_ROWS, sizes
    got = score_batch_spark(
        spark, parquet, CROSS_AS_OF, onnx_path, "x-1", generated_at=MADE, partitions=2
    )
    assert got["user_id"].tolist() == expected["user_id"].tolist()
    np.testing.assert_allclose(got["score"], expected["score"], rtol=0, atol=CROSS_PARITY_ATOL)
    assert np.ptp(got["score"].to_numpy()) > 0.01, "scores too alike to prove parity"

    decoyed = score_batch_spark(
        spark, parquet, CROSS_AS_OF, onnx_path, "x-1", partitions=2, native=decoy
    )
    gap = np.abs(decoyed["score"].to_numpy() - expected["score"].to_numpy())
    assert np.median(gap) > 1e-3, "the shipped native model did not score the partitions"
    below = score_batch_spark(
        spark,
        parquet,
        CROSS_AS_OF,
        onnx_path,
        "x-1",
        partitions=2,
        native=decoy,
        native_from_rows=int(sizes["count"].max()) + 1,
    )
    np.testing.assert_allclose(below["score"], expected["score"], rtol=0, atol=1e-6)
