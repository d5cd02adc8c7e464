"""Where the server gets model inputs: a ``FeatureSource`` turns request rows into features.

The contract is one call per batch: ``lookup(requests)`` takes a :class:`RequestBatch` (the raw
request fields as arrays, one entry per transaction, in order) and returns a mapping (a dict
of arrays, or a DataFrame) with one entry per request, in the same order, for every model
input plus a boolean ``unknown_user``. Unknown users are not an error: the source fills the
documented defaults and sets the flag.

``FeastFeatureSource`` is the real one: online features from the Feast online store plus the
request-time transforms shared with training (``mlref.features.store.online_feature_arrays``),
arrays end to end: this runs once per batch on the serving hot path, where building
DataFrames cost more than the store read.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from mlref.data.columns import AMOUNT, EVENT_TIMESTAMP, MERCHANT_CATEGORY, TRANSACTION_ID, USER_ID

if TYPE_CHECKING:
    import pandas as pd

    from mlref.serve.schemas import Transaction
    from mlref.settings import Settings

logger = logging.getLogger(__name__)

UNKNOWN_USER = "unknown_user"
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_INT64 = f"{INT64_MIN} .. {INT64_MAX}"
# the times datetime_ns turns into int64 ns (whole microseconds; int64 min is the NaT sentinel)
EVENT_NS_FIRST = datetime(1970, 1, 1, tzinfo=UTC) - timedelta(microseconds=INT64_MAX // 1000)
EVENT_NS_LAST = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=INT64_MAX // 1000)
REQUEST_COLUMNS: tuple[str, ...] = (
    TRANSACTION_ID,
    USER_ID,
    AMOUNT,
    MERCHANT_CATEGORY,
    EVENT_TIMESTAMP,
)


@dataclass(frozen=True)
class RequestBatch:
    """The raw request fields of one batch, one entry per transaction, in request order."""

    transaction_id: tuple[str, ...]
    user_id: np.ndarray  # int64
    amount: np.ndarray  # float64
    merchant_category: tuple[str, ...]
    event_ns: np.ndarray  # int64 ns since the epoch (UTC)

    def __len__(self) -> int:
        return len(self.transaction_id)

    def frame(self) -> pd.DataFrame:
        """The same rows as a DataFrame of ``REQUEST_COLUMNS`` (UTC ``event_timestamp``)."""
        import pandas as pd

        return pd.DataFrame(
            {
                TRANSACTION_ID: pd.Series(list(self.transaction_id), dtype=object),
                USER_ID: self.user_id,
                AMOUNT: self.amount,
                MERCHANT_CATEGORY: pd.Series(list(self.merchant_category), dtype=object),
                EVENT_TIMESTAMP: pd.DatetimeIndex(self.event_ns.view("datetime64[ns]"), tz="UTC"),
            }
        )


def request_batch(transactions: Sequence[Transaction]) -> RequestBatch:
    """The validated transactions as a :class:`RequestBatch` (no pandas: hot path).

    Runs in the batch worker, for the whole batch at once: a value it cannot convert would
    fail every request of the batch. The schema's bounds keep such values out, and
    :func:`conversion_errors` checks each request again before it is queued.
    """
    from mlref.features.definitions import datetime_ns

    n = len(transactions)
    try:
        return RequestBatch(
            transaction_id=tuple(t.transaction_id for t in transactions),
            user_id=np.fromiter((t.user_id for t in transactions), np.int64, n),
            amount=np.fromiter((t.amount for t in transactions), np.float64, n),
            merchant_category=tuple(t.merchant_category for t in transactions),
            event_ns=np.fromiter(
                (datetime_ns(t.event_timestamp) for t in transactions), np.int64, n
            ),
        )
    except (OverflowError, TypeError, ValueError) as exc:
        bad = conversion_errors(transactions)
        raise ValueError(
            f"cannot convert the request fields to arrays ({type(exc).__name__}: {exc}); "
            f"unconvertible: {bad or 'none found'}; check requests with conversion_errors() "
            "before queueing them"
        ) from exc


def conversion_errors(transactions: Sequence[Transaction]) -> list[tuple[int, str, str]]:
    """``(index, field, reason)`` for each value :func:`request_batch` could not convert.

    Called on the event loop before the requests are queued, so a value the schema let
    through by mistake fails its own request (422), not the batch it would be scored in.
    Cheap (~0.3 us per transaction): range comparisons, no conversion.
    """
    errors: list[tuple[int, str, str]] = []
    for i, t in enumerate(transactions):
        user_id = t.user_id
        if not (isinstance(user_id, int) and INT64_MIN <= user_id <= INT64_MAX):
            errors.append((i, USER_ID, f"Input should be an integer within int64 ({_INT64})"))
        stamp = t.event_timestamp
        try:
            if stamp.tzinfo is None:  # datetime_ns reads naive as UTC
                stamp = stamp.replace(tzinfo=UTC)
            convertible = EVENT_NS_FIRST <= stamp <= EVENT_NS_LAST
        except (AttributeError, TypeError, ValueError, OverflowError):
            convertible = False
        if not convertible:
            errors.append(
                (
                    i,
                    EVENT_TIMESTAMP,
                    "Input should be a timezone-aware time that int64 nanoseconds since the "
                    "epoch can hold (1677-09-21 .. 2262-04-11 UTC)",
                )
            )
    return errors


@runtime_checkable
class FeatureSource(Protocol):
    def lookup(self, requests: RequestBatch) -> Mapping[str, Any]:
        """Model inputs + ``unknown_user`` for each request: arrays (or DataFrame columns) of
        ``len(requests)`` entries, in request order."""
        ...


def check_features(
    features: Mapping[str, Any] | pd.DataFrame, n_requests: int, feature_names: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """(float64 (n, k) model inputs in ``feature_names`` order, bool unknown_user flags).

    Fails loudly when a source breaks the contract, instead of scoring misaligned rows.
    """
    available = features.columns if hasattr(features, "columns") else features.keys()
    missing = [c for c in (*feature_names, UNKNOWN_USER) if c not in available]
    if missing:
        raise ValueError(
            f"feature source result lacks columns {missing}; it must return the model "
            f"inputs {list(feature_names)} and {UNKNOWN_USER!r}"
        )
    columns = [np.asarray(features[name], dtype=np.float64) for name in feature_names]
    unknown = np.asarray(features[UNKNOWN_USER], dtype=bool)
    lengths = {len(c) for c in (*columns, unknown)}
    if lengths != {n_requests}:
        raise ValueError(
            f"feature source returned {sorted(lengths)} rows for {n_requests} requests; "
            "lookup() must return exactly one row per request, in order"
        )
    matrix = np.column_stack(columns) if columns else np.empty((n_requests, 0))
    return matrix, unknown


class FeatureStoreUnavailable(RuntimeError):
    """The online store could not be read (its file missing, truncated or locked, its server
    unreachable). Not the request's fault: answered 503, and the server turns not ready until
    a probe reads the store again (``ServingRuntime``)."""


def _store_errors() -> tuple[type[BaseException], ...]:
    """What a broken online store raises: SQLite's errors, the OS's, and Redis's when present."""
    errors: list[type[BaseException]] = [sqlite3.Error, OSError]
    with contextlib.suppress(ImportError):
        from redis.exceptions import RedisError

        errors.append(RedisError)
    return tuple(errors)


class FeastFeatureSource:
    """Online features from a Feast ``FeatureStore`` (SQLite online store by default).

    With the SQLite store this source owns the connection Feast reads through: Feast's own
    opens the file with ``sqlite3.connect``, which creates a missing file (an empty store that
    answers "no such table" for ever), and keeps it across a broken file, so a store restored
    under a running server was never read again. Here the file is opened read-write but never
    created (``mode=rw``), and a read that fails drops the connection: the next read (or
    :meth:`reconnect`) opens the file as it is then.
    """

    def __init__(self, store: Any, *, online_path: Path | None = None) -> None:
        self.store = store
        self.online_path = online_path  # the SQLite file, None for other online stores
        self._errors = _store_errors()

    @classmethod
    def open(cls, settings: Settings) -> FeastFeatureSource:
        """Open the feature repo the feature stage built under ``settings.feature_repo``;
        creates nothing: a missing repo, registry or online store file is named."""
        if not (settings.feature_repo / "feature_store.yaml").is_file():
            # checked before importing Feast (~14 s) so a missing store fails fast
            raise FileNotFoundError(
                f"no feature repo at {settings.feature_repo}; build it first "
                "(mlref.features.store.build_feature_store or `mlref demo`)"
            )
        from mlref.features.store import open_feature_store

        logger.info("opening Feast feature store at %s", settings.feature_repo)
        store = open_feature_store(settings)
        config = store.config
        registry = _repo_path(config, str(getattr(config.registry, "path", "")))
        if registry is not None and not registry.is_file():
            raise FileNotFoundError(
                f"the Feast registry file {registry} is missing; rebuild the feature store "
                "(`mlref features` or `mlref demo`)"
            )
        online_path = None
        if getattr(config.online_store, "type", "sqlite") == "sqlite":
            online_path = _repo_path(config, str(config.online_store.path))
        source = cls(store, online_path=online_path)
        if online_path is not None:
            source.reconnect()  # names a missing file now, before any read could create it
        return source

    def _online_store(self) -> Any:
        # Feast 0.67 has no public accessor for the provider's online store object
        return self.store._get_provider().online_store

    def reconnect(self) -> None:
        """(Re)open the SQLite online store file, never creating it; no-op for other stores."""
        if self.online_path is None:
            return
        self._disconnect()
        if not self.online_path.is_file():
            raise FeatureStoreUnavailable(
                f"the online store file {self.online_path} is missing; restore it or rebuild "
                "the feature store (`mlref features`)"
            )
        try:
            conn = sqlite3.connect(
                f"{self.online_path.as_uri()}?mode=rw",
                uri=True,
                # what Feast's own connection uses (it reads timestamps through these)
                detect_types=sqlite3.PARSE_DECLTYPES | sqlite3.PARSE_COLNAMES,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise FeatureStoreUnavailable(
                f"cannot open the online store file {self.online_path}: {exc}"
            ) from exc
        self._online_store()._conn = conn

    def _disconnect(self) -> None:
        online = self._online_store()
        conn = getattr(online, "_conn", None)
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
            online._conn = None

    def lookup(self, requests: RequestBatch) -> dict[str, np.ndarray]:
        from mlref.features.store import online_feature_arrays

        try:
            if self.online_path is not None and self._online_store()._conn is None:
                self.reconnect()
            return online_feature_arrays(
                self.store,
                requests.user_id,
                requests.amount,
                requests.merchant_category,
                requests.event_ns,
            )
        except self._errors as exc:
            if self.online_path is not None:
                self._disconnect()  # the next read opens the file as it is then
            raise FeatureStoreUnavailable(
                f"online store read failed: {type(exc).__name__}: {exc}"
            ) from exc


def _repo_path(config: Any, path: str) -> Path | None:
    """A path of ``feature_store.yaml`` as Feast resolves it (relative to the repo); None for
    a URI (a remote registry or store)."""
    if not path or "://" in path:
        return None
    resolved = Path(path)
    if not resolved.is_absolute() and getattr(config, "repo_path", None) is not None:
        resolved = Path(config.repo_path) / resolved
    return resolved
