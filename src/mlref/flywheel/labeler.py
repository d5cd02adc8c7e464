"""The labelling step of the flywheel and how its labels feed back into training data.

In the reference system the human reviewer is simulated: ``SimulatedReviewer`` reads the
generator's ground truth (``is_fraud`` by ``transaction_id``). A review is faster than the
chargeback that would otherwise reveal the label, so a reviewed label becomes known at the
review time, usually long before the generator's ``label_timestamp``; ``merge_feedback``
records exactly that in the training events.

A reviewed label is training data from the moment it is known, but a time split only uses
windows whose labels have matured (``TrainConfig.from_dates``: the newest window ends a label
delay before ``as_of``). Hard examples come from the newest traffic, so a retrain right after
the review usually cannot use them yet: they enter a later retrain, once its windows cover
their transactions. ``feedback_use`` says how many of them a training run actually used, so
nobody mistakes a retrain for one that learned from the reviews.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from mlref.flywheel.review_queue import ReviewQueue

if TYPE_CHECKING:
    import pandas as pd

    from mlref.train.split import Split

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReviewOutcome:
    """What one review pass did."""

    labelled: int
    skipped: int
    fraud: int

    @property
    def reviewed(self) -> int:
        return self.labelled + self.skipped


class SimulatedReviewer:
    """Labels queue items from ground truth (``transaction_id``, ``is_fraud``).

    Items whose transaction is not in the ground truth are skipped with a note, never
    guessed.
    """

    def __init__(self, ground_truth: pd.DataFrame, name: str = "simulated-reviewer") -> None:
        missing = sorted({"transaction_id", "is_fraud"} - set(ground_truth.columns))
        if missing:
            raise ValueError(
                f"ground truth lacks columns {missing}; pass the generator's transactions "
                "(transaction_id, is_fraud)"
            )
        truth = ground_truth.loc[:, ["transaction_id", "is_fraud"]].dropna()
        bad = ~truth["is_fraud"].isin([0, 1])
        if bad.any():
            raise ValueError(f"is_fraud must be 0/1; {int(bad.sum())} rows are not")
        conflicts = truth.groupby("transaction_id")["is_fraud"].nunique()
        conflicts = conflicts[conflicts > 1]
        if len(conflicts):
            raise ValueError(
                f"ground truth gives conflicting labels for {len(conflicts)} transactions, "
                f"e.g. {list(conflicts.index[:3])}"
            )
        self.name = name
        self._truth: dict[str, int] = {
            str(t): int(v) for t, v in zip(truth["transaction_id"], truth["is_fraud"], strict=True)
        }

    def review(
        self,
        queue: ReviewQueue,
        limit: int | None = None,
        now: datetime | pd.Timestamp | float | None = None,
    ) -> ReviewOutcome:
        """Review up to ``limit`` pending items in queue order, labelled at time ``now``."""
        items = queue.pending(limit)
        labelled = skipped = fraud = 0
        for tid in items["transaction_id"]:
            label = self._truth.get(str(tid))
            if label is None:
                queue.skip(
                    tid, at=now, reason="no ground truth for this transaction", reviewer=self.name
                )
                skipped += 1
                continue
            queue.label(tid, label, at=now, reviewer=self.name)
            labelled += 1
            fraud += label
        outcome = ReviewOutcome(labelled=labelled, skipped=skipped, fraud=fraud)
        logger.info("%s: labelled %d (%d fraud), skipped %d", self.name, labelled, fraud, skipped)
        return outcome


def merge_feedback(events: pd.DataFrame, feedback: pd.DataFrame) -> pd.DataFrame:
    """Training events with reviewed labels applied.

    For each transaction in ``feedback`` (from :func:`labelled_feedback`) the reviewed label
    replaces ``is_fraud`` and ``label_timestamp`` becomes the earlier of the existing label
    time and the review time (the label was known from then on). Events without feedback are
    unchanged; feedback for transactions not in ``events`` is ignored (logged). The number of
    events changed is in ``result.attrs["feedback_applied"]``.
    """
    import pandas as pd

    for name, frame, cols in (
        ("events", events, ("transaction_id", "is_fraud", "label_timestamp")),
        ("feedback", feedback, ("transaction_id", "is_fraud", "label_timestamp")),
    ):
        missing = sorted(set(cols) - set(frame.columns))
        if missing:
            raise ValueError(f"{name} lack columns {missing}")
    if feedback["transaction_id"].duplicated().any():
        raise ValueError("feedback has more than one label for some transactions")

    out = events.copy()
    fb_keys = feedback["transaction_id"].astype(str)
    fb_label = pd.Series(feedback["is_fraud"].to_numpy(), index=fb_keys)
    fb_time = pd.Series(pd.to_datetime(feedback["label_timestamp"], utc=True).array, index=fb_keys)
    keys = out["transaction_id"].astype(str)
    hit = keys.isin(fb_keys)
    unknown = int((~fb_keys.isin(keys)).sum())
    if unknown:
        logger.info("%d feedback labels are for transactions outside these events", unknown)
    if hit.any():
        label_dtype = out["is_fraud"].dtype
        out.loc[hit, "is_fraud"] = keys[hit].map(fb_label).to_numpy()
        out["is_fraud"] = out["is_fraud"].astype(label_dtype)
        current = pd.to_datetime(out["label_timestamp"], utc=True)
        reviewed = keys.map(fb_time)
        earlier = hit & (current.isna() | (reviewed < current))
        out["label_timestamp"] = current.where(~earlier, reviewed)
    out.attrs["feedback_applied"] = int(hit.sum())
    return out


@dataclass(frozen=True)
class FeedbackUse:
    """How many reviewed labels one training run's split used, and why not the others."""

    reviewed: int  # labels in the feedback
    in_events: int  # of those, for transactions in the training events
    in_split: int  # of those, rows the split put in train / validation / test
    newer_than_windows: int  # of those, transactions at or after the newest window's end
    newest_window_end: pd.Timestamp | None

    def explain(self) -> str:
        if not self.reviewed:
            return "no reviewed labels yet"
        text = f"{self.in_split} of {self.reviewed} reviewed labels are in this run's windows"
        reasons = []
        if self.reviewed > self.in_events:
            reasons.append(
                f"{self.reviewed - self.in_events} are for transactions not in the training events"
            )
        if self.newer_than_windows:
            end = self.newest_window_end
            when = f" (ends {end:%Y-%m-%d %H:%M})" if end is not None else ""
            reasons.append(
                f"{self.newer_than_windows} are newer than its newest window{when}: they count "
                "once a later retrain's mature-label windows cover them"
            )
        other = self.in_events - self.in_split - self.newer_than_windows
        if other:
            reasons.append(f"{other} fall in an embargo gap or before the training start")
        return text + ("; " + "; ".join(reasons) if reasons else "")

    def to_dict(self) -> dict[str, object]:
        end = self.newest_window_end
        return {
            "reviewed": self.reviewed,
            "in_events": self.in_events,
            "in_split": self.in_split,
            "newer_than_windows": self.newer_than_windows,
            "newest_window_end": None if end is None else end.isoformat(),
        }


def feedback_use(
    feedback: pd.DataFrame,
    events: pd.DataFrame,
    split: Split,
    windows_end: pd.Timestamp | None = None,
) -> FeedbackUse:
    """Count the reviewed labels (``labelled_feedback``) that ``split`` used, from ``events``
    (the training events they were merged into, with ``event_timestamp``). ``windows_end`` is
    the end of the newest window (the run's ``config.test_end``; default: the newest test
    event)."""
    import pandas as pd

    reviewed = feedback["transaction_id"].astype(str)
    known = events["transaction_id"].astype(str)
    present = reviewed.isin(known)
    used = pd.concat([split.train, split.val, split.test])["transaction_id"].astype(str)
    in_split = int(reviewed.isin(used).sum())
    if windows_end is None and len(split.test):
        windows_end = split.test["event_timestamp"].max()
    newer = 0
    if windows_end is not None:
        stamps = events.loc[known.isin(reviewed).to_numpy(), "event_timestamp"]
        newer = int((stamps >= windows_end).sum())
    return FeedbackUse(
        reviewed=len(reviewed),
        in_events=int(present.sum()),
        in_split=in_split,
        newer_than_windows=newer,
        newest_window_end=None if windows_end is None else pd.Timestamp(windows_end),
    )
