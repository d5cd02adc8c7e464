"""Fixtures for the serving tests: real ONNX models, a feature source, a running app.

The models are real: a tiny XGBoost classifier trained on generated inputs and converted with
the model stage's own ``mlref.export.to_onnx`` (the same graph production serves), scored by
ONNX Runtime. The feature source in ``StateTableSource`` keeps per-user state in memory but
derives the model inputs with the shared request-time transform
(``mlref.features.transforms.request_features``), as the Feast path does; it stands in for the
Feast online store at the boundary in the batching/HTTP mechanics tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlref.settings import Settings, make_settings

N_USERS = 20
THRESHOLD = 0.3


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass(frozen=True)
class TrainedOnnx:
    onnx_path: Path
    card_path: Path
    native: Any  # the XGBClassifier, for reference scores
    feature_names: tuple[str, ...]


def _train_and_export(directory: Path, seed: int) -> TrainedOnnx:
    import xgboost as xgb

    from mlref.export import to_onnx
    from mlref.features.definitions import MODEL_FEATURES

    rng = np.random.default_rng(seed)
    n = 400
    frame = pd.DataFrame(
        {
            "txn_velocity_24h": rng.poisson(2.0, n).astype(float),
            "avg_order_30d": rng.lognormal(3.5, 0.5, n),
            "amount_vs_user_avg": rng.lognormal(0.0, 0.7, n),
            "seconds_since_last_txn": rng.exponential(20_000.0, n),
            "merchant_category_code": rng.integers(-1, 8, n).astype(float),
            "log_amount": rng.normal(3.5, 1.0, n),
            "hour_of_day": rng.integers(0, 24, n).astype(float),
            "day_of_week": rng.integers(0, 7, n).astype(float),
        }
    )[MODEL_FEATURES]
    z = 1.2 * (frame["log_amount"] - 3.5) + 0.4 * frame["txn_velocity_24h"] - 1.5
    y = (z + rng.normal(0, 0.7, n) > 0).astype(int)
    model = xgb.XGBClassifier(
        n_estimators=15, max_depth=3, learning_rate=0.3, random_state=seed, n_jobs=1
    )
    model.fit(frame, y)
    onnx_path = directory / f"model_{seed}.onnx"
    onnx_path.write_bytes(to_onnx(model, MODEL_FEATURES).SerializeToString())
    card_path = onnx_path.with_suffix(".card.json")
    card = {"feature_names": MODEL_FEATURES, "decision": {"threshold": THRESHOLD}}
    card_path.write_text(json.dumps(card))
    return TrainedOnnx(onnx_path, card_path, model, tuple(MODEL_FEATURES))


@pytest.fixture(scope="session")
def champion_onnx(tmp_path_factory: pytest.TempPathFactory) -> TrainedOnnx:
    return _train_and_export(tmp_path_factory.mktemp("champion"), seed=1)


@pytest.fixture(scope="session")
def challenger_onnx(tmp_path_factory: pytest.TempPathFactory) -> TrainedOnnx:
    return _train_and_export(tmp_path_factory.mktemp("challenger"), seed=2)


@pytest.fixture(scope="session")
def champion(champion_onnx: TrainedOnnx) -> Any:
    from mlref.serve.predictor import served_model_from_card

    return served_model_from_card(
        champion_onnx.onnx_path, champion_onnx.card_path, "champion-v1", intra_op_threads=1
    )


@pytest.fixture(scope="session")
def challenger(challenger_onnx: TrainedOnnx) -> Any:
    from mlref.serve.predictor import served_model_from_card

    return served_model_from_card(
        challenger_onnx.onnx_path, challenger_onnx.card_path, "challenger-v2"
    )


class StateTableSource:
    """Per-user stored state in a dict; model inputs via the shared request-time transform.

    Unknown users get ``UNKNOWN_USER_STATE`` (the documented defaults) and the flag, as
    ``online_model_features`` does. ``calls`` records the batch size of every lookup.
    """

    def __init__(self, state: dict[int, dict[str, float]]) -> None:
        self.state = state
        self.calls: list[int] = []

    def lookup(self, batch: Any) -> pd.DataFrame:
        requests = batch.frame()  # a RequestBatch (mlref.serve.features) as a DataFrame
        from mlref.features.definitions import UNKNOWN_USER_STATE
        from mlref.features.transforms import request_features

        self.calls.append(len(requests))
        known = requests["user_id"].isin(list(self.state)).to_numpy()
        rows = [self.state.get(int(u), UNKNOWN_USER_STATE) for u in requests["user_id"].to_numpy()]
        inputs = pd.DataFrame(rows, index=requests.index)
        inputs["amount"] = requests["amount"].to_numpy()
        inputs["merchant_category"] = requests["merchant_category"].to_numpy()
        inputs["request_ts"] = (
            requests["event_timestamp"].astype("datetime64[ns, UTC]").astype("int64") / 1e9
        )
        out = request_features(inputs)
        out["unknown_user"] = ~known
        return out


START = pd.Timestamp("2026-03-01T12:00:00+00:00")


def user_state(n_users: int = N_USERS, seed: int = 0) -> dict[int, dict[str, float]]:
    rng = np.random.default_rng(seed)
    return {
        uid: {
            "txn_count_24h": float(rng.integers(0, 6)),
            "avg_amount_30d": float(rng.lognormal(3.5, 0.5)),
            "last_txn_ts": START.timestamp() - float(rng.uniform(60, 80_000)),
        }
        for uid in range(1, n_users + 1)
    }


@pytest.fixture
def features() -> StateTableSource:
    return StateTableSource(user_state())


def txn(i: int, *, user_id: int | None = None, amount: float | None = None) -> dict[str, Any]:
    """A valid request body; deterministic in ``i``."""
    rng = np.random.default_rng(i)
    return {
        "transaction_id": f"t{i:06d}",
        "user_id": user_id if user_id is not None else 1 + i % N_USERS,
        "amount": amount if amount is not None else round(float(rng.lognormal(3.5, 1.0)), 2),
        "merchant_category": ["grocery", "online", "travel", "gas"][i % 4],
        "event_timestamp": (START + pd.Timedelta(seconds=37 * i)).isoformat(),
    }


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "mlref")


def serve_config(**overrides: Any) -> Any:
    from mlref.serve.app import ServeConfig

    base: dict[str, Any] = {
        "max_batch_size": 16,
        "max_wait_ms": 2.0,
        "max_queue": 64,
        "max_batch_request": 50,
        "log_flush_rows": 8,
        "log_flush_interval_s": 0.05,
        "graceful_timeout_s": 10.0,
        "shadow_alias": None,
        # these tests hold the model on a gate far past any latency budget on purpose, and
        # admission would shed what they queue; it has its own tests (test_admission*.py)
        "admission": False,
    }
    base.update(overrides)
    return ServeConfig(**base)


class GatedModel:
    """Wraps a real model: blocks while ``gate`` is closed, raises on chosen calls.

    Fault injection for the mechanics tests; the scores still come from ONNX Runtime.
    """

    def __init__(self, inner: Any, *, fail_calls: set[int] | None = None) -> None:
        self.inner = inner
        self.gate = threading.Event()
        self.gate.set()
        self.fail_calls = fail_calls or set()
        self.calls: list[int] = []  # batch size of every call
        self.entered = threading.Event()

    def predict(self, x: np.ndarray) -> np.ndarray:
        self.calls.append(x.shape[0])
        self.entered.set()
        if not self.gate.wait(timeout=20):
            raise TimeoutError("test gate never opened")
        if len(self.calls) in self.fail_calls:
            raise RuntimeError(f"injected failure on model call {len(self.calls)}")
        return self.inner.predict(x)


def gated(served: Any, **kwargs: Any) -> tuple[Any, GatedModel]:
    from dataclasses import replace

    wrapper = GatedModel(served.model, **kwargs)
    return replace(served, model=wrapper), wrapper


@contextlib.asynccontextmanager
async def running_app(app: Any, *, ready_timeout: float = 20.0) -> AsyncIterator[Any]:
    """Run the app's lifespan and yield an httpx client bound to it (ASGI in-process)."""
    import httpx

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://mlref.test") as client:
            await wait_ready(client, ready_timeout)
            yield client


async def wait_ready(client: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = await client.get("/readyz")
        if response.status_code == 200:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"app not ready after {timeout} s: {response.text}")


async def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.005)


@contextlib.contextmanager
def uvicorn_server(app: Any, *, timeout: float = 30.0) -> Iterator[tuple[str, Any]]:
    """A real uvicorn on 127.0.0.1 (ephemeral port, socket bound here: no port race) in a
    thread; asked to exit and joined on the way out."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    config = uvicorn.Config(
        app, log_config=None, lifespan="on", timeout_graceful_shutdown=20, access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="uvicorn-test", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise AssertionError("uvicorn did not start")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}", server
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()
        assert not thread.is_alive(), "uvicorn did not stop"


@pytest.fixture
def kit() -> SimpleNamespace:
    """The helpers above, for test modules (importlib mode: conftest is not importable)."""
    return SimpleNamespace(
        txn=txn,
        serve_config=serve_config,
        gated=gated,
        running_app=running_app,
        wait_ready=wait_ready,
        wait_for=wait_for,
        uvicorn_server=uvicorn_server,
        StateTableSource=StateTableSource,
        user_state=user_state,
        threshold=THRESHOLD,
        n_users=N_USERS,
    )
