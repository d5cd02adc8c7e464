"""The data flywheel: mine hard examples from the prediction log, review them, feed labels back.

``mine_hard_examples(read_log(...))`` -> ``ReviewQueue.enqueue`` -> ``SimulatedReviewer.review``
-> ``labelled_feedback(queue_path)`` -> ``merge_feedback(events, feedback)`` -> retrain.
"""

from __future__ import annotations

from mlref.flywheel.labeler import (
    FeedbackUse,
    ReviewOutcome,
    SimulatedReviewer,
    feedback_use,
    merge_feedback,
)
from mlref.flywheel.mining import logit_distance, mine_hard_examples
from mlref.flywheel.review_queue import STATUSES, ReviewQueue, labelled_feedback

__all__ = [
    "STATUSES",
    "FeedbackUse",
    "ReviewOutcome",
    "ReviewQueue",
    "SimulatedReviewer",
    "feedback_use",
    "labelled_feedback",
    "logit_distance",
    "merge_feedback",
    "mine_hard_examples",
]
