"""Where the server gets model inputs: a ``FeatureSource`` turns request rows into features.

The contract is one call per batch: ``lookup(requests)`` takes a frame of raw request rows
(``REQUEST_COLUMNS``, one row per transaction, in order) and returns a frame with one row per
request, in the same order, holding every model input plus a boolean ``unknown_user`` column.
Unknown users are not an error: the source fills the documented defaults and sets the flag.

``FeastFeatureSource`` is the real one: online features from the Feast online store plus the
request-time transforms shared with training (``mlref.features.store.online_model_features``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from mlref.data.columns import AMOUNT, EVENT_TIMESTAMP, MERCHANT_CATEGORY, TRANSACTION_ID, USER_ID

if TYPE_CHECKING:
    import pandas as pd

    from mlref.serve.schemas import Transaction
    from mlref.settings import Settings

logger = logging.getLogger(__name__)

UNKNOWN_USER = "unknown_user"
REQUEST_COLUMNS: tuple[str, ...] = (
    TRANSACTION_ID,
    USER_ID,
    AMOUNT,
    MERCHANT_CATEGORY,
    EVENT_TIMESTAMP,
)


@runtime_checkable
class FeatureSource(Protocol):
    def lookup(self, requests: pd.DataFrame) -> pd.DataFrame:
        """Model inputs + ``unknown_user`` for each request row, same order, same length."""
        ...


def requests_frame(transactions: Sequence[Transaction]) -> pd.DataFrame:
    """The raw request rows as the feature code expects them (UTC ``event_timestamp``)."""
    import pandas as pd

    return pd.DataFrame(
        {
            TRANSACTION_ID: pd.Series([t.transaction_id for t in transactions], dtype=object),
            USER_ID: pd.Series([t.user_id for t in transactions], dtype="int64"),
            AMOUNT: pd.Series([t.amount for t in transactions], dtype="float64"),
            MERCHANT_CATEGORY: pd.Series([t.merchant_category for t in transactions], dtype=object),
            EVENT_TIMESTAMP: pd.to_datetime(
                [t.event_timestamp for t in transactions], utc=True
            ).astype("datetime64[ns, UTC]"),
        }
    )


def check_features(
    features: pd.DataFrame, n_requests: int, feature_names: Sequence[str]
) -> pd.DataFrame:
    """Fail loudly when a source breaks the contract, instead of scoring misaligned rows."""
    if len(features) != n_requests:
        raise ValueError(
            f"feature source returned {len(features)} rows for {n_requests} requests; "
            "lookup() must return exactly one row per request, in order"
        )
    missing = [c for c in (*feature_names, UNKNOWN_USER) if c not in features.columns]
    if missing:
        raise ValueError(
            f"feature source result lacks columns {missing}; it must return the model "
            f"inputs {list(feature_names)} and {UNKNOWN_USER!r}"
        )
    return features


class FeastFeatureSource:
    """Online features from a Feast ``FeatureStore`` (SQLite online store by default)."""

    def __init__(self, store: Any) -> None:
        self.store = store

    @classmethod
    def open(cls, settings: Settings) -> FeastFeatureSource:
        """Open the feature repo the feature stage built under ``settings.feature_repo``."""
        if not (settings.feature_repo / "feature_store.yaml").is_file():
            # checked before importing Feast (~14 s) so a missing store fails fast
            raise FileNotFoundError(
                f"no feature repo at {settings.feature_repo}; build it first "
                "(mlref.features.store.build_feature_store or `mlref demo`)"
            )
        from mlref.features.store import open_feature_store

        logger.info("opening Feast feature store at %s", settings.feature_repo)
        return cls(open_feature_store(settings))

    def lookup(self, requests: pd.DataFrame) -> pd.DataFrame:
        from mlref.features.store import online_model_features

        return online_model_features(self.store, requests)
