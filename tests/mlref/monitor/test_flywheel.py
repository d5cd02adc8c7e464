from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from mlref.flywheel import (
    ReviewQueue,
    SimulatedReviewer,
    labelled_feedback,
    logit_distance,
    merge_feedback,
    mine_hard_examples,
)
from mlref.monitor import read_log

NOW = pd.Timestamp("2026-03-02T09:00:00+00:00")


def _hand_logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def test_logit_distance_matches_hand_computation() -> None:
    scores = np.array([0.08, 0.04, 0.16, 0.5, 0.999])
    got = logit_distance(scores, np.full(5, 0.08))
    want = [abs(_hand_logit(s) - _hand_logit(0.08)) for s in scores]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert got[0] == 0.0
    # 0 and 1 stay finite
    assert np.isfinite(logit_distance(np.array([0.0, 1.0]), np.array([0.5, 0.5]))).all()


def test_hard_examples_are_nearest_the_deployed_threshold_not_half(synth, log_writer) -> None:
    raw = synth(600, seed=3, threshold=0.08)
    frame = read_log(log_writer(raw))
    hard = mine_hard_examples(frame, k=25)

    # independent ranking by hand: logit distance to each row's logged threshold
    dist = [
        abs(_hand_logit(s) - _hand_logit(t)) for s, t in zip(raw.score, raw.threshold, strict=True)
    ]
    want = raw.assign(d=dist).sort_values("d").head(25)["transaction_id"].tolist()
    assert hard["transaction_id"].tolist() == want
    assert hard["uncertainty"].is_monotonic_increasing
    # a hard-coded 0.5 would pick different rows: the fixture's threshold is 0.08
    by_half = raw.assign(d=(raw.score - 0.5).abs()).sort_values("d").head(25)
    assert set(by_half["transaction_id"]) != set(want)
    # the reviewer sees the model inputs
    first = json.loads(hard["features"].iloc[0])
    assert set(first) == set(frame.attrs["feature_names"])


def test_hard_examples_use_each_rows_threshold(synth, log_writer) -> None:
    raw = synth(200, seed=4)
    raw.loc[:99, "threshold"] = 0.3  # a redeploy mid-window with another operating point
    raw.loc[0, "score"] = 0.3
    raw.loc[150, "score"] = 0.3  # exactly 0.3 but the row's threshold is 0.08
    frame = read_log(log_writer(raw))
    hard = mine_hard_examples(frame, k=200)
    assert hard["transaction_id"].iloc[0] == raw.loc[0, "transaction_id"]
    row150 = hard.set_index("transaction_id").loc[raw.loc[150, "transaction_id"]]
    assert row150["uncertainty"] == pytest.approx(abs(_hand_logit(0.3) - _hand_logit(0.08)))


def test_retried_transaction_counts_once_and_bad_threshold_is_refused(synth, log_writer) -> None:
    raw = synth(50, seed=5)
    retry = raw.iloc[[7]].copy()
    retry["request_id"] = "r-retry"
    retry["ts"] = raw["ts"].max() + 1.0
    frame = read_log(log_writer(pd.concat([raw, retry], ignore_index=True)))
    hard = mine_hard_examples(frame, k=None)
    assert hard["transaction_id"].is_unique
    assert len(hard) == 50
    assert hard.set_index("transaction_id").loc[raw.loc[7, "transaction_id"], "request_id"] == (
        "r-retry"
    )
    broken = frame.copy()
    broken.loc[3, "threshold"] = np.nan
    with pytest.raises(ValueError, match="no usable threshold"):
        mine_hard_examples(broken)


def test_queue_holds_the_hard_examples_in_review_order(synth, log_writer, tmp_path) -> None:
    frame = read_log(log_writer(synth(400, seed=6)))
    hard = mine_hard_examples(frame, k=30)
    queue = ReviewQueue(tmp_path / "queue.sqlite")
    assert queue.enqueue(hard, now=NOW) == 30
    # enqueueing again adds nothing (idempotent on transaction id)
    assert queue.enqueue(mine_hard_examples(frame, k=40), now=NOW) == 10
    pending = queue.pending()
    assert pending["transaction_id"].tolist()[:30] == hard["transaction_id"].tolist()
    assert pending["uncertainty"].is_monotonic_increasing
    assert (pending["status"] == "pending").all()
    assert (pending["created_at"] == NOW).all()
    assert pending["labelled_at"].isna().all()
    assert queue.counts() == {"pending": 40, "labelled": 0, "skipped": 0}


def test_status_moves_pending_to_labelled_or_skipped_once(synth, log_writer, tmp_path) -> None:
    hard = mine_hard_examples(read_log(log_writer(synth(100, seed=7))), k=3)
    queue = ReviewQueue(tmp_path / "queue.sqlite")
    queue.enqueue(hard, now=NOW)
    a, b, c = hard["transaction_id"]
    at = NOW + pd.Timedelta(hours=1)
    queue.label(a, 1, at=at, reviewer="ana")
    queue.skip(b, at=at, reason="unclear")
    items = queue.items().set_index("transaction_id")
    assert items.loc[a, "status"] == "labelled"
    assert items.loc[a, "label"] == 1
    assert items.loc[a, "labelled_at"] == at
    assert items.loc[b, "status"] == "skipped"
    assert pd.isna(items.loc[b, "label"])
    assert items.loc[b, "note"] == "unclear"
    assert items.loc[c, "status"] == "pending"
    with pytest.raises(ValueError, match="already labelled"):
        queue.label(a, 0, at=at)
    with pytest.raises(ValueError, match="already skipped"):
        queue.label(b, 0, at=at)
    with pytest.raises(KeyError, match="not in the review queue"):
        queue.label("t-nope", 1, at=at)
    with pytest.raises(ValueError, match="label must be 0"):
        queue.label(c, 2, at=at)
    assert queue.counts() == {"pending": 1, "labelled": 1, "skipped": 1}


def test_simulated_reviewer_labels_from_ground_truth_and_feeds_back(
    synth, log_writer, tmp_path
) -> None:
    raw = synth(300, seed=8)
    hard = mine_hard_examples(read_log(log_writer(raw)), k=20)
    rng = np.random.default_rng(1)
    truth = pd.DataFrame(
        {"transaction_id": raw["transaction_id"], "is_fraud": rng.integers(0, 2, len(raw))}
    )
    unknown = hard["transaction_id"].iloc[4]
    truth = truth[truth["transaction_id"] != unknown]
    queue_path = tmp_path / "queue.sqlite"
    queue = ReviewQueue(queue_path)
    queue.enqueue(hard, now=NOW)

    at = NOW + pd.Timedelta(hours=2)
    outcome = SimulatedReviewer(truth).review(queue, limit=10, now=at)
    assert (outcome.labelled, outcome.skipped) == (9, 1)
    assert queue.counts() == {"pending": 10, "labelled": 9, "skipped": 1}
    skipped = queue.items("skipped")
    assert skipped["transaction_id"].tolist() == [unknown]
    assert "no ground truth" in skipped["note"].iloc[0]

    fb = labelled_feedback(queue_path)
    assert list(fb.columns) == ["transaction_id", "is_fraud", "label_timestamp"]
    assert len(fb) == 9
    expected = truth.set_index("transaction_id").loc[fb["transaction_id"], "is_fraud"]
    assert fb["is_fraud"].tolist() == expected.tolist()
    assert outcome.fraud == int(expected.sum())
    assert (fb["label_timestamp"] == at).all()
    assert str(fb["label_timestamp"].dtype) == "datetime64[ns, UTC]"


def test_labelled_feedback_of_missing_queue_is_empty(tmp_path) -> None:
    fb = labelled_feedback(tmp_path / "none.sqlite")
    assert fb.empty
    assert list(fb.columns) == ["transaction_id", "is_fraud", "label_timestamp"]


def test_merge_feedback_overrides_labels_and_moves_label_time_earlier() -> None:
    base = pd.Timestamp("2026-02-01T00:00:00+00:00")
    events = pd.DataFrame(
        {
            "transaction_id": ["a", "b", "c"],
            "is_fraud": np.array([0, 0, 1], dtype="int8"),
            "label_timestamp": [base + pd.Timedelta(days=7)] * 3,
        }
    )
    feedback = pd.DataFrame(
        {
            "transaction_id": ["a", "c", "zz"],
            "is_fraud": np.array([1, 1, 0], dtype="int8"),
            "label_timestamp": [base + pd.Timedelta(days=1), base + pd.Timedelta(days=9), base],
        }
    )
    out = merge_feedback(events, feedback)
    assert out["is_fraud"].tolist() == [1, 0, 1]
    assert out["is_fraud"].dtype == np.int8
    # a: review (day 1) before the chargeback (day 7); c: chargeback was first
    assert out["label_timestamp"].tolist() == [
        base + pd.Timedelta(days=1),
        base + pd.Timedelta(days=7),
        base + pd.Timedelta(days=7),
    ]
    assert out.attrs["feedback_applied"] == 2
    assert events["is_fraud"].tolist() == [0, 0, 1]  # input untouched
