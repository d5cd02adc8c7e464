"""The same feature definitions served from SQLite and from a real redis-server: the
offline/online parity gate and the serving parity hold on both (switching configuration only).

Redis cases skip with the install command when redis-server is missing (and fail under
``nox -s scale``, which is meant to run them).
"""

from __future__ import annotations

import asyncio
import importlib.util
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlref.data.columns import TRANSACTION_ID, USER_ID
from mlref.features.definitions import MODEL_FEATURES

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.filterwarnings(
        "ignore:On demand feature view is an experimental feature:RuntimeWarning"
    ),
    pytest.mark.filterwarnings("ignore:fetch_arrow_table\\(\\) is deprecated:DeprecationWarning"),
]


def _parity(offline: pd.DataFrame, online: pd.DataFrame) -> Any:
    from mlgates import feature_parity

    return feature_parity(
        offline[[TRANSACTION_ID, *MODEL_FEATURES]],
        online[[TRANSACTION_ID, *MODEL_FEATURES]],
        keys=TRANSACTION_ID,
        atol=1e-9,
        rtol=1e-9,
    )


def test_the_store_really_is_the_configured_backend(feast_world: Any) -> None:
    from mlref.scale.redis_store import online_store_type

    assert online_store_type(feast_world.store) == feast_world.backend
    config = (feast_world.settings.feature_repo / "feature_store.yaml").read_text()
    assert f"type: {feast_world.backend}" in config
    assert "type: duckdb" in config  # the offline store does not change
    if feast_world.backend == "redis":
        import redis

        host, port = feast_world.settings.redis_url.split(":")
        client = redis.Redis(host=host, port=int(port))
        try:
            # one hash per materialised user
            assert client.dbsize() == feast_world.history[USER_ID].nunique()
        finally:
            client.close()


def test_offline_online_parity_gate_passes(feast_world: Any) -> None:
    from mlref.features.store import online_model_features, training_frame

    requests = feast_world.held_out
    offline = training_frame(feast_world.store, requests)
    online = online_model_features(feast_world.store, requests).assign(
        **{TRANSACTION_ID: requests[TRANSACTION_ID].to_numpy()}
    )
    result = _parity(offline, online)
    assert result.passed, result.explain()
    # the held-out rows include users with state and users without any (defaults + flag)
    assert online["unknown_user"].any()
    assert not online["unknown_user"].all()


def test_offline_online_parity_gate_catches_a_skewed_online_feature(feast_world: Any) -> None:
    from mlref.features.store import online_model_features, training_frame

    requests = feast_world.held_out
    offline = training_frame(feast_world.store, requests)
    online = online_model_features(feast_world.store, requests).assign(
        **{TRANSACTION_ID: requests[TRANSACTION_ID].to_numpy()}
    )
    online["avg_order_30d"] = online["avg_order_30d"] * 1.01  # e.g. a window off by a day
    result = _parity(offline, online)
    assert result.verdict == "fail"
    assert "avg_order_30d" in result.explain()


async def test_server_scores_equal_offline_onnx_scores(
    feast_world: Any, tiny_model: Any, make_bodies: Any, onnx_scores: Any
) -> None:
    """The serving parity on each backend: the app (Feast online store -> transforms ->
    batcher -> ONNX) gives the offline pipeline's ONNX score (Feast historical features)."""
    import httpx

    from mlref.features.store import training_frame
    from mlref.serve.app import ServeConfig, create_app
    from mlref.serve.features import FeastFeatureSource
    from mlref.serve.predictor import served_model_from_card

    requests = feast_world.held_out
    offline_scores = onnx_scores(tiny_model.onnx_path, training_frame(feast_world.store, requests))
    model = served_model_from_card(tiny_model.onnx_path, tiny_model.card_path, "tiny-1")
    config = ServeConfig(
        max_batch_size=16,
        max_queue=256,
        max_batch_request=100,
        log_flush_interval_s=0.05,
        graceful_timeout_s=10.0,
        shadow_alias=None,
    )
    app = create_app(
        feast_world.settings,
        model=model,
        features=FeastFeatureSource(feast_world.store),
        config=config,
    )
    payload = make_bodies(requests)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://mlref.test") as client:
            for _ in range(200):
                if (await client.get("/readyz")).status_code == 200:
                    break
                await asyncio.sleep(0.05)
            response = await client.post("/predict/batch", json={"transactions": payload})
            single = (await client.post("/predict", json=payload[0])).json()
    assert response.status_code == 200, response.text
    served = response.json()["predictions"]
    assert [p["transaction_id"] for p in served] == requests[TRANSACTION_ID].tolist()
    served_scores = np.array([p["score"] for p in served])
    np.testing.assert_allclose(served_scores, offline_scores, rtol=0, atol=1e-6)
    assert single["score"] == served[0]["score"]
    # the comparison is sensitive: a different model input changes the scores
    skewed = training_frame(feast_world.store, requests).assign(
        log_amount=lambda f: f["log_amount"] + 2.0
    )
    assert np.max(np.abs(onnx_scores(tiny_model.onnx_path, skewed) - served_scores)) > 1e-4


def test_settings_refuse_an_unknown_online_store(tmp_path: Any) -> None:
    from mlref.settings import make_settings

    with pytest.raises(ValueError, match=r"online_store must be one of \('sqlite', 'redis'\)"):
        make_settings(tmp_path, online_store="mongo")
    assert make_settings(tmp_path).online_store == "sqlite"  # the default stays SQLite


def test_redis_repo_without_a_server_fails_with_the_fix(tmp_path: Any, require_engine: Any) -> None:
    """Pointing at a Redis that is not there fails at build time, saying what to do."""
    if importlib.util.find_spec("redis") is None:
        require_engine("the redis client is not installed (uv sync --extra scale)")
    from mlref.features.store import write_feature_repo
    from mlref.pipeline import free_port
    from mlref.settings import make_settings

    settings = make_settings(tmp_path, online_store="redis", redis_url=f"127.0.0.1:{free_port()}")
    with pytest.raises(ConnectionError, match="start redis-server there or set online_store"):
        write_feature_repo(settings)
