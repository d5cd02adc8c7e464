"""Session fixtures of the reference system, shared by the gate suite and the mutation proofs.

Everything is built lazily, once per pytest process, in a temporary directory (never in the
source tree): a test that requests none of these fixtures pays nothing, and importing this
file is cheap (Feast, MLflow, XGBoost and ONNX Runtime are imported inside the fixtures).

Dependency chain (each fixture builds what it needs first)::

    ref_settings -> reference_system -> server_url -> served_log
                                    \\-> live_traffic(drifted)
                                    \\-> full_history_store

Consumers must treat every session object as READ-ONLY (do not mutate the frames, do not
move registry aliases, do not push to the store): other tests share them. Build a private
copy (``frame.copy()``, a ``tmp_path`` workdir) to inject a defect.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import pandas as pd
    from feast import FeatureStore

    from mlref.pipeline import ReferenceSystem
    from mlref.settings import Settings

log = logging.getLogger(__name__)

# Size of the reference system: the windows need 70 days (14 test + 2 x 14 embargo + 14
# validation + 14 for the last labels) and training starts after the 30-day feature burn-in
# (mlref.pipeline.burn_in), so 120 days leave ~20 days of training; 800 users keep the build
# near a minute on two shared cores. Fixed seed: every run builds the same data and model.
REF_USERS = 800
REF_DAYS = 120
REF_SEED = 7
# A week of live traffic: hour_of_day and day_of_week are model inputs, so a serving window
# shorter than a week differs from the multi-week training window by design (clean 2-day
# windows of this data cross PSI 0.2 on the scores about half the time).
LIVE_DAYS = 7
# bounded replay of live traffic against the server (see served_log): 3,600 of the live
# week's 6,672 transactions hold ~44 fraud rows whose labels mature, above the 30 that
# offline_online_agreement (model-2) needs to decide (1,200 held 13: inconclusive)
REPLAY_REQUESTS = 3600
REPLAY_CHUNK = 16


@pytest.fixture(scope="session")
def ref_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings of the session's reference system: a fresh temporary workdir, 800 users,
    120 days of history (+7 live days), generator seed 7, defaults otherwise (MLflow on a
    SQLite file under the workdir, Feast with parquet offline / SQLite online stores)."""
    from mlref.settings import make_settings

    workdir = tmp_path_factory.mktemp("mlref-reference") / "mlref"
    return make_settings(workdir, n_users=REF_USERS, days=REF_DAYS, seed=REF_SEED)


@pytest.fixture(scope="session")
def reference_system(ref_settings: Settings) -> ReferenceSystem:
    """``build_reference_system(ref_settings, live_days=LIVE_DAYS, drift_live=False)``: data ->
    validation -> Feast (apply + materialize) -> training rows (Feast historical) -> XGBoost
    -> ONNX (+ parity) -> MLflow registry -> promotion (the first model becomes champion).

    ``.live`` holds the clean live week after the history (never seen by the store or
    the model). Read-only: shared by every test of the session.
    """
    from mlref.pipeline import build_reference_system

    started = time.perf_counter()
    system = build_reference_system(ref_settings, live_days=LIVE_DAYS, drift_live=False)
    log.info("reference system built in %.1fs", time.perf_counter() - started)
    if not system.decision.promoted:
        raise RuntimeError(
            "the reference system's first model was not promoted to champion:\n"
            + system.decision.explain()
        )
    return system


@pytest.fixture(scope="session")
def live_traffic(
    ref_settings: Settings, reference_system: ReferenceSystem
) -> Callable[[bool], pd.DataFrame]:
    """Factory ``live_traffic(drifted: bool) -> DataFrame`` of the live window (raw
    transactions after the history, ``LIVE_DAYS`` days).

    ``drifted=False`` is ``reference_system.live``. ``drifted=True`` regenerates the same
    stream with the generator's drift switch on half-way through the live days (amounts
    scaled, a new merchant category); rows before the switch are identical to the clean
    ones (the generator draws the same numbers either way). ``frame.attrs["drift_from"]``
    holds the switch time (ISO string, None when clean); the drifted part is
    ``frame[frame.event_timestamp >= pd.Timestamp(frame.attrs["drift_from"])]``.
    Results are cached; treat them as read-only.
    """
    from mlref.pipeline import history_and_live

    cache: dict[bool, pd.DataFrame] = {}

    def make(drifted: bool = False) -> pd.DataFrame:
        if drifted not in cache:
            if drifted:
                _, live, drift_from = history_and_live(
                    ref_settings, live_days=LIVE_DAYS, drift_live=True
                )
            else:
                live, drift_from = reference_system.live, None
            frame = live.copy()
            frame.attrs["drift_from"] = drift_from
            cache[drifted] = frame
        return cache[drifted]

    return make


@pytest.fixture(scope="session")
def full_history_store(
    ref_settings: Settings,
    reference_system: ReferenceSystem,
    tmp_path_factory: pytest.TempPathFactory,
) -> FeatureStore:
    """A second Feast store (own temporary workdir) built from history + ALL clean live
    events: the offline truth after the fact. ``training_frame(full_history_store, txns)``
    gives the Feast point-in-time features every live transaction should have been served
    with (what the online path must reproduce). Costs one Feast apply + materialize."""
    import pandas as pd

    from mlref.features.store import build_feature_store

    settings = ref_settings.with_(workdir=tmp_path_factory.mktemp("mlref-full") / "mlref")
    settings.ensure_dirs()
    events = pd.concat([reference_system.events, reference_system.live], ignore_index=True)
    return build_feature_store(settings, events)


@pytest.fixture(scope="session")
def server_url(ref_settings: Settings, reference_system: ReferenceSystem) -> Iterator[str]:
    """The scoring server (FastAPI under uvicorn in a thread) on 127.0.0.1 for the whole
    session, serving the registry's champion with features from the reference Feast store;
    stopped (graceful drain) at session end. Yields its base URL."""
    from mlref.pipeline import running_server

    with running_server(ref_settings) as url:
        yield url


@dataclass(frozen=True)
class ServedLog:
    """What ``served_log`` replayed and what the server answered and logged.

    ``sample``: the replayed live transactions (raw columns, time order); ``responses``: the
    /predict answers in the same order (``status``, ``score``, ...); ``log``: the
    prediction-log rows of exactly those transactions (``read_log`` frame, one per
    transaction, with the logged model inputs as columns), in ``sample`` order.
    """

    sample: pd.DataFrame
    responses: list[dict[str, Any]]
    log: pd.DataFrame


def exact_chunks(sample: pd.DataFrame, stream: pd.DataFrame, max_chunk: int) -> list[pd.DataFrame]:
    """Split time-ordered requests into consecutive chunks that can be scored concurrently
    with exact online state.

    Before a chunk is sent, every ``stream`` event older than its first request is pushed.
    A request may join the chunk only if its user has no stream event between the chunk's
    first request and its own time (that event would not be in the store yet) and is not
    already in the chunk. Cutting there keeps the replay exact, so any skew the gates find
    is the system's, not the harness's.
    """
    import numpy as np

    times = stream["event_timestamp"].to_numpy("datetime64[ns]").view(np.int64)
    by_user = {int(u): np.sort(times[idx]) for u, idx in stream.groupby("user_id").indices.items()}
    req_users = sample["user_id"].to_numpy()
    req_times = sample["event_timestamp"].to_numpy("datetime64[ns]").view(np.int64)
    bounds = [0]
    chunk_users: set[int] = set()
    for i, (user, t) in enumerate(zip(req_users, req_times, strict=True)):
        t0 = req_times[bounds[-1]]
        mine = by_user.get(int(user), np.empty(0, np.int64))
        between = np.searchsorted(mine, t, "left") - np.searchsorted(mine, t0, "left")
        if i > bounds[-1] and (
            int(user) in chunk_users or between > 0 or i - bounds[-1] >= max_chunk
        ):
            bounds.append(i)
            chunk_users = set()
        chunk_users.add(int(user))
    bounds.append(len(sample))
    return [sample.iloc[a:b] for a, b in itertools.pairwise(bounds) if b > a]


@pytest.fixture(scope="session")
def served_log(reference_system: ReferenceSystem, server_url: str) -> ServedLog:
    """Replay a bounded random sample of the clean live traffic against ``server_url`` as
    production would see it; return the answers and the prediction-log rows of those
    transactions.

    The whole live stream goes through the online path (``warm_started`` on the history,
    as the pipeline's replay -> ``push_events``) in time order; the ``REPLAY_REQUESTS``
    sampled transactions (seed 0, spread over the live days) are POSTed to /predict in time
    order, in chunks (``exact_chunks``) whose state is complete before they are sent. After
    the last chunk the rest of the stream is pushed, so the reference store's online side
    then holds every user's state at the end of the live window. The offline truth for
    every served transaction is therefore the full event log (history + live).
    Mutates only the reference store's ONLINE rows (the intended live state).
    """
    import numpy as np

    from mlref.features.online import warm_started
    from mlref.features.store import push_events
    from mlref.monitor.log import read_log
    from mlref.pipeline import send_traffic

    system = reference_system
    live = system.live.sort_values(["event_timestamp", "transaction_id"], kind="mergesort")
    live = live.reset_index(drop=True)
    rng = np.random.default_rng(0)
    picked = np.sort(rng.choice(len(live), size=min(REPLAY_REQUESTS, len(live)), replace=False))
    sample = live.iloc[picked].reset_index(drop=True)

    # warmed as the pipeline's replay warms it (window + TTL), so a user's first live row
    # carries the same previous state the offline join sees
    aggregator = warm_started(system.events)
    live_ts = live["event_timestamp"]
    pushed = 0
    responses: list[dict[str, Any]] = []
    for chunk in exact_chunks(sample, live, REPLAY_CHUNK):
        upto = int(live_ts.searchsorted(chunk["event_timestamp"].iloc[0], side="left"))
        if upto > pushed:
            push_events(system.store, live.iloc[pushed:upto], aggregator=aggregator)
            pushed = upto
        responses.extend(send_traffic(server_url, chunk, concurrency=8))
    if pushed < len(live):
        push_events(system.store, live.iloc[pushed:], aggregator=aggregator)
    bad = [r for r in responses if r.get("status") != 200]
    if bad:
        raise RuntimeError(f"{len(bad)} of {len(responses)} replayed requests failed: {bad[:3]}")

    ids = set(sample["transaction_id"].astype(str))
    deadline = time.monotonic() + 30.0
    while True:  # the log is written off the request path; wait for the last flush
        frame = read_log(system.settings.prediction_log)
        frame = frame.loc[frame["transaction_id"].isin(ids)]
        if frame["transaction_id"].nunique() >= len(ids) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    if frame["transaction_id"].nunique() < len(ids):
        raise RuntimeError(
            f"only {frame['transaction_id'].nunique()} of {len(ids)} replayed transactions "
            f"reached the prediction log {system.settings.prediction_log} within 30 s"
        )
    frame = frame.drop_duplicates("transaction_id", keep="last").set_index("transaction_id")
    frame = frame.loc[sample["transaction_id"].astype(str)].reset_index()
    return ServedLog(sample=sample, responses=responses, log=frame)
