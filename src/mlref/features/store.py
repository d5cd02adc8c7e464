"""The Feast feature store of the reference system: build, train from it, push to it, serve.

``import feast`` takes ~14 s, so it happens inside these functions only; importing this
module is cheap.

* :func:`build_feature_store` writes the repo (``feature_store.yaml`` from the packaged
  template), the offline parquet (:func:`mlref.features.offline.stored_rows`), applies the
  definitions and materialises the whole span with ``materialize(start, end)``
  (``materialize_incremental`` on a fresh store starts at now - TTL and silently loads nothing
  from historical data).
* :func:`training_frame`: ``get_historical_features`` with the feature service, at
  ``lookup_time`` of each transaction, through the DuckDB offline store; every entity row is
  checked to come back, in input order. :func:`point_in_time_audit`: over the same entity
  rows, the state time of the row each feature view's join picked (the leakage audit).
* :func:`push_events`: the online path (:class:`mlref.features.online.OnlineAggregator`)
  pushed through the push source in micro-batches.
* :func:`online_feature_arrays` (and its DataFrame face :func:`online_model_features`): one
  online-store read per feature view per batch (``Provider.online_read``, see
  :class:`_OnlineReader`), the same TTL rule as offline (the online store does not enforce
  TTLs, feast issue 6821), then the shared request transforms. :func:`online_state_times`:
  per view, when each user's online row was written (the freshness audit of what is served).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import logging
import os
import shutil
import string
import sys
import time
import warnings
import weakref
from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mlref.data.columns import (
    AMOUNT,
    EVENT_TIMESTAMP,
    LABEL,
    LABEL_TIMESTAMP,
    MERCHANT_CATEGORY,
    TRANSACTION_ID,
    USER_ID,
)
from mlref.features.definitions import (
    FEATURE_SERVICE,
    LOOKUP_OFFSET,
    MODEL_FEATURES,
    NAT_NS,
    PROJECT,
    PUSH_SOURCE,
    REQUEST_TS,
    STORED_COLUMNS,
    STORED_FEATURES,
    VIEWS,
    VIEWS_BY_NAME,
    StoredFeature,
    datetime_ns,
    lookup_time,
    seconds_to_ns,
    to_epoch_ns,
    to_utc,
)
from mlref.features.offline import stored_rows, write_offline_parquet
from mlref.features.online import OnlineAggregator, latest_per_user, resolve_online_arrays
from mlref.features.transforms import request_feature_arrays

if TYPE_CHECKING:
    from feast import FeatureStore

    from mlref.settings import Settings

logger = logging.getLogger(__name__)

OFFLINE_FILE = "user_state.parquet"
_ROW_ID = "mlref_row_id"
_NS = 1_000_000_000


@contextlib.contextmanager
def _known_feast_warnings() -> Iterator[None]:
    """Silence two known, harmless third-party warnings around offline Feast calls:
    Feast flags every on-demand view as experimental, and ibis calls a DuckDB API that
    DuckDB 1.4 deprecates. (Not used on the online path: catch_warnings is not
    thread-safe.)"""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="On demand feature view is an experimental", category=RuntimeWarning
        )
        warnings.filterwarnings(
            "ignore", message=r"fetch_arrow_table\(\) is deprecated", category=DeprecationWarning
        )
        yield


def _import_feast() -> None:
    """Import feast (~14 s) without keeping the global warning filters it sets on import
    (``warnings.simplefilter("once", ...)`` in several feast modules), nor the frames of
    whoever imported it first (see ``_release_import_frames``)."""
    with warnings.catch_warnings():
        # prometheus_client picks in-process or file-backed (multiprocess) metric values
        # when it is first imported; feast.metrics sets PROMETHEUS_MULTIPROC_DIR just
        # before importing it, for Gunicorn pre-fork feature servers, which mlref does not
        # run. Imported first, it keeps feast's metrics in memory: no mmap files left open
        # until interpreter exit ("Exception ignored ... ResourceWarning: unclosed file").
        importlib.import_module("prometheus_client")  # before feast, see above
        multiproc_set_before = "PROMETHEUS_MULTIPROC_DIR" in os.environ
        import feast  # noqa: F401

        import mlref.features.feature_repo.fraud_repo  # noqa: F401
    if not multiproc_set_before:
        # feast.metrics also exports its temporary directory to the environment: every
        # child process (a server, the load generator, a test's probe) would then keep
        # file-backed metrics in a directory this process deletes at exit
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    _release_import_frames()


def _release_import_frames() -> None:
    """Drop the traceback of the torch ImportError that feast keeps in a module global.

    ``feast.torch_wrapper`` stores the exception of its optional ``import torch`` for a
    later message. Its traceback reaches, through ``f_back``, every frame of the stack that
    first imported feast, with their locals: in the test session that is the reference
    system's build, trained XGBoost model included, pinned until interpreter exit, where
    ``Booster.__del__`` then runs after xgboost's globals are gone ("Exception ignored in:
    <function Booster.__del__ ...> AttributeError"). The message is kept.
    """
    error = getattr(sys.modules.get("feast.torch_wrapper"), "_torch_import_error", None)
    seen: set[int] = set()
    while isinstance(error, BaseException) and id(error) not in seen:
        seen.add(id(error))
        error.__traceback__ = None
        error = error.__cause__ or error.__context__


def _data_dir(repo: Path) -> Path:
    return repo / "data"


def offline_parquet_path(settings: Settings) -> Path:
    return _data_dir(settings.feature_repo) / OFFLINE_FILE


def write_feature_repo(settings: Settings) -> Path:
    """Write ``feature_store.yaml`` into ``settings.feature_repo`` from the packaged template.

    Any earlier registry / online store / offline parquet there is removed first, so a
    rebuild never serves rows of users that are no longer in the data.
    """
    repo = settings.feature_repo
    data = _data_dir(repo)
    if data.exists():
        shutil.rmtree(data)
    data.mkdir(parents=True)
    template = (
        resources.files("mlref.features.feature_repo").joinpath("feature_store.yaml").read_text()
    )
    text = string.Template(template).substitute(
        project=PROJECT,
        registry_path=(data / "registry.db").as_posix(),
        online_store=_online_store_block(settings, data),
    )
    if settings.online_store == "redis":
        _clear_redis_project(settings.redis_url)
    (repo / "feature_store.yaml").write_text(text)
    return repo


def _online_store_block(settings: Settings, data: Path) -> str:
    """The ``online_store:`` body for ``settings.online_store`` (YAML, indented)."""
    if settings.online_store == "redis":
        # JSON strings are valid YAML scalars: safe for passwords with ':' or '#'
        return f"    type: redis\n    connection_string: {json.dumps(settings.redis_url)}"
    return f"    type: sqlite\n    path: {json.dumps((data / 'online_store.db').as_posix())}"


def _clear_redis_project(connection_string: str) -> None:
    """Delete this project's keys from Redis (what Feast's teardown deletes), so a rebuild
    never serves rows of users that are no longer in the data."""
    import redis

    # parsed as Feast parses it: host:port, then key=value with JSON-decoded values
    nodes = [c for c in connection_string.split(",") if "=" not in c]
    kwargs: dict[str, Any] = {}
    for item in (c for c in connection_string.split(",") if "=" in c):
        key, value = item.split("=", 1)
        with contextlib.suppress(json.JSONDecodeError):
            value = json.loads(value)
        kwargs[key] = value
    host, _, port = (nodes[0] if nodes else "localhost:6379").rpartition(":")
    client = redis.Redis(host=host or "localhost", port=int(port or 6379), **kwargs)
    try:
        # Feast keys are <serialized entity key><project>
        keys = list(client.scan_iter(match=b"*" + PROJECT.encode(), count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])
        logger.info("cleared %d online-store keys of project %r from Redis", len(keys), PROJECT)
    except redis.exceptions.ConnectionError as exc:
        raise ConnectionError(
            f"no Redis at {connection_string!r} for the online store ({exc}); start "
            "redis-server there or set online_store='sqlite'"
        ) from exc
    finally:
        client.close()


def open_feature_store(settings: Settings) -> FeatureStore:
    """Open an already built store (serving: no apply, no materialize)."""
    _import_feast()
    from feast import FeatureStore

    if not (settings.feature_repo / "feature_store.yaml").exists():
        raise FileNotFoundError(
            f"no feature repo at {settings.feature_repo}; build it first: "
            "`uv run mlref generate && uv run mlref features` (or `uv run mlref demo`)"
        )
    return FeatureStore(repo_path=str(settings.feature_repo))


def build_feature_store(
    settings: Settings,
    events: pd.DataFrame,
    *,
    timings: dict[str, float] | None = None,
    features: Sequence[StoredFeature] = STORED_FEATURES,
) -> FeatureStore:
    """Repo + offline parquet -> apply -> materialize(start, end) over the events' span.

    ``features`` (default: the stored features) is the feature set the rows and views are
    derived from (the feature drill passes the set with a new definition added).

    ``events`` are validated raw transactions. Per-step wall times (seconds) are logged and,
    if ``timings`` is given, stored in it (keys: rows, import_feast, apply, materialize).
    """
    timings = {} if timings is None else timings
    if events.empty:
        raise ValueError("no events to build the feature store from")
    started = time.perf_counter()
    rows = stored_rows(events, features)
    repo = write_feature_repo(settings)
    parquet = write_offline_parquet(rows, _data_dir(repo) / OFFLINE_FILE)
    timings["rows"] = time.perf_counter() - started
    logger.info(
        "feature rows: %d events -> %d stored rows in %.2fs",
        len(events),
        len(rows),
        timings["rows"],
    )

    started = time.perf_counter()
    _import_feast()
    from feast import FeatureStore

    from mlref.features.feature_repo.fraud_repo import feast_objects

    timings["import_feast"] = time.perf_counter() - started
    started = time.perf_counter()
    store = FeatureStore(repo_path=str(repo))
    objects = feast_objects(str(parquet.resolve()), features)
    with _known_feast_warnings():
        store.apply(objects.all())
    timings["apply"] = time.perf_counter() - started
    logger.info("feast apply: %.2fs", timings["apply"])

    started = time.perf_counter()
    ts = rows[EVENT_TIMESTAMP]
    start = ts.min().to_pydatetime()
    end = (ts.max() + pd.Timedelta(seconds=1)).to_pydatetime()
    # Feast prints a header and one bare "<view>:" line per view to stdout; the log line below
    # says what was materialised, so its print goes to the debug log, not the user's screen
    printed = io.StringIO()
    with _known_feast_warnings(), contextlib.redirect_stdout(printed):
        store.materialize(start_date=start, end_date=end)
    logger.debug("feast materialize printed: %s", printed.getvalue().strip())
    timings["materialize"] = time.perf_counter() - started
    logger.info(
        "feast materialize %s .. %s (%d users): %.2fs",
        start.isoformat(),
        end.isoformat(),
        rows[USER_ID].nunique(),
        timings["materialize"],
    )
    return store


def _request_ts(event_ts: pd.Series) -> np.ndarray:
    return to_epoch_ns(event_ts) / _NS


def _entity_rows(events: pd.DataFrame, what: str) -> tuple[pd.DataFrame, pd.Series]:
    """The entity rows of a historical retrieval (one per transaction, as of its
    ``lookup_time``, with the request fields) and the transactions' event times. Training
    and the point-in-time audit both build them here, so the audit joins what training joined.
    """
    need = [TRANSACTION_ID, USER_ID, EVENT_TIMESTAMP, AMOUNT, MERCHANT_CATEGORY]
    missing = [c for c in need if c not in events.columns]
    if missing:
        raise ValueError(f"{what}: events are missing columns {missing}")
    event_ts = to_utc(events[EVENT_TIMESTAMP]).reset_index(drop=True)
    entity_df = pd.DataFrame(
        {
            _ROW_ID: np.arange(len(events), dtype=np.int64),
            USER_ID: events[USER_ID].to_numpy(dtype=np.int64),
            EVENT_TIMESTAMP: lookup_time(event_ts).astype("datetime64[ns, UTC]"),
            AMOUNT: events[AMOUNT].to_numpy(dtype=np.float64),
            REQUEST_TS: _request_ts(event_ts),
            MERCHANT_CATEGORY: events[MERCHANT_CATEGORY].astype(str).to_numpy(dtype=object),
        }
    )
    return entity_df, event_ts


def _historical(store: FeatureStore, entity_df: pd.DataFrame, **kwargs: Any) -> pd.DataFrame:
    """``get_historical_features(...).to_df()``, one row per entity row, in entity order."""
    started = time.perf_counter()
    with _known_feast_warnings():
        result = store.get_historical_features(entity_df=entity_df, **kwargs).to_df()
    elapsed = time.perf_counter() - started
    logger.info("historical features for %d rows: %.2fs", len(entity_df), elapsed)

    # Feast gives no order guarantee and its file store dropped rows (feast issue 6787):
    # every entity row must come back exactly once.
    ids = np.sort(result[_ROW_ID].to_numpy(dtype=np.int64)) if len(result) else np.array([])
    if len(result) != len(entity_df) or not np.array_equal(ids, entity_df[_ROW_ID].to_numpy()):
        raise RuntimeError(
            f"get_historical_features returned {len(result)} rows for {len(entity_df)} entity "
            "rows (or not each exactly once); check the offline store type in "
            "feature_store.yaml (duckdb) and the entity timestamps"
        )
    return result.sort_values(_ROW_ID, kind="mergesort").reset_index(drop=True)


def training_frame(store: FeatureStore, events: pd.DataFrame) -> pd.DataFrame:
    """Training rows from ``get_historical_features`` with the feature service.

    One row per input transaction, in input order: transaction_id, user_id, event_timestamp,
    the label columns present in ``events`` (is_fraud, label_timestamp), then MODEL_FEATURES.
    Each transaction at ``t`` reads the stored state as of ``lookup_time(t)``.
    """
    entity_df, event_ts = _entity_rows(events, "training_frame")
    service = store.get_feature_service(FEATURE_SERVICE)
    result = _historical(store, entity_df, features=service)
    out = pd.DataFrame(
        {
            TRANSACTION_ID: events[TRANSACTION_ID].to_numpy(),
            USER_ID: events[USER_ID].to_numpy(dtype=np.int64),
            EVENT_TIMESTAMP: event_ts,
        }
    )
    for col in (LABEL, LABEL_TIMESTAMP):
        if col in events.columns:
            out[col] = events[col].reset_index(drop=True)  # keeps dtypes (tz-aware, int8)
    for name in MODEL_FEATURES:
        out[name] = result[name].to_numpy(dtype=np.float64, na_value=np.nan)
    return out


def state_time_column(view: str) -> str:
    """The audit column of ``view`` in :func:`point_in_time_audit` (Feast's full name)."""
    return f"{view}__{VIEWS_BY_NAME[view].state_time_field}"


def point_in_time_audit(store: FeatureStore, events: pd.DataFrame) -> pd.DataFrame:
    """For each transaction and EVERY feature view, the state time of the stored row that
    view's point-in-time join picked for it (the view's ``state_time_field``: the newest
    event that state includes), from the same entity rows as :func:`training_frame`.

    Columns: transaction_id, event_timestamp, lookup_time, then one UTC timestamp column per
    view (:func:`state_time_column`; NaT where the view had no row or it had expired). A
    correct join never returns a state time after ``lookup_time``.

    A separate retrieval of the audit fields, not part of the feature service: the service is
    the model's input contract (training and serving name it), and Feast joins each view on
    its own (source, timestamp field, TTL) whatever fields of it are asked for, so the same
    entity rows pick the same stored row per view as training did.
    """
    entity_df, event_ts = _entity_rows(events, "point_in_time_audit")
    refs = [f"{view.name}:{view.state_time_field}" for view in VIEWS]
    result = _historical(store, entity_df, features=refs, full_feature_names=True)
    out = pd.DataFrame(
        {
            TRANSACTION_ID: events[TRANSACTION_ID].to_numpy(),
            EVENT_TIMESTAMP: event_ts,
            "lookup_time": lookup_time(event_ts),
        }
    )
    for view in VIEWS:
        column = state_time_column(view.name)
        seconds = result[column].to_numpy(dtype=np.float64, na_value=np.nan)
        out[column] = pd.to_datetime(seconds_to_ns(seconds), utc=True)  # NaN -> NaT
    return out


def online_state_times(store: FeatureStore, user_ids: Sequence[int]) -> dict[str, pd.Series]:
    """Per feature view, the timestamp of each user's row in the ONLINE store (what serving
    reads; NaT where the store has no row), indexed by user_id: the clock of the served
    state, for freshness checks (the newest row of a view is when its feed last delivered).
    """
    users = sorted({int(u) for u in user_ids})
    _, row_ts = _reader(store).read(users)
    index = pd.Index(users, name=USER_ID)
    out = {}
    for view in VIEWS:
        stamps = pd.to_datetime(row_ts[view.name], utc=True)  # NAT_NS -> NaT
        out[view.name] = pd.Series(stamps, index=index, name=view.name)
    return out


def push_events(
    store: FeatureStore,
    events: pd.DataFrame,
    *,
    aggregator: OnlineAggregator | None = None,
    batch_size: int = 1000,
) -> OnlineAggregator:
    """The online path: events -> OnlineAggregator -> ``store.push`` in micro-batches.

    Pass the aggregator that has already seen the history (a fresh one knows only
    ``events``). Each micro-batch pushes the newest row of every user it touched.
    Returns the aggregator, to continue the stream.
    """
    from feast.data_source import PushMode

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1 (got {batch_size})")
    aggregator = OnlineAggregator() if aggregator is None else aggregator
    keys = [EVENT_TIMESTAMP] + ([TRANSACTION_ID] if TRANSACTION_ID in events.columns else [])
    events = events.sort_values(keys, kind="mergesort")  # a stream delivers in time order
    started = time.perf_counter()
    pushed = 0
    for start in range(0, len(events), batch_size):
        rows = aggregator.process(events.iloc[start : start + batch_size])
        if rows.empty:
            continue
        latest = latest_per_user(rows).reset_index(drop=True)
        store.push(PUSH_SOURCE, latest, to=PushMode.ONLINE)
        pushed += len(latest)
    logger.debug(  # a stream pushes often: per-push lines only when debugging
        "pushed %d rows for %d events in %.2fs", pushed, len(events), time.perf_counter() - started
    )
    return aggregator


def _online_feature_refs() -> list[str]:
    return [f"{view.name}:{name}" for view in VIEWS for name in view.field_names]


class _OnlineReader:
    """Reads the latest stored row of each user straight from the Feast online store.

    ``FeatureStore.get_online_features`` spends most of its time building and converting
    response protos (2-2.5x the store read itself, measured here on SQLite), which is the
    serving hot path's largest cost. This goes through the same provider and online store
    (``Provider.online_read``, the interface every Feast online store implements: SQLite,
    Redis, ...) with the same entity-key serialisation, once per feature view, and converts
    only the fields we serve. ``tests/mlref/features/test_feast_store.py`` checks it against
    ``get_online_features`` on a real store.
    """

    def __init__(self, store: FeatureStore) -> None:
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.protos.feast.types.Value_pb2 import Value

        self._entity_key = EntityKey
        self._value = Value
        self._provider = store._get_provider()  # no public accessor in Feast 0.67
        self._config = store.config
        self._views = [(view, store.get_feature_view(view.name)) for view in VIEWS]

    def read(self, users: list[int]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """(field -> float64 values, view -> int64 ns row timestamps) for ``users``, in order;
        NaN / NAT_NS where the store has no row."""
        keys = [
            self._entity_key(join_keys=[USER_ID], entity_values=[self._value(int64_val=u)])
            for u in users
        ]
        n = len(users)
        values: dict[str, np.ndarray] = {}
        row_ts: dict[str, np.ndarray] = {}
        for spec, view in self._views:
            names = list(spec.field_names)
            rows = self._provider.online_read(
                config=self._config, table=view, entity_keys=keys, requested_features=names
            )
            cols = {name: np.full(n, np.nan) for name in names}
            ts = np.full(n, NAT_NS, dtype=np.int64)
            for i, (stamp, fields) in enumerate(rows):
                if stamp is None or not fields:
                    continue
                found = False
                for name in names:
                    proto = fields.get(name)
                    kind = proto.WhichOneof("val") if proto is not None else None
                    if kind is not None:
                        cols[name][i] = getattr(proto, kind)
                        found = True
                # a row is there only when it holds a value: the Redis store answers an unknown
                # entity with empty values stamped 1970-01-01, SQLite with (None, None)
                if found:
                    ts[i] = datetime_ns(stamp)
            values.update(cols)
            row_ts[spec.name] = ts
        return values, row_ts


_READERS: weakref.WeakKeyDictionary[FeatureStore, _OnlineReader] = weakref.WeakKeyDictionary()


def _reader(store: FeatureStore) -> _OnlineReader:
    """One reader per open store (its feature views are looked up once, not per batch)."""
    reader = _READERS.get(store)
    if reader is None:
        reader = _READERS[store] = _OnlineReader(store)
    return reader


def read_online_arrays(
    store: FeatureStore,
    user_ids: np.ndarray,
    lookup_ns: np.ndarray,
) -> dict[str, np.ndarray]:
    """Stored state as of ``lookup_ns`` (int64 ns) for each user, from ONE read per view.

    Returns STORED_COLUMNS + unknown_user + stale_state as arrays, one entry per input
    position (:func:`mlref.features.online.resolve_online_arrays`).
    """
    user_ids = np.asarray(user_ids, dtype=np.int64)
    unique = np.unique(user_ids)
    values, row_ts = _reader(store).read(unique.tolist())
    pos = np.searchsorted(unique, user_ids)
    taken = {name: col[pos] for name, col in values.items()}
    ts = {name: col[pos] for name, col in row_ts.items()}
    return resolve_online_arrays(taken, ts, np.asarray(lookup_ns, dtype=np.int64))


def read_online_state(
    store: FeatureStore,
    user_ids: np.ndarray,
    lookup_ns: np.ndarray,
) -> pd.DataFrame:
    """:func:`read_online_arrays` as a DataFrame (STORED_COLUMNS, unknown_user, stale_state)."""
    return pd.DataFrame(read_online_arrays(store, user_ids, lookup_ns))


def online_feature_arrays(
    store: FeatureStore,
    user_ids: np.ndarray,
    amounts: np.ndarray,
    merchant_categories: Sequence[str] | np.ndarray,
    event_ns: np.ndarray,
) -> dict[str, np.ndarray]:
    """MODEL_FEATURES + ``unknown_user`` + ``stale_state`` as arrays, one entry per request.

    The serving hot path: no DataFrame anywhere. The state is read as of
    ``lookup_time(event)`` (``event_ns - LOOKUP_OFFSET``) with the TTL rule; unknown users get
    UNKNOWN_USER_STATE (velocity 0, averages/last NaN) and ``unknown_user=True``.
    """
    event_ns = np.asarray(event_ns, dtype=np.int64)
    n = len(event_ns)
    if not (len(user_ids) == len(amounts) == len(merchant_categories) == n):
        raise ValueError(
            "online_feature_arrays: user_ids, amounts, merchant_categories and event_ns must "
            f"have one entry per request (got {len(user_ids)}, {len(amounts)}, "
            f"{len(merchant_categories)}, {n})"
        )
    if n == 0:
        empty = {name: np.empty(0) for name in MODEL_FEATURES}
        return {**empty, "unknown_user": np.empty(0, bool), "stale_state": np.empty(0, bool)}
    state = read_online_arrays(store, user_ids, event_ns - LOOKUP_OFFSET.value)
    inputs = {
        **{c: state[c] for c in STORED_COLUMNS},
        AMOUNT: np.asarray(amounts, dtype=np.float64),
        REQUEST_TS: event_ns / _NS,
        MERCHANT_CATEGORY: np.asarray(merchant_categories, dtype=object),
    }
    out = request_feature_arrays(inputs)
    out["unknown_user"] = state["unknown_user"]
    out["stale_state"] = state["stale_state"]
    return out


def online_model_features(store: FeatureStore, requests_df: pd.DataFrame) -> pd.DataFrame:
    """MODEL_FEATURES (+ ``unknown_user``, ``stale_state``) for each request, in input order.

    ``requests_df``: user_id, amount, merchant_category, event_timestamp (tz-aware). A
    DataFrame face of :func:`online_feature_arrays` (same numbers), keeping the input's index.
    """
    need = [USER_ID, AMOUNT, MERCHANT_CATEGORY, EVENT_TIMESTAMP]
    missing = [c for c in need if c not in requests_df.columns]
    if missing:
        raise ValueError(f"online_model_features: requests are missing columns {missing}")
    if requests_df.empty:
        return pd.DataFrame(columns=[*MODEL_FEATURES, "unknown_user", "stale_state"])
    out = online_feature_arrays(
        store,
        requests_df[USER_ID].to_numpy(dtype=np.int64),
        requests_df[AMOUNT].to_numpy(dtype=np.float64),
        requests_df[MERCHANT_CATEGORY].to_numpy(dtype=object),
        to_epoch_ns(requests_df[EVENT_TIMESTAMP]),
    )
    return pd.DataFrame(
        {name: out[name] for name in (*MODEL_FEATURES, "unknown_user", "stale_state")},
        index=requests_df.index,
    )
