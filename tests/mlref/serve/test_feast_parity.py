"""Serving parity on the real Feast store: the server's score for a transaction equals the
offline pipeline's ONNX score on the same point-in-time features (the skew gate's data).

The store is built from a tiny generated log minus each user's last transaction; those held-out
transactions are then scored twice: offline (``training_frame``: Feast historical features at
``lookup_time``) -> ONNX, and online through the app (``FeastFeatureSource``: Feast online store
-> shared request transforms -> batcher -> ONNX).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlref.data.columns import EVENT_TIMESTAMP, TRANSACTION_ID, USER_ID
from mlref.pipeline import transaction_payloads
from mlref.serve.app import create_app

pytestmark = [
    pytest.mark.anyio,
    # third-party notices from Feast's offline retrieval (on-demand views; ibis on duckdb)
    pytest.mark.filterwarnings(
        "ignore:On demand feature view is an experimental feature:RuntimeWarning"
    ),
    pytest.mark.filterwarnings("ignore:fetch_arrow_table\\(\\) is deprecated:DeprecationWarning"),
]


@pytest.fixture(scope="module")
def feast_world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, pd.DataFrame, Any]:
    from mlref.data.generate import generate_transactions
    from mlref.features.store import build_feature_store
    from mlref.settings import DataConfig, make_settings

    settings = make_settings(tmp_path_factory.mktemp("feast") / "mlref")
    settings.ensure_dirs()
    events = generate_transactions(DataConfig(n_users=25, days=12, seed=11))
    last = events.groupby(USER_ID)[EVENT_TIMESTAMP].transform("max") == events[EVENT_TIMESTAMP]
    # hold out each user's last second of activity (same-second events included)
    history, held_out = events[~last], events[last]
    store = build_feature_store(settings, history.reset_index(drop=True))
    return settings, held_out.reset_index(drop=True), store


def training_users(world: tuple[Any, pd.DataFrame, Any]) -> set[int]:
    settings = world[0]
    from mlref.features.store import offline_parquet_path

    return set(pd.read_parquet(offline_parquet_path(settings))[USER_ID].astype(int))


async def test_server_scores_equal_offline_onnx_scores(
    feast_world: tuple[Any, pd.DataFrame, Any], champion: Any, kit: Any
) -> None:
    from mlref.features.store import training_frame
    from mlref.serve.features import FeastFeatureSource

    settings, held_out, store = feast_world
    offline = training_frame(store, held_out)
    x = offline[list(champion.feature_names)].to_numpy(dtype=np.float32)
    offline_scores = np.asarray(champion.model.predict(x))

    app = create_app(
        settings,
        model=champion,
        features=FeastFeatureSource(store),
        config=kit.serve_config(max_batch_request=50),
    )
    bodies = transaction_payloads(held_out)
    async with kit.running_app(app, ready_timeout=60) as client:
        response = await client.post("/predict/batch", json={"transactions": bodies})
        singles = [(await client.post("/predict", json=b)).json() for b in bodies[:3]]
    assert response.status_code == 200, response.text
    served = response.json()["predictions"]
    assert [p["transaction_id"] for p in served] == list(held_out[TRANSACTION_ID])
    served_scores = np.array([p["score"] for p in served])
    np.testing.assert_allclose(served_scores, offline_scores, rtol=0, atol=1e-6)
    assert [s["score"] for s in singles] == [p["score"] for p in served[:3]]
    # users whose only activity was held out have no stored state: defaults + the flag
    known = training_users(feast_world)
    assert [p["unknown_user"] for p in served] == [u not in known for u in held_out[USER_ID]]
    assert not all(p["unknown_user"] for p in served)


async def test_parity_check_catches_skewed_features(
    feast_world: tuple[Any, pd.DataFrame, Any], champion: Any
) -> None:
    """The comparison above is sensitive: one shifted feature changes the scores."""
    from mlref.features.store import training_frame
    from mlref.serve.features import FeastFeatureSource, request_batch
    from mlref.serve.schemas import Transaction

    _settings, held_out, store = feast_world
    offline = training_frame(store, held_out)
    online = pd.DataFrame(
        FeastFeatureSource(store).lookup(
            request_batch([Transaction.model_validate(b) for b in transaction_payloads(held_out)])
        )
    )
    names = list(champion.feature_names)
    pd.testing.assert_frame_equal(
        online[names].reset_index(drop=True), offline[names].reset_index(drop=True)
    )
    skewed = online[names].copy()
    skewed["log_amount"] += 2.0  # e.g. a transform applied twice on one path
    a = champion.model.predict(offline[names].to_numpy(np.float32))
    b = champion.model.predict(skewed.to_numpy(np.float32))
    assert np.max(np.abs(a - b)) > 1e-3
