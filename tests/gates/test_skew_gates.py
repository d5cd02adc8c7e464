"""Training/serving skew gates.

The offline side is always the training path: Feast ``get_historical_features`` through the
feature service (``training_frame``) on a store holding the whole event log (history + live,
``full_history_store``). The online side is what serving really did:

- the features the server logged and the scores it answered for replayed live transactions
  (``served_log``: the live stream pushed through the online aggregator in time order, a
  random sample of it scored, each request seeing complete state);
- the Feast online store after that replay (``online_model_features``), probed after the
  end of the live window for users with and without live traffic;
- the request-time transform on one row (dict) vs the same rows as a batch (Hypothesis).
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


@pytest.mark.mlgate("feature_parity", rubric=("data-7",))
def test_request_transform_row_equals_batch(mlgates: Gates) -> None:
    """``request_features`` on one row (a dict, as the single-request path calls it) gives
    bit-identical model inputs to the same rows in a DataFrame batch, over Hypothesis-generated
    state and requests (missing state, zero/huge averages, unknown categories, far timestamps).
    """
    import pandas as pd
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from mlgates.gates import feature_parity
    from mlref.data.columns import CATEGORIES
    from mlref.features.transforms import TRANSFORM_INPUTS, request_features

    missing = st.none()
    row = st.fixed_dictionaries(
        {
            "txn_count_24h": missing | st.integers(0, 10_000).map(float),
            "avg_amount_30d": missing
            | st.just(0.0)
            | st.floats(0.0, 1e7, allow_nan=False, allow_infinity=False),
            "last_txn_ts": missing | st.floats(0.0, 4e9, allow_nan=False),
            "amount": st.floats(0.0, 1e7, allow_nan=False, allow_infinity=False),
            "request_ts": st.floats(0.0, 4e9, allow_nan=False),
            "merchant_category": st.sampled_from([*CATEGORIES, "crypto", "", None]),
        }
    )
    batched: list[pd.DataFrame] = []
    single: list[pd.DataFrame] = []

    @settings(
        max_examples=int(mlgates.setting("transform_examples", 60)),
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(rows=st.lists(row, min_size=1, max_size=25))
    def collect(rows: list[dict[str, object]]) -> None:
        offset = sum(len(b) for b in batched)
        keys = list(range(offset, offset + len(rows)))
        frame = pd.DataFrame({name: [r[name] for r in rows] for name in TRANSFORM_INPUTS})
        out = request_features(frame).reset_index(drop=True)
        out.insert(0, "row", keys)
        batched.append(out)
        one = pd.DataFrame([request_features(r) for r in rows])
        one.insert(0, "row", keys)
        single.append(one)

    collect()
    mlgates.run(
        feature_parity,
        pd.concat(batched, ignore_index=True),
        pd.concat(single, ignore_index=True),
        "row",
        atol=0.0,
        rtol=0.0,
    )
