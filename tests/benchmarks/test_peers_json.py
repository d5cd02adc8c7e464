"""The peer servers (benchmarks/peers: LitServe, BentoML) answer exactly what mlref answers.

The server benchmark compares mlref with LitServe and BentoML on the claim that they do the
same work: the same ONNX model, the same Feast online-store read, the same request and
response JSON. This test holds them to it on a real small system (generated data -> Feast
SQLite store -> XGBoost -> ONNX): each server, in its own process on 127.0.0.1, scores the
same transactions (a known user, an unknown user, an unknown merchant category, a large
amount) and every answer must equal mlref's field by field.

Skipped unless the ``peers`` dependency group is installed and ``MLREF_PEERS=1`` (it starts
three servers and builds a Feast store: two to five minutes on 2 cores, too slow for the main
suite; ``uv run`` keeps a group installed once any command added it). ``nox -s perf`` runs it
before the benchmark: ``MLREF_PEERS=1 uv run --locked --group peers pytest
tests/benchmarks/test_peers_json.py``.
"""

from __future__ import annotations

import http.client
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

if os.environ.get("MLREF_PEERS") != "1":
    pytest.skip(
        "peer servers are checked under nox -s perf (set MLREF_PEERS=1 to run here)",
        allow_module_level=True,
    )
pytest.importorskip("litserve", reason="the peers group is not installed (uv run --group peers)")
pytest.importorskip("bentoml", reason="the peers group is not installed (uv run --group peers)")

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

from peers.launch import PeerProcess  # noqa: E402


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from mlref.load.system import build_small_system
    from mlref.settings import make_settings

    workdir = tmp_path_factory.mktemp("peers-system")
    settings = make_settings(workdir, n_users=60, days=14, fraud_rate=0.05, seed=3)
    return build_small_system(settings, quick=True)


@pytest.fixture(scope="module")
def ports(system: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, int]]:
    from mlref.load.launcher import ServerProcess

    run_dir = tmp_path_factory.mktemp("peers-run")
    mlref = ServerProcess(
        system.settings.workdir, run_dir, model_path=system.model_path, name="mlref"
    )
    peers = {
        kind: PeerProcess(
            kind, Path(system.settings.workdir), Path(system.model_path), run_dir, 16, 2.0
        )
        for kind in ("litserve", "bentoml")
    }
    try:
        mlref.start()
        for peer in peers.values():
            peer.start()
        found = {"mlref": mlref.wait_ready(300).port}
        for kind, peer in peers.items():
            found[kind] = peer.wait_ready(300).port
        yield found
    finally:
        mlref.stop()
        for peer in peers.values():
            peer.stop()


def _transactions(system: Any) -> list[dict[str, Any]]:
    from mlref.data.generate import read_parquet

    events = read_parquet(system.settings.raw_path)
    known = int(events["user_id"].iloc[0])
    when = events["event_timestamp"].max().isoformat()
    base = {"amount": 25.0, "merchant_category": "grocery", "event_timestamp": when}
    return [
        {**base, "transaction_id": "known", "user_id": known},
        {**base, "transaction_id": "unknown-user", "user_id": 10**9},
        {**base, "transaction_id": "unknown-cat", "user_id": known, "merchant_category": "x"},
        {**base, "transaction_id": "large", "user_id": known, "amount": 9_999.0},
    ]


def _post(port: int, body: dict[str, Any]) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/predict", json.dumps(body), {"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_peers_answer_the_same_json_as_mlref(system: Any, ports: dict[str, int]) -> None:
    for txn in _transactions(system):
        status, expected = _post(ports["mlref"], txn)
        assert status == 200, expected
        assert set(expected) >= {"score", "decision", "unknown_user", "unknown_category"}
        for kind in ("litserve", "bentoml"):
            status, answer = _post(ports[kind], txn)
            assert status == 200, (kind, answer)
            assert answer == expected, f"{kind} answered {answer} where mlref answered {expected}"
    # the cases differ where they should: the check compares answers that carry information
    answers = {t["transaction_id"]: _post(ports["mlref"], t)[1] for t in _transactions(system)}
    assert answers["unknown-user"]["unknown_user"] is True
    assert answers["known"]["unknown_user"] is False
    assert answers["unknown-cat"]["unknown_category"] is True
    assert answers["large"]["score"] != answers["known"]["score"]
