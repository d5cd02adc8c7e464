"""Training/serving skew gates.

The offline side is always the training path: Feast ``get_historical_features`` through the
feature service (``training_frame``) on a store holding the whole event log (history + live,
``full_history_store``). The online side is what serving really did:

- the features the server logged and the scores it answered for replayed live transactions
  (``served_log``: the live stream pushed through the online aggregator in time order, a
  random sample of it scored, each request seeing complete state);
- the Feast online store after that replay (``online_model_features``), probed after the
  end of the live window for users with and without live traffic;
- the online incremental state against the offline vectorised windows on generated event
  logs (Hypothesis, no Feast: the two computations themselves, at their edges).

Mutation proofs (each defect fails its gate, the clean counterpart passes):
``tests/mutations/test_skew.py`` (a 25 h velocity window and counting the current event on
the Feast online path; a push path dropping a field and a 24 h feature job for the store
after the replay; those and a TTL-less read, a 30-day or cold stream warm-up on the
generated logs) and ``tests/mutations/test_served_scores.py`` (a server assembling the model
inputs in another order).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from conftest import ServedLog
    from feast import FeatureStore

    from mlgates.fixture import Gates
    from mlref.pipeline import ReferenceSystem

N_PROBE_USERS = 300  # users probed in the online store after the replay


def _offline_features(store: FeatureStore, transactions: pd.DataFrame) -> pd.DataFrame:
    """Feast historical features (the training path) keyed by transaction_id."""
    from mlref.features.definitions import MODEL_FEATURES
    from mlref.features.store import training_frame

    frame = training_frame(store, transactions)
    out = frame[["transaction_id", *MODEL_FEATURES]].copy()
    out["transaction_id"] = out["transaction_id"].astype(str)
    return out


@pytest.mark.mlgate("feature_parity", rubric=("infra-3",))
def test_served_features_match_training_features(
    mlgates: Gates, served_log: ServedLog, full_history_store: FeatureStore
) -> None:
    """The model inputs the server logged for each replayed transaction equal the Feast
    point-in-time features training would compute for it from the full event log."""
    from mlgates.gates import feature_parity
    from mlref.features.definitions import MODEL_FEATURES

    offline = _offline_features(full_history_store, served_log.sample)
    online = served_log.log[["transaction_id", *MODEL_FEATURES]].copy()
    online["transaction_id"] = online["transaction_id"].astype(str)
    mlgates.run(feature_parity, offline, online, "transaction_id", features=list(MODEL_FEATURES))


@pytest.mark.mlgate("model_parity", rubric=("infra-3",))
def test_served_scores_match_offline_onnx_scores(
    mlgates: Gates,
    served_log: ServedLog,
    full_history_store: FeatureStore,
    onnx_scores: Callable[[pd.DataFrame], np.ndarray],
) -> None:
    """The score the server answered for each replayed transaction equals the champion's ONNX
    score of the offline (training-path) features of that transaction."""
    import numpy as np

    from mlgates.gates import model_parity

    offline = _offline_features(full_history_store, served_log.sample)
    ids = served_log.sample["transaction_id"].astype(str).to_numpy()
    answered = {str(r["transaction_id"]): float(r["score"]) for r in served_log.responses}
    served = np.array([answered[i] for i in ids], dtype=np.float64)
    reference = onnx_scores(offline.set_index("transaction_id").loc[ids])
    mlgates.run(model_parity, reference, served)


def _probes(system: ReferenceSystem) -> pd.DataFrame:
    """One request per probed user, one second after the end of the live window (the replay
    pushed the whole live stream): ``N_PROBE_USERS`` users drawn with a fixed seed, those with
    live traffic (online rows from the push path) and those without (rows from materialize).
    Amount and category are the user's latest transaction's."""
    import numpy as np
    import pandas as pd

    everything = pd.concat([system.events, system.live], ignore_index=True)
    users = np.sort(everything["user_id"].unique())
    rng = np.random.default_rng(1)
    chosen = rng.choice(users, size=min(N_PROBE_USERS, users.size), replace=False)
    last = everything.loc[everything["user_id"].isin(chosen)]
    last = last.sort_values(["event_timestamp", "transaction_id"]).groupby("user_id").tail(1)
    at = system.live["event_timestamp"].max() + pd.Timedelta(seconds=1)
    return pd.DataFrame(
        {
            "transaction_id": [f"probe-{u}" for u in last["user_id"]],
            "user_id": last["user_id"].to_numpy(),
            "amount": last["amount"].to_numpy(),
            "merchant_category": last["merchant_category"].to_numpy(),
            "event_timestamp": pd.DatetimeIndex([at] * len(last)),
        }
    )


@pytest.mark.mlgate("feature_parity")
def test_online_store_matches_offline_store_after_replay(
    mlgates: Gates,
    reference_system: ReferenceSystem,
    served_log: ServedLog,
    full_history_store: FeatureStore,
) -> None:
    """After the replay, the Feast online store (stream-pushed and materialized rows, read
    with the online TTL rule) gives the same model inputs as the Feast offline store (point-in-
    time join over the whole log) for the same users at the same time."""
    from mlgates.gates import feature_parity
    from mlref.features.definitions import MODEL_FEATURES
    from mlref.features.store import online_model_features

    probes = _probes(reference_system)
    offline = _offline_features(full_history_store, probes)
    online = online_model_features(reference_system.store, probes)[list(MODEL_FEATURES)]
    online.insert(0, "transaction_id", probes["transaction_id"].astype(str).to_numpy())
    mlgates.run(feature_parity, offline, online, "transaction_id", features=list(MODEL_FEATURES))


def _edge_coverage(events: pd.DataFrame) -> dict[str, int]:
    """What the generated logs exercised, counted independently of both paths (pairs of
    one user's events by their distance in seconds)."""
    import numpy as np

    from mlref.features.definitions import FEATURES_BY_NAME, VIEWS_BY_NAME

    windows = {f.name: f.window for f in FEATURES_BY_NAME.values() if f.window is not None}
    day = int(windows["txn_count_24h"].total_seconds())
    month = int(windows["avg_amount_30d"].total_seconds())
    ttl = int(VIEWS_BY_NAME["user_velocity_24h"].ttl.total_seconds())
    counts = dict.fromkeys(
        ("same_second", "at_24h_edge", "at_30d_edge", "gap_over_ttl", "new_user_mid_log"), 0
    )
    for _, log in events.groupby(events["transaction_id"].str.split(":").str[0]):
        first_event = log["event_timestamp"].min()
        for _, mine in log.groupby("user_id"):
            sec = np.sort(mine["event_timestamp"].to_numpy("datetime64[s]").view(np.int64))
            apart = sec[None, :] - sec[:, None]
            upper = np.triu(np.ones_like(apart, dtype=bool), k=1)
            counts["same_second"] += int(((apart == 0) & upper).sum())
            counts["at_24h_edge"] += int(((apart == day) & upper).sum())
            counts["at_30d_edge"] += int(((apart == month) & upper).sum())
            counts["gap_over_ttl"] += int((np.diff(sec) > ttl).sum())
            counts["new_user_mid_log"] += int(mine["event_timestamp"].min() > first_event)
    return counts


@pytest.mark.mlgate("feature_parity")
def test_online_incremental_state_matches_offline_windows(mlgates: Gates) -> None:
    """The two feature paths that really differ agree on generated event logs: the ONLINE
    incremental state (``OnlineAggregator`` per event, pushed in micro-batches, each
    transaction scored before its own event is pushed and read the way serving reads the
    store, as of ``lookup_time``) against the OFFLINE vectorised windows over the whole log
    (``stored_rows`` + point-in-time join, what training computes). Each log is split at a
    generated point: before it, the store holds the materialized rows and the stream
    processor is warm-started (``warm_started``); after it, events are streamed and scored.

    Hypothesis logs (``mlref.features.replay.event_logs``): bursts, several events of a user
    in the same second, gaps longer than the TTL, events exactly on the 24 h and 30 d window
    edges (and 1 s either side), users appearing mid-log, amounts 0 / 1e-6 / 1e7.
    Deterministic (derandomized, no example database); size ``skew_replay_examples``.
    """
    from mlgates.gates import feature_parity
    from mlref.features.definitions import MODEL_FEATURES
    from mlref.features.replay import generated_replays

    replays = generated_replays(int(mlgates.setting("skew_replay_examples", 100)))

    # the logs must reach every boundary the two paths could disagree on
    coverage = _edge_coverage(replays.events)
    assert min(coverage.values()) >= 5, f"the generated logs miss an edge case: {coverage}"
    mlgates.run(
        feature_parity,
        replays.offline,
        replays.online,
        "transaction_id",
        features=list(MODEL_FEATURES),
    )
