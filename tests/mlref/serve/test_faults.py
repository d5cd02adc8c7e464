"""Faults of the serving lifecycle against the real parts: a Feast online store (SQLite file)
broken and restored under a running uvicorn; a start-up that fails (a file missing) and is
retried with backoff until the file is back, or gives up with liveness failing; and a missing
registry database or online store named, never created. See docs/faults.md."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from mlref.serve.app import create_app
from mlref.settings import make_settings

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.filterwarnings(
        "ignore:On demand feature view is an experimental feature:RuntimeWarning"
    ),
]


@pytest.fixture(scope="module")
def feast_settings(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A workdir with a real Feast store (offline parquet, registry, SQLite online store)."""
    from mlref.data.generate import generate_transactions
    from mlref.features.store import build_feature_store
    from mlref.settings import DataConfig

    settings = make_settings(tmp_path_factory.mktemp("faults") / "mlref")
    settings.ensure_dirs()
    build_feature_store(settings, generate_transactions(DataConfig(n_users=15, days=6, seed=5)))
    return settings


def _online(settings: Any) -> Path:
    return settings.feature_repo / "data" / "online_store.db"


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def _until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.05)


def test_a_store_broken_under_a_running_server_is_503_not_ready_and_recovers_by_itself(
    feast_settings: Any, champion: Any, kit: Any, caplog: pytest.LogCaptureFixture
) -> None:
    online = _online(feast_settings)
    saved = online.read_bytes()
    config = kit.serve_config(store_check_interval_s=0.2, load_retry_s=0.1, load_retry_max_s=0.4)
    app = create_app(feast_settings, model=champion, config=config)  # the Feast store: opened
    body = kit.txn(3)
    try:
        with kit.uvicorn_server(app) as (url, _server), httpx.Client(base_url=url) as client:
            _until(lambda: client.get("/readyz").status_code == 200, 60, "ready")
            before = client.post("/predict", json=body)
            with online.open("r+b") as f:  # truncated in place under the running server
                f.truncate(0)
            broken = client.post("/predict", json=body)
            _until(lambda: client.get("/readyz").status_code == 503, 5, "readyz 503")
            not_ready = client.get("/readyz")
            health = client.get("/healthz")
            online.write_bytes(saved)  # restored in place: no restart
            _until(lambda: client.get("/readyz").status_code == 200, 10, "ready again")
            after = client.post("/predict", json=body)
    finally:
        online.write_bytes(saved)
    assert before.status_code == 200
    assert broken.status_code == 503, broken.text
    assert broken.headers["retry-after"] == "1"
    assert set(broken.json()) == {"detail", "request_id"}
    for internal in ("no such table", "OperationalError", str(feast_settings.workdir)):
        assert internal not in broken.text
        assert internal not in not_ready.text
    assert not_ready.json() == {
        "ready": False,
        "reason": "the feature store cannot be read; retrying (the cause is in the server log)",
    }
    assert health.status_code == 200  # alive: a restart would not bring the store back
    assert after.status_code == 200
    assert after.json() == before.json()
    assert "the online store reads again" in caplog.text


def test_a_missing_online_store_is_named_never_created_and_picked_up_when_restored(
    feast_settings: Any, champion: Any, kit: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Start-up is retried with backoff (reported on /readyz, alive on /healthz) until the
    file is back; meanwhile nothing is created in its place (sqlite3.connect would)."""
    online = _online(feast_settings)
    aside = online.with_name("online_store.db.aside")
    online.rename(aside)
    config = kit.serve_config(load_retry_s=0.1, load_retry_max_s=0.4, load_give_up_s=120.0)
    app = create_app(feast_settings, model=champion, config=config)
    runtime = app.state.runtime
    try:
        with kit.uvicorn_server(app) as (url, _server), httpx.Client(base_url=url) as client:
            _until(lambda: runtime.load_error is not None, 60, "a failed start-up")
            time.sleep(0.8)  # several retries (0.1, 0.2, 0.4 s apart)
            retrying = client.get("/readyz")
            alive = client.get("/healthz")
            created = online.exists()
            aside.rename(online)
            _until(lambda: client.get("/readyz").status_code == 200, 20, "ready")
            scored = client.post("/predict", json=kit.txn(1))
    finally:
        if aside.exists():
            aside.rename(online)
    assert not created, "serving created an empty online store in place of the missing one"
    assert retrying.status_code == 503
    assert retrying.json()["reason"].startswith("start-up failed (attempt ")
    assert "retrying in" in retrying.json()["reason"]
    assert alive.json() == {"status": "ok"}
    assert f"the online store file {online} is missing" in caplog.text
    assert scored.status_code == 200


async def test_a_missing_registry_database_is_named_and_nothing_is_created(
    tmp_path: Path, features: Any, kit: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """No mlflow.db: MLflow would create an empty one and say "no 'champion' alias"."""
    workdir = tmp_path / "mlref"
    workdir.mkdir()
    settings = make_settings(workdir)
    config = kit.serve_config(load_retry_s=0.05, load_give_up_s=0.3)
    app = create_app(settings, features=features, config=config)
    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://mlref.test") as client,
        app.router.lifespan_context(app),
    ):
        await kit.wait_for(
            lambda: app.state.runtime.load_error is not None, 60, what="a failure (mlflow import)"
        )
        await asyncio.sleep(0.6)  # past load_give_up_s
        ready = await client.get("/readyz")
        health = await client.get("/healthz")
    assert _tree(workdir) == []  # no mlflow/mlflow.db, no logs/predictions.sqlite
    database = workdir / "mlflow" / "mlflow.db"
    assert f"the MLflow registry database {database} is missing" in caplog.text
    assert "champion' alias" not in caplog.text
    assert ready.status_code == 503
    # gave up: liveness fails so the orchestrator restarts the process
    assert health.status_code == 503
    assert health.json()["status"] == "failed"
    assert str(workdir) not in health.text


async def test_a_failed_start_is_retried_with_backoff_and_serves_once_the_model_is_back(
    tmp_path: Path, champion_onnx: Any, features: Any, kit: Any
) -> None:
    model_path = tmp_path / "models" / "model.onnx"
    config = kit.serve_config(model_path=model_path, load_retry_s=0.05, load_retry_max_s=0.2)
    settings = make_settings(tmp_path / "mlref")
    app = create_app(settings, features=features, config=config)
    runtime = app.state.runtime
    async with _lifespan(app) as client:
        await kit.wait_for(lambda: runtime.load_error is not None, what="a failed attempt")
        await asyncio.sleep(0.3)  # a few retries
        waits = await client.get("/readyz")
        model_path.parent.mkdir()
        shutil.copy(champion_onnx.onnx_path, model_path)
        shutil.copy(champion_onnx.card_path, model_path.with_suffix(".card.json"))
        await kit.wait_ready(client, 10)
        scored = await client.post("/predict", json=kit.txn(2))
    assert waits.status_code == 503
    assert "retrying in" in waits.json()["reason"]
    assert scored.status_code == 200
    assert not runtime.gave_up


def _lifespan(app: Any) -> Any:
    import contextlib

    @contextlib.asynccontextmanager
    async def run() -> Any:
        transport = httpx.ASGITransport(app=app)
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://mlref.test") as client,
            app.router.lifespan_context(app),
        ):
            yield client

    return run()
