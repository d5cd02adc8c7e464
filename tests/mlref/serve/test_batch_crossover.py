"""/predict/batch at and above the model's crossover: one call, scored by native XGBoost.

Through a real uvicorn on 127.0.0.1 with the real Feast online store: the same transactions
(known users, and unknown ones whose stored features are missing) are sent as one call at or
above the crossover (scored whole -> native XGBoost) and as calls below it (the batcher's
chunks -> ONNX Runtime); the answers must match field for field, the scores within the
crossover's parity tolerance. Then what a big call must not break: an idle server with
deadline admission on takes it, the queue bound still counts its rows, and shutdown drains it.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from mlref.features.definitions import MODEL_FEATURES
from mlref.serve.app import create_app
from mlref.serve.predictor import NATIVE_FROM_ROWS, CrossoverModel, ServedModel

PARITY_ATOL = 1e-5  # the crossover's own (tests/mlref/serve/test_crossover.py)
THRESHOLD = 0.3

pytestmark = [
    # third-party notices from Feast's offline retrieval (on-demand views; ibis on duckdb)
    pytest.mark.filterwarnings(
        "ignore:On demand feature view is an experimental feature:RuntimeWarning"
    ),
    pytest.mark.filterwarnings("ignore:fetch_arrow_table\\(\\) is deprecated:DeprecationWarning"),
]


def _export(directory: Path, seed: int = 5) -> Path:
    """A model trained on the served features' shapes, exported as ONNX with the native model
    beside it (``model.xgb.json``), as export and the registry leave it."""
    import json

    import xgboost as xgb

    from mlref.export import to_onnx

    rng = np.random.default_rng(seed)
    n = 3000
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
    frame.loc[::9, "seconds_since_last_txn"] = np.nan  # the trees learn default branches
    frame.loc[::13, "avg_order_30d"] = np.nan
    z = (
        (frame["log_amount"] - 3.5)
        + 0.3 * frame["txn_velocity_24h"]
        - 0.3 * frame["hour_of_day"] / 6
    )
    y = (z + rng.normal(0, 0.7, n) > 0.5).astype(int)
    model = xgb.XGBClassifier(
        n_estimators=80, max_depth=5, learning_rate=0.2, random_state=seed, n_jobs=1
    )
    model.fit(frame, y)
    onnx_path = directory / "model.onnx"
    onnx_path.write_bytes(to_onnx(model, MODEL_FEATURES).SerializeToString())
    model.get_booster().save_model(str(directory / "model.xgb.json"))
    card = {"feature_names": MODEL_FEATURES, "decision": {"threshold": THRESHOLD}}
    onnx_path.with_suffix(".card.json").write_text(json.dumps(card))
    return onnx_path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any, list[dict[str, Any]], Path]:
    """A real Feast store (SQLite online store) and 1,100 request bodies: the log's own
    transactions (cycled), every fifth one from a user the store has never seen (missing
    features)."""
    from mlref.data.generate import generate_transactions
    from mlref.features.store import build_feature_store
    from mlref.pipeline import transaction_payloads
    from mlref.settings import DataConfig, make_settings

    settings = make_settings(tmp_path_factory.mktemp("feast") / "mlref")
    settings.ensure_dirs()
    events = generate_transactions(DataConfig(n_users=40, days=12, seed=11))
    store = build_feature_store(settings, events)
    logged = transaction_payloads(events)
    bodies = [{**logged[i % len(logged)], "transaction_id": f"c{i:05d}"} for i in range(1100)]
    for i, body in enumerate(bodies):
        if i % 5 == 0:
            body["user_id"] = 900_000 + i  # unknown: its stored features are missing (NaN)
    assert len(bodies) == 1100
    return settings, store, bodies, _export(tmp_path_factory.mktemp("model"))


def _served(onnx_path: Path, model: Any = None) -> ServedModel:
    from mlref.serve.predictor import served_model_from_card

    served = served_model_from_card(onnx_path, onnx_path.with_suffix(".card.json"), "m-1")
    if model is not None:
        from dataclasses import replace

        served = replace(served, model=model)
    return served


def _wait_ready(client: httpx.Client) -> None:
    import time

    deadline = time.monotonic() + 60
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "not ready in 60 s"
        time.sleep(0.02)


def _batch_metrics(client: httpx.Client) -> tuple[float, float]:
    """(batches, rows) scored so far, from /metrics (mlref_batch_size count and sum)."""
    count = total = 0.0
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("mlref_batch_size_count"):
            count = float(line.split()[-1])
        elif line.startswith("mlref_batch_size_sum"):
            total = float(line.split()[-1])
    return count, total


@pytest.mark.parametrize("n", [NATIVE_FROM_ROWS, 1100])
def test_a_call_at_or_above_the_crossover_is_scored_whole_by_the_native_model_with_parity(
    world: tuple[Any, Any, list[dict[str, Any]], Path], n: int, kit: Any, tmp_path: Path
) -> None:
    from mlref.serve.features import FeastFeatureSource
    from mlref.settings import make_settings

    _, store, bodies, onnx_path = world
    served = _served(onnx_path)
    crossover = served.model
    assert isinstance(crossover, CrossoverModel)
    app = create_app(
        make_settings(tmp_path / "mlref"),
        model=served,
        features=FeastFeatureSource(store),
        # deadline admission on, as served by default: a big call on an idle server is taken
        config=kit.serve_config(
            max_batch_size=64, max_batch_request=1100, max_queue=2048, admission=True
        ),
    )
    sent = bodies[:n]
    small = NATIVE_FROM_ROWS // 2  # below the crossover: the batcher's chunks, ONNX Runtime
    with kit.uvicorn_server(app) as (url, _server), httpx.Client(base_url=url, timeout=60) as c:
        _wait_ready(c)
        onnx_answers: list[dict[str, Any]] = []
        for start in range(0, n, small):
            r = c.post("/predict/batch", json={"transactions": sent[start : start + small]})
            assert r.status_code == 200, r.text
            onnx_answers += r.json()["predictions"]
        assert crossover._booster is None, "a call below the crossover loaded the native model"
        batches, rows = _batch_metrics(c)
        whole = c.post("/predict/batch", json={"transactions": sent})
        assert whole.status_code == 200, whole.text
        after_batches, after_rows = _batch_metrics(c)
    assert crossover._booster is not None, "the call at the crossover never reached native"
    assert (after_batches - batches, after_rows - rows) == (1, n), "not scored in one call"
    native_answers = whole.json()["predictions"]
    assert set(whole.json()) == {"predictions"}
    assert len(native_answers) == len(onnx_answers) == n
    assert sum(a["unknown_user"] for a in native_answers) == len(range(0, n, 5))
    for native, onnx in zip(native_answers, onnx_answers, strict=True):
        assert native.keys() == onnx.keys()
        assert abs(native["score"] - onnx["score"]) <= PARITY_ATOL, (native, onnx)
        near = abs(onnx["score"] - THRESHOLD) <= PARITY_ATOL
        same = {k: v for k, v in native.items() if k != "score" and not (near and k == "decision")}
        assert same == {k: onnx[k] for k in same}
    scores = np.array([a["score"] for a in native_answers])
    assert np.ptp(scores) > 0.1, "scores too alike for a parity check to mean anything"


class HeldCrossover(CrossoverModel):
    """The real crossover model, held on a gate while scoring a large call (a slow batch)."""

    def __init__(self, inner: CrossoverModel) -> None:
        super().__init__(
            inner.onnx, inner.native_path, inner.feature_names, n_threads=inner.n_threads
        )
        self.gate = threading.Event()
        self.entered = threading.Event()

    def predict(self, x: np.ndarray) -> np.ndarray:
        if self.crosses_over(len(x)):
            self.entered.set()
            assert self.gate.wait(30), "test gate never opened"
        return super().predict(x)


def test_a_whole_call_counts_against_the_queue_and_is_drained_at_shutdown(
    world: tuple[Any, Any, list[dict[str, Any]], Path], kit: Any, tmp_path: Path
) -> None:
    """While a big call holds the model: another big call that would take the rows past
    ``max_queue`` is shed (503 queue full), a single request still gets in line; on shutdown
    the held call is finished and answered 200, not dropped."""
    from mlref.serve.features import FeastFeatureSource
    from mlref.settings import make_settings

    _, store, bodies, onnx_path = world
    base = _served(onnx_path)
    assert isinstance(base.model, CrossoverModel)
    held = HeldCrossover(base.model)
    app = create_app(
        make_settings(tmp_path / "mlref"),
        model=_served(onnx_path, held),
        features=FeastFeatureSource(store),
        config=kit.serve_config(max_batch_size=64, max_batch_request=1000, max_queue=1200),
    )
    first = bodies[:700]

    async def scenario(url: str, server: Any) -> tuple[httpx.Response, ...]:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            call = asyncio.create_task(client.post("/predict/batch", json={"transactions": first}))
            assert await asyncio.to_thread(held.entered.wait, 20)
            second = await client.post("/predict/batch", json={"transactions": bodies[:600]})
            single = asyncio.create_task(client.post("/predict", json=bodies[1]))
            await asyncio.sleep(0.2)
            server.should_exit = True  # shutdown begins while the first call is held
            await asyncio.sleep(0.3)
            held.gate.set()
            return await call, second, await single

    with kit.uvicorn_server(app) as (url, server):
        with httpx.Client(base_url=url, timeout=60) as c:
            _wait_ready(c)
        answered, refused, single = asyncio.run(scenario(url, server))
    assert refused.status_code == 503, refused.text
    assert "queue full" in refused.json()["detail"]
    assert answered.status_code == 200, answered.text
    assert [p["transaction_id"] for p in answered.json()["predictions"]] == [
        b["transaction_id"] for b in first
    ]
    assert single.status_code == 200, single.text
