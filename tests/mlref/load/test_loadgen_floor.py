"""The benchmark's load generator and floor apps: every request recorded, nothing lost."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from mlref.load.floor import floor_app
from mlref.load.framework_floor import app as framework_floor_app
from mlref.load.launcher import running_server
from mlref.load.rawlog import read_raw
from mlref.serve.schemas import Prediction


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_floor_answers_like_the_scoring_api() -> None:
    transport = httpx.ASGITransport(app=floor_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://floor.test") as client:
        assert (await client.get("/readyz")).json() == {"ready": True}
        response = await client.post("/predict", json={"transaction_id": "t1", "user_id": 1})
        assert response.status_code == 200
        assert response.json()["transaction_id"] == "t1"
        assert (await client.post("/predict", content=b"{not json")).status_code == 422
        assert (await client.get("/nope")).status_code == 404


VALID = {
    "transaction_id": "t1",
    "user_id": 7,
    "amount": 12.5,
    "merchant_category": "grocery",
    "event_timestamp": "2026-01-02T03:04:05Z",
}


@pytest.mark.anyio
async def test_framework_floor_validates_like_the_scoring_api() -> None:
    """Same request and response models as the scoring API: a payload the server would refuse
    is refused here too, so the floor pays for the same validation."""
    transport = httpx.ASGITransport(app=framework_floor_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://fw.test") as client:
        assert (await client.get("/readyz")).json() == {"ready": True}
        response = await client.post("/predict", json=VALID)
        assert response.status_code == 200
        body = response.json()
        assert body["transaction_id"] == "t1"
        # the scoring API's own answer model: a field it gains, the floor answers too
        assert set(body) == set(Prediction.model_fields)
        as_string = await client.post("/predict", json={**VALID, "user_id": "7"})
        assert as_string.status_code == 422
        assert as_string.json()["detail"][0]["loc"] == ["body", "user_id"]
        naive = await client.post("/predict", json={**VALID, "event_timestamp": "2026-01-02"})
        assert naive.status_code == 422


def test_framework_floor_serves_from_the_server_cli(tmp_path: Path) -> None:
    with running_server(tmp_path, tmp_path, app="framework-floor", ready_timeout_s=60) as server:
        response = httpx.post(f"{server.url}/predict", json=VALID, timeout=10)
    assert response.status_code == 200
    assert response.json()["model_version"] == "framework-floor"


def test_open_loop_generator_records_every_request(tmp_path: Path) -> None:
    with running_server(tmp_path, tmp_path, app="floor", ready_timeout_s=60) as server:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "mlref.load.loadgen",
                "--url",
                server.url,
                "--rate",
                "100",
                "--duration",
                "1",
                "--warmup",
                "0.2",
                "--out",
                str(tmp_path / "raw"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    point = json.loads(done.stdout)
    assert point["sent"] == 100
    assert point["completed_ok"] == 100
    assert point["errors"] == 0
    raw = read_raw(tmp_path / "raw")
    assert len(raw) == 100
    assert set(raw["status"]) == {200}
    assert (raw["latency_ms"] > 0).all()


def test_generator_refuses_remote_hosts(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlref.load.loadgen",
            "--url",
            "http://10.1.2.3:80",
            "--rate",
            "10",
            "--duration",
            "1",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "loadgen only targets 127.0.0.1" in done.stderr
