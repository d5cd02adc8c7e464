"""Fixtures for the scale-out tests: a real redis-server, real Feast stores on SQLite and on
Redis built from the same events, a real ONNX model, and skips when an engine is missing.

Without ``MLREF_SCALE=1`` (the default suite) every test here is skipped at collection, before
any engine is looked for, so the ordinary run stays fast. Under ``nox -s scale`` (which sets
``MLREF_SCALE=1`` after installing the engines) a missing engine FAILS its tests with the
reason and the install command: the run that is meant to exercise Redis and Spark must not
turn green by skipping them.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlref.data.columns import EVENT_TIMESTAMP, USER_ID

THRESHOLD = 0.05


def scale_run() -> bool:
    """True under ``nox -s scale`` / ``MLREF_SCALE=1``: the engines are required."""
    import os

    return os.environ.get("MLREF_SCALE") == "1"


def require(reason: str | None) -> None:
    """Fail (scale run) or skip (anything else) when an engine is missing."""
    if reason is None:
        return
    if scale_run():
        pytest.fail(f"MLREF_SCALE=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def redis_missing() -> str | None:
    from mlref.scale.redis_store import INSTALL_HINT, redis_server_binary

    if importlib.util.find_spec("redis") is None:
        return "the redis client is not installed (uv sync --extra scale)"
    if redis_server_binary() is None:
        return f"redis-server is not installed: {INSTALL_HINT}"
    return None


def nginx_missing() -> str | None:
    from mlref.scale.balancer import INSTALL_HINT, nginx_binary

    if nginx_binary() is None:
        return f"nginx is not installed: {INSTALL_HINT}"
    return None


def spark_missing() -> str | None:
    if importlib.util.find_spec("pyspark") is None:
        return "pyspark is not installed (uv sync --extra scale)"
    if shutil.which("java") is None:
        return "no java on PATH: Spark needs a JRE 17+ (apt-get install -y openjdk-17-jre-headless)"
    return None


@pytest.fixture(scope="session")
def require_engine() -> Any:
    """``require_engine(reason_or_None)`` for a test's own engine check: fail or skip."""
    return require


@pytest.fixture(scope="session")
def nginx_available() -> None:
    """nginx (the balancer in front of the replicas) is installed, or fail/skip."""
    require(nginx_missing())


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A redis-server on 127.0.0.1 for the session (no persistence), stopped at the end."""
    require(redis_missing())
    from mlref.scale.redis_store import RedisServer

    server = RedisServer().start()
    try:
        yield server.url
    finally:
        server.stop()


@dataclass(frozen=True)
class TinyModel:
    onnx_path: Path
    card_path: Path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    """A small XGBoost model on the real MODEL_FEATURES, exported with mlref's own to_onnx."""
    import xgboost as xgb

    from mlref.data.generate import generate_transactions
    from mlref.export import to_onnx
    from mlref.features.definitions import MODEL_FEATURES
    from mlref.features.offline import batch_model_features
    from mlref.settings import DataConfig

    events = generate_transactions(DataConfig(n_users=150, days=20, seed=3, fraud_rate=0.05))
    x = batch_model_features(events, events)
    model = xgb.XGBClassifier(
        n_estimators=20, max_depth=3, learning_rate=0.3, random_state=0, n_jobs=1
    )
    model.fit(x, events["is_fraud"].to_numpy())
    folder = tmp_path_factory.mktemp("model")
    onnx_path = folder / "model.onnx"
    onnx_path.write_bytes(to_onnx(model, MODEL_FEATURES).SerializeToString())
    card_path = onnx_path.with_suffix(".card.json")
    card_path.write_text(
        json.dumps({"feature_names": MODEL_FEATURES, "decision": {"threshold": THRESHOLD}})
    )
    return TinyModel(onnx_path, card_path)


@dataclass
class FeastWorld:
    backend: str
    settings: Any
    store: Any
    history: pd.DataFrame
    held_out: pd.DataFrame  # each user's last second of activity, not in the store


def _events() -> tuple[pd.DataFrame, pd.DataFrame]:
    from mlref.data.generate import generate_transactions
    from mlref.settings import DataConfig

    events = generate_transactions(DataConfig(n_users=40, days=12, seed=11))
    last = events.groupby(USER_ID)[EVENT_TIMESTAMP].transform("max") == events[EVENT_TIMESTAMP]
    return events[~last].reset_index(drop=True), events[last].reset_index(drop=True)


_WORLDS: dict[str, FeastWorld] = {}


@pytest.fixture(scope="session")
def feast_world_factory(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """``factory(backend, redis_url=None)``: one store per backend per session, the same events."""
    from mlref.features.store import build_feature_store
    from mlref.settings import make_settings

    def build(backend: str, redis_url: str | None = None) -> FeastWorld:
        if backend in _WORLDS:
            return _WORLDS[backend]
        history, held_out = _events()
        settings = make_settings(tmp_path_factory.mktemp(f"feast_{backend}") / "mlref")
        if backend == "redis":
            assert redis_url is not None
            from mlref.scale.redis_store import redis_settings

            settings = redis_settings(settings, redis_url)
        settings.ensure_dirs()
        store = build_feature_store(settings, history)
        _WORLDS[backend] = FeastWorld(backend, settings, store, history, held_out)
        return _WORLDS[backend]

    yield build
    _WORLDS.clear()


@pytest.fixture(scope="session", params=["sqlite", "redis"])
def feast_world(request: pytest.FixtureRequest, feast_world_factory: Any) -> FeastWorld:
    """The same feature definitions and events, served from SQLite and from Redis."""
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        return feast_world_factory("redis", url)  # type: ignore[no-any-return]
    return feast_world_factory("sqlite")  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def make_bodies() -> Any:
    """The server's request bodies for a frame of transactions (the pipeline's own)."""
    from mlref.pipeline import transaction_payloads

    return transaction_payloads


def float32_scores(model_path: Path, frame: pd.DataFrame) -> np.ndarray:
    from mlref.export import OnnxScorer
    from mlref.features.definitions import MODEL_FEATURES

    return OnnxScorer(model_path).score(frame[MODEL_FEATURES].to_numpy(dtype=np.float32))


@pytest.fixture(scope="session")
def onnx_scores() -> Any:
    return float32_scores


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """A local[2] SparkSession on loopback for the session; needs java and pyspark."""
    require(spark_missing())
    from mlref.scale.spark_batch import local_spark

    with local_spark("mlref-tests", cores=2, shuffle_partitions=3) as session:
        yield session


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The scale-out suite takes ~4 minutes (a JVM, redis-server, replica processes): it runs
    in `nox -s scale` (MLREF_SCALE=1), which `.ci/run` runs after the main suite."""
    if scale_run():
        return
    here = Path(__file__).parent
    # the guard's own tests need no engine and take a second: they run everywhere
    always_run = {here / "test_engine_guard.py"}
    skip = pytest.mark.skip(
        reason="scale-out suite (Redis, Spark, replicas): run `nox -s scale` or set MLREF_SCALE=1"
    )
    for item in items:
        if here in Path(item.path).parents and Path(item.path) not in always_run:
            item.add_marker(skip)
