"""The prediction log behind the server: every answered transaction is written or counted
(``/metrics``), on a full disk too; the sync mode's durability under SIGKILL (a real uvicorn
subprocess on 127.0.0.1, killed with SIGKILL while requests are in flight); the serve flags.

Real parts: the ONNX champion (ONNX Runtime), SQLite files, uvicorn over loopback. The
feature source is the in-memory stand-in of the other serving tests (the subprocess carries
its own copy, with every user unknown: the log, not the features, is under test).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from mlref.serve.app import create_app
from mlref.serve.metrics import parse_metrics
from mlref.serve.predlog import DROP_REASONS, read_predictions

DROPPED = "mlref_prediction_log_rows_dropped_total"
WRITTEN = "mlref_prediction_log_rows_written_total"


# -- every answered transaction is written or counted, on a full disk too --------------------
@pytest.mark.anyio
@pytest.mark.parametrize("sync", [False, True], ids=["async", "sync"])
async def test_written_plus_dropped_equals_answered_on_a_full_disk(
    settings: Any, champion: Any, features: Any, kit: Any, sync: bool
) -> None:
    config = kit.serve_config(
        max_queue=256,  # room for the four concurrent batches: none is shed
        log_flush_rows=64,
        log_flush_interval_s=0.01,
        log_max_file_bytes=96 * 1024,  # fills after a few hundred rows
        log_sync=sync,
    )
    app = create_app(settings, model=champion, features=features, config=config)
    runtime = app.state.runtime
    answered = 0
    async with kit.running_app(app) as client:

        async def send(k: int) -> int:
            n = 0
            for g in range(8):
                body = {"transactions": [kit.txn(k * 1000 + g * 40 + i) for i in range(40)]}
                response = await client.post("/predict/batch", json=body)
                assert response.status_code == 200  # a full log never fails the request
                n += len(response.json()["predictions"])
            return n

        answered = sum(await asyncio.gather(*(send(k) for k in range(4))))
        await kit.wait_for(lambda: runtime.log.pending == 0, what="the writer to catch up")
        metrics = parse_metrics((await client.get("/metrics")).text)
    log = runtime.log
    assert answered == 4 * 8 * 40
    assert log.written + log.dropped == answered  # nothing lost uncounted
    assert log.dropped_by["disk_full"] > 0
    assert len(read_predictions(settings.prediction_log)) == log.written
    dropped = {r: metrics[f'{DROPPED}{{reason="{r}"}}'] for r in DROP_REASONS}
    assert metrics[WRITTEN] + sum(dropped.values()) == answered
    assert dropped["disk_full"] == log.dropped_by["disk_full"]


@pytest.mark.anyio
async def test_retention_counts_reach_metrics(
    settings: Any, champion: Any, features: Any, kit: Any
) -> None:
    config = kit.serve_config(log_flush_rows=10, log_max_rows=25)
    app = create_app(settings, model=champion, features=features, config=config)
    runtime = app.state.runtime
    async with kit.running_app(app) as client:
        for g in range(5):
            body = {"transactions": [kit.txn(g * 20 + i) for i in range(20)]}
            assert (await client.post("/predict/batch", json=body)).status_code == 200
        await kit.wait_for(lambda: runtime.log.written == 100, what="the rows")
        # the periodic pass (once a second, idle too) deletes what is over the cap
        await kit.wait_for(lambda: runtime.log.deleted_by["max_rows"] == 75, what="retention")
        metrics = parse_metrics((await client.get("/metrics")).text)
    assert len(read_predictions(settings.prediction_log)) == 25
    assert metrics['mlref_prediction_log_rows_deleted_total{reason="max_rows"}'] == 75
    assert metrics['mlref_prediction_log_rows_deleted_total{reason="max_age"}'] == 0


@pytest.mark.anyio
async def test_sync_mode_answers_after_the_row_is_committed_with_its_shadow_score(
    settings: Any, champion: Any, challenger: Any, features: Any, kit: Any
) -> None:
    # a flush window of a minute: only the sync mode makes the row visible this soon
    config = kit.serve_config(log_sync=True, log_flush_rows=10_000, log_flush_interval_s=60.0)
    app = create_app(settings, model=champion, features=features, shadow=challenger, config=config)
    async with kit.running_app(app) as client:
        response = await client.post("/predict", json=kit.txn(3))
        assert response.status_code == 200
        (row,) = read_predictions(settings.prediction_log)  # before any flush or shutdown
    assert row["transaction_id"] == response.json()["transaction_id"]
    assert row["shadow_version"] == "challenger-v2"
    assert row["shadow_score"] is not None


# -- durability: SIGKILL -----------------------------------------------------------------------
SERVER_SCRIPT = textwrap.dedent(
    """
    import json, socket, sys
    from pathlib import Path

    import pandas as pd
    import uvicorn

    from mlref.features.definitions import UNKNOWN_USER_STATE
    from mlref.features.transforms import request_features
    from mlref.serve.app import create_app
    from mlref.serve.config import ServeConfig
    from mlref.serve.predictor import served_model_from_card
    from mlref.settings import make_settings

    workdir, onnx, card, port_file, sync = sys.argv[1:6]

    class UnknownUsers:
        def lookup(self, batch):
            requests = batch.frame()
            inputs = pd.DataFrame([UNKNOWN_USER_STATE] * len(requests), index=requests.index)
            inputs["amount"] = requests["amount"].to_numpy()
            inputs["merchant_category"] = requests["merchant_category"].to_numpy()
            inputs["request_ts"] = (
                requests["event_timestamp"].astype("datetime64[ns, UTC]").astype("int64") / 1e9
            )
            out = request_features(inputs)
            out["unknown_user"] = True
            return out

    config = ServeConfig(
        max_batch_size=16, max_queue=256, max_batch_request=50, shadow_alias=None,
        # async: a flush only when 10000 rows wait or after a minute, so a kill loses rows
        log_flush_rows=10_000, log_flush_interval_s=60.0, log_sync=sync == "sync",
    )
    model = served_model_from_card(Path(onnx), Path(card), "champion-v1")
    app = create_app(make_settings(workdir), model=model, features=UnknownUsers(), config=config)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    Path(port_file).write_text(str(sock.getsockname()[1]))
    uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False)).run(sockets=[sock])
    """
)


def _serve_then_kill(tmp_path: Path, onnx: Any, kit: Any, mode: str) -> tuple[set[str], set[str]]:
    """Start the server, send requests from 6 threads, SIGKILL it while they run; returns
    (transaction ids answered 200, transaction ids in the log)."""
    script = tmp_path / "server.py"
    script.write_text(SERVER_SCRIPT)
    workdir = tmp_path / f"w-{mode}"
    port_file = tmp_path / f"port-{mode}"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # a file, not a pipe nobody reads while the test runs (a full pipe would block the server)
    stderr = (tmp_path / f"stderr-{mode}").open("w+b")
    proc = subprocess.Popen(
        [
            sys.executable,
            str(script),
            str(workdir),
            str(onnx.onnx_path),
            str(onnx.card_path),
            str(port_file),
            mode,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )
    answered: set[str] = set()
    lock = threading.Lock()
    stop = threading.Event()
    try:
        deadline = time.monotonic() + 60
        while not port_file.exists() or not port_file.read_text():
            assert proc.poll() is None, (tmp_path / f"stderr-{mode}").read_text()[-2000:]
            assert time.monotonic() < deadline, "the server did not bind in 60 s"
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port_file.read_text()}"
        with httpx.Client(base_url=url, timeout=10) as client:
            while True:  # bound before uvicorn listens: refused until it does
                assert proc.poll() is None, "the server exited before it was ready"
                assert time.monotonic() < deadline, "the server was not ready in 60 s"
                try:
                    if client.get("/readyz").status_code == 200:
                        break
                except httpx.ConnectError:
                    pass
                time.sleep(0.05)

        def worker(k: int) -> None:
            with httpx.Client(base_url=url, timeout=10) as client:
                for i in range(100_000):
                    if stop.is_set():
                        return
                    txn = kit.txn(k * 100_000 + i)
                    try:
                        response = client.post("/predict", json=txn)
                    except httpx.HTTPError:
                        return  # the server died under this request: it was not answered
                    if response.status_code == 200:
                        with lock:
                            answered.add(txn["transaction_id"])

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while len(answered) < 150:  # bounded: ~150 requests, then the kill
            assert time.monotonic() < deadline, f"only {len(answered)} answered in 60 s"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)  # mid-traffic: requests are in flight
        proc.wait(30)
        stop.set()
        for t in threads:
            t.join(30)
    finally:
        stop.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        stderr.close()
    from mlref.settings import make_settings

    log_path = make_settings(workdir).prediction_log  # where the script's server writes it
    logged = {r["transaction_id"] for r in read_predictions(log_path)}
    return answered, logged


def test_sigkill_in_sync_mode_loses_no_answered_row(
    tmp_path: Path, champion_onnx: Any, kit: Any
) -> None:
    answered, logged = _serve_then_kill(tmp_path, champion_onnx, kit, "sync")
    assert len(answered) >= 150
    assert answered - logged == set()  # every answer was committed before it was sent
    # and the control: the async mode with a one-minute flush window loses what it answered
    answered_async, logged_async = _serve_then_kill(tmp_path, champion_onnx, kit, "async")
    assert len(answered_async - logged_async) > 0, "the kill did not test anything"


# -- the serve flags ----------------------------------------------------------------------------
def test_serve_flags_reach_the_serve_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlref import cli
    from mlref.serve import run

    seen: dict[str, Any] = {}
    monkeypatch.setattr(run, "serve", lambda settings, *, config: seen.update(config=config))
    argv = ["serve", "--log-sync", "--log-max-rows", "1000", "--log-max-age-s", "86400"]
    assert cli.main([*argv, "--workdir", str(tmp_path)]) == 0
    config = seen["config"]
    assert (config.log_sync, config.log_max_rows, config.log_max_age_s) == (True, 1000, 86400.0)
    assert config.log_max_file_bytes is None
    assert config.gc_freeze  # the serve process owns its heap
    seen.clear()
    assert cli.main(["serve", "--workdir", str(tmp_path)]) == 0
    assert (seen["config"].log_sync, seen["config"].log_max_rows) == (False, 2_000_000)
