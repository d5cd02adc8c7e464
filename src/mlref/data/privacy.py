"""The pipeline's privacy step: personal data leaves raw events before anything else reads them.

Raw events may carry a card number, the holder's e-mail and the purchase's IP address
(``mlref.data.columns.PII_COLUMNS``). :func:`drop_personal_data` DROPS them; it runs on the
raw frame before validation (:func:`mlref.pipeline.validate_events`), so the validated
events, the feature store, the training sets, the model and the prediction log never hold
them.

Dropped rather than hashed because nothing downstream needs them: no feature, label or
join key reads them, and a plain hash would not anonymise them anyway (a 16-digit card
number behind a known issuer prefix, or an address from a list of e-mails, is recovered by
hashing every candidate). A feature that needs "same card" or "same address" would take a
keyed hash (HMAC with a secret held outside the repository) added here, in one place.
The ``pii_scan`` gate (tests/gates/test_policy_gates.py) checks that nothing got through.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlref.data.columns import PII_COLUMNS

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["PII_COLUMNS", "drop_personal_data"]


def drop_personal_data(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` without the personal-data columns (a new frame; the input is unchanged).

    A frame without them is returned as is (not copied).
    """
    present = [c for c in PII_COLUMNS if c in frame.columns]
    if not present:
        return frame
    return frame.drop(columns=present)
