"""The demo's live replay serves exactly the features training computes offline.

``mlref.pipeline.replay_live`` pushes live events to the Feast online store between
concurrent chunks of /predict requests. Every request must see every earlier event of its
user, or the server scores on stale state (fraud bursts are hit most: a card's events come
minutes apart). The reference here is independent of the online path: the offline batch
features (``batch_model_features``) over history + live for the replayed rows, compared
with the inputs the server wrote to its prediction log.

A small real system: generator -> validation -> Feast (parquet + SQLite) -> XGBoost -> ONNX
-> MLflow (SQLite) -> uvicorn on 127.0.0.1.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pytest

from mlref.data.columns import EVENT_TIMESTAMP, TRANSACTION_ID, USER_ID

if TYPE_CHECKING:
    from mlref.pipeline import ReferenceSystem

pytestmark = pytest.mark.filterwarnings(
    # mlflow 3.17's SQLAlchemy store configures a loader strategy SQLAlchemy 2.1 deprecates
    "ignore:The ``noload`` loader strategy is deprecated:DeprecationWarning",
    # raised while mlflow.pyfunc imports its own chat types (save_model imports pyfunc)
    "ignore:.*Any type hint is inferred as AnyType:UserWarning",
)

# Small but with enough fraud bursts in the live days to show stale state: training needs
# ~70 days of windows (14 test + 2 x 7 embargo + 14 validation + labels) before it starts.
N_USERS = 150
DAYS = 75
LIVE_DAYS = 2
SEED = 3
FRAUD_RATE = 0.03


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> ReferenceSystem:
    from mlref.pipeline import build_reference_system
    from mlref.settings import make_settings

    settings = make_settings(
        tmp_path_factory.mktemp("replay") / "mlref",
        n_users=N_USERS,
        days=DAYS,
        seed=SEED,
        fraud_rate=FRAUD_RATE,
    )
    return build_reference_system(settings, live_days=LIVE_DAYS)


@pytest.fixture(scope="module")
def served(system: ReferenceSystem) -> Iterator[tuple[pd.DataFrame, list[dict[str, Any]]]]:
    from mlref.pipeline import replay_live, running_server

    with running_server(system.settings, ready_timeout_s=60) as url:
        yield replay_live(system, url, len(system.live))


def _logged_features(system: ReferenceSystem, sample: pd.DataFrame) -> pd.DataFrame:
    """The model inputs the server logged for ``sample``'s transactions, in sample order."""
    from mlref.monitor.log import read_log

    ids = sample[TRANSACTION_ID].astype(str)
    deadline = time.monotonic() + 30.0
    while True:  # the log is written off the request path: wait for the last flush
        frame = read_log(system.settings.prediction_log)
        frame = frame.loc[frame[TRANSACTION_ID].isin(set(ids))]
        if frame[TRANSACTION_ID].nunique() == len(ids) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert frame[TRANSACTION_ID].nunique() == len(ids), "replayed rows missing from the log"
    return frame.drop_duplicates(TRANSACTION_ID, keep="last").set_index(TRANSACTION_ID).loc[ids]


def test_served_features_equal_offline_features(
    system: ReferenceSystem, served: tuple[pd.DataFrame, list[dict[str, Any]]]
) -> None:
    from mlref.features.definitions import MODEL_FEATURES
    from mlref.features.offline import batch_model_features

    sample, responses = served
    assert [r["status"] for r in responses] == [200] * len(sample)
    assert int(sample["is_fraud"].sum()) > 0  # fraud bursts are what stale state hits most

    logged = _logged_features(system, sample)[MODEL_FEATURES].to_numpy(dtype=np.float64)
    history_and_live = pd.concat([system.events, system.live], ignore_index=True)
    offline = batch_model_features(history_and_live, sample).to_numpy(dtype=np.float64)
    same = np.isclose(logged, offline, rtol=0.0, atol=1e-9, equal_nan=True).all(axis=1)
    differing = sample.loc[~same, [TRANSACTION_ID, USER_ID, EVENT_TIMESTAMP, "is_fraud"]]
    assert same.all(), (
        f"{len(differing)} of {len(sample)} served rows differ from the offline features:\n"
        f"{differing.head(10).to_string()}"
    )


def _events(rows: list[tuple[str, int, int]]) -> pd.DataFrame:
    """(transaction_id, user_id, seconds after a fixed start) -> a time-ordered frame."""
    start = pd.Timestamp("2026-03-01T00:00:00+00:00")
    frame = pd.DataFrame(rows, columns=[TRANSACTION_ID, USER_ID, "s"])
    frame[EVENT_TIMESTAMP] = start + pd.to_timedelta(frame["s"], unit="s")
    return frame.drop(columns="s").sort_values([EVENT_TIMESTAMP, TRANSACTION_ID])


def _unpushed_before(chunks: list[tuple[int, pd.DataFrame]], live: pd.DataFrame) -> list[str]:
    """Requests sent while one of their user's earlier live events was not pushed yet."""
    stale = []
    for upto, chunk in chunks:
        pushed = live.iloc[:upto]
        assert (pushed[EVENT_TIMESTAMP] < chunk[EVENT_TIMESTAMP].min()).all()  # no future
        for row in chunk.itertuples(index=False):
            earlier = (live[USER_ID] == row.user_id) & (live[EVENT_TIMESTAMP] < row.event_timestamp)
            if earlier.sum() > (pushed[USER_ID] == row.user_id).sum():
                stale.append(str(row.transaction_id))
    return stale


def test_replay_chunks_push_every_earlier_event_of_the_user() -> None:
    from mlref.pipeline import replay_chunks

    # user 1: a burst (t1..t4) minutes apart; users 2 and 3 request in between
    live = _events(
        [
            ("t1", 1, 0), ("t2", 2, 30), ("t3", 1, 60), ("t4", 1, 120), ("t5", 3, 150),
            ("t6", 1, 180), ("t7", 2, 240), ("t8", 3, 300), ("t9", 2, 300),
        ]
    )  # fmt: skip
    sample = live.loc[live[TRANSACTION_ID].isin(["t1", "t2", "t3", "t5", "t6", "t8", "t9"])]
    chunks = replay_chunks(sample, live, max_chunk=8)

    assert _unpushed_before(chunks, live) == []
    sent = [tid for _, chunk in chunks for tid in chunk[TRANSACTION_ID]]
    assert sent == list(sample[TRANSACTION_ID])  # every request once, in time order
    # concurrency is kept where no event of the user intervenes: t2 joins t1's chunk
    # (other user), t3 starts a new one (its user's t1 must be pushed first); t9 waits for
    # t7 of its user although t8 of another user shares its second
    assert [list(c[TRANSACTION_ID]) for _, c in chunks] == [
        ["t1", "t2"], ["t3", "t5"], ["t6", "t8"], ["t9"],
    ]  # fmt: skip
    # the defect: pushing only what precedes each chunk's FIRST request of fixed-size chunks
    first_only = [
        (int(live[EVENT_TIMESTAMP].searchsorted(c[EVENT_TIMESTAMP].iloc[0])), c)
        for c in (sample.iloc[i : i + 8] for i in range(0, len(sample), 8))
    ]
    assert _unpushed_before(first_only, live) == ["t3", "t6", "t8", "t9"]


def test_replay_chunks_respect_the_chunk_size_and_refuse_bad_input() -> None:
    from mlref.pipeline import replay_chunks

    live = _events([(f"t{i}", i, i) for i in range(10)])  # ten users, one event each
    chunks = replay_chunks(live, live, max_chunk=4)
    assert [len(c) for _, c in chunks] == [4, 4, 2]
    assert _unpushed_before(chunks, live) == []
    with pytest.raises(ValueError, match="max_chunk must be >= 1"):
        replay_chunks(live, live, max_chunk=0)
    with pytest.raises(ValueError, match="time order"):
        replay_chunks(live.iloc[::-1], live, max_chunk=4)
