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
