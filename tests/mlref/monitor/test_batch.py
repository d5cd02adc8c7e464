from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from mlref.batch import BATCH_COLUMNS, score_batch, staleness_gate

AS_OF = pd.Timestamp("2026-03-01T00:00:00+00:00")  # the midnight batch


def _events() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 300
    ts = AS_OF - pd.to_timedelta(rng.uniform(0, 60 * 86400, n), unit="s")
    frame = pd.DataFrame(
        {
            "user_id": rng.integers(1, 60, n),
            "event_timestamp": ts,
            "amount": rng.lognormal(3.5, 1.0, n),
        }
    )
    # one event after as_of must not make its user "active" or leak into features
    future = pd.DataFrame(
        {"user_id": [999], "event_timestamp": [AS_OF + pd.Timedelta(hours=1)], "amount": [5e5]}
    )
    return pd.concat([frame, future], ignore_index=True)


class PointInTimeSum:
    """A point-in-time feature: each user's total amount strictly before the entity time."""

    def __init__(self, events: pd.DataFrame) -> None:
        self.events = events
        self.calls: list[pd.DataFrame] = []

    def __call__(self, entity_df: pd.DataFrame) -> pd.DataFrame:
        self.calls.append(entity_df)
        out = []
        for uid, t in zip(entity_df["user_id"], entity_df["event_timestamp"], strict=True):
            seen = self.events[(self.events.user_id == uid) & (self.events.event_timestamp < t)]
            out.append({"user_id": uid, "total": seen["amount"].sum(), "n": len(seen)})
        return pd.DataFrame(out)


class LogisticModel:
    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        p = 1 / (1 + np.exp(-(0.01 * frame["n"].to_numpy() - 2)))
        return np.column_stack([1 - p, p])


def test_score_batch_scores_active_users_point_in_time() -> None:
    events = _events()
    feature_fn = PointInTimeSum(events)
    made = AS_OF + pd.Timedelta(minutes=20)
    out = score_batch(
        events,
        AS_OF,
        feature_fn,
        LogisticModel(),
        "7",
        active_window=timedelta(days=30),
        generated_at=made,
        threshold=0.2,
    )
    window = events[
        (events.event_timestamp <= AS_OF) & (events.event_timestamp > AS_OF - timedelta(days=30))
    ]
    assert out["user_id"].tolist() == sorted(window["user_id"].unique())
    assert 999 not in out["user_id"].tolist()
    assert list(out.columns[: len(BATCH_COLUMNS)]) == list(BATCH_COLUMNS)
    assert (out["as_of"] == AS_OF).all()
    assert (out["generated_at"] == made).all()
    assert (out["model_version"] == "7").all()
    # feature_fn saw as_of for every entity row
    assert (feature_fn.calls[0]["event_timestamp"] == AS_OF).all()
    # scores match the model applied to the point-in-time features by hand
    uid = int(out["user_id"].iloc[0])
    n = int(((events.user_id == uid) & (events.event_timestamp < AS_OF)).sum())
    assert out["score"].iloc[0] == pytest.approx(1 / (1 + np.exp(-(0.01 * n - 2))))
    assert out["decision"].tolist() == (out["score"] >= 0.2).tolist()


def test_score_batch_refuses_misaligned_features() -> None:
    def short(entity_df: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"n": np.zeros(len(entity_df) - 1)})

    with pytest.raises(ValueError, match="one row per entity"):
        score_batch([1, 2, 3], AS_OF, short, LogisticModel(), "7")
    with pytest.raises(ValueError, match="no timezone"):
        score_batch([1], "2026-03-01", short, LogisticModel(), "7")


def _batch(generated_at: pd.Timestamp, as_of: pd.Timestamp = AS_OF) -> pd.DataFrame:
    return score_batch(
        [1, 2, 3],
        as_of,
        lambda df: pd.DataFrame({"n": np.arange(len(df), dtype=float)}),
        LogisticModel(),
        "7",
        generated_at=generated_at,
    )


def test_staleness_gate_fails_the_midnight_batch_at_noon() -> None:
    batch = _batch(AS_OF + pd.Timedelta(minutes=15))
    noon = AS_OF + pd.Timedelta(hours=12)
    result = staleness_gate(batch, now=noon, max_age=timedelta(hours=6))
    assert result.verdict == "fail", result.explain()
    assert not result.passed


def test_staleness_gate_passes_a_fresh_batch() -> None:
    batch = _batch(AS_OF + pd.Timedelta(minutes=15))
    result = staleness_gate(batch, now=AS_OF + pd.Timedelta(hours=1), max_age=timedelta(hours=6))
    assert result.passed, result.explain()


def test_recomputing_an_old_as_of_does_not_make_it_fresh() -> None:
    old = AS_OF - pd.Timedelta(days=2)
    batch = _batch(generated_at=AS_OF, as_of=old)  # generated now, features from 2 days ago
    result = staleness_gate(batch, now=AS_OF + pd.Timedelta(minutes=5), max_age=timedelta(hours=6))
    assert result.verdict == "fail", result.explain()
