"""Reviewed labels reach training once a split's windows cover them, and the run says how many.

The flywheel mines hard examples from the newest traffic; a time split only trusts windows
whose labels have matured. These tests pin both halves on the real generator's data: a
reviewed label inside the training window replaces the label the model trains on, and one
newer than the newest window is counted as such, not silently dropped.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlref.flywheel import feedback_use, merge_feedback
from mlref.train.split import time_split


def _feedback(rows: pd.DataFrame, labels: np.ndarray, at: pd.Series) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "transaction_id": rows["transaction_id"].astype(str).to_numpy(),
            "is_fraud": labels.astype("int8"),
            "label_timestamp": at.to_numpy(),
        }
    )


def test_reviewed_labels_in_the_training_window_reach_the_training_rows(frame, config) -> None:
    train_window = frame[
        (frame["event_timestamp"] < config.train_end) & (frame["is_fraud"] == 0)
    ].iloc[::500][:5]
    newest = frame[frame["event_timestamp"] >= config.test_end].iloc[:5]
    assert len(train_window) == 5
    assert len(newest) == 5
    # the reviewer says the first five were fraud, known an hour after each transaction
    reviewed = pd.concat(
        [
            _feedback(
                train_window,
                np.ones(5),
                train_window["event_timestamp"] + pd.Timedelta(hours=1),
            ),
            _feedback(newest, newest["is_fraud"].to_numpy(), newest["event_timestamp"]),
            pd.DataFrame(
                {
                    "transaction_id": ["not-a-transaction"],
                    "is_fraud": np.array([1], dtype="int8"),
                    "label_timestamp": [config.test_end],
                }
            ),
        ],
        ignore_index=True,
    )
    merged = merge_feedback(frame, reviewed)
    split = time_split(merged, config)

    trained_on = split.train.set_index(split.train["transaction_id"].astype(str))["is_fraud"]
    ids = train_window["transaction_id"].astype(str)
    assert trained_on.loc[ids].tolist() == [1] * 5  # the reviewed label, not the original 0

    use = feedback_use(reviewed, merged, split, config.test_end)
    assert (use.reviewed, use.in_events, use.in_split, use.newer_than_windows) == (11, 10, 5, 5)
    assert use.newest_window_end == config.test_end
    text = use.explain()
    assert text.startswith("5 of 11 reviewed labels are in this run's windows")
    assert "1 are for transactions not in the training events" in text
    assert "5 are newer than its newest window" in text


def test_no_reviews_says_so(frame, config) -> None:
    empty = pd.DataFrame({"transaction_id": [], "is_fraud": [], "label_timestamp": []})
    use = feedback_use(empty, frame, time_split(frame, config))
    assert use.reviewed == 0
    assert use.explain() == "no reviewed labels yet"
