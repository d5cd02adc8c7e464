"""Canary routing in the server (mlref.serve.routing): sticky per user, the canary's answer
acts, every row records arm / model_version / rollout_id, and changing or ending a rollout
under concurrent requests drops or misroutes none of them. Real ONNX models, the app's own
batchers and prediction log; the feature source is the serving tests' in-memory table."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from mlref.canary.state import new_rollout, write_rollout
from mlref.serve.app import create_app
from mlref.serve.predlog import read_predictions
from mlref.serve.routing import in_canary

pytestmark = pytest.mark.anyio


def _app(settings: Any, champion: Any, challenger: Any, features: Any, kit: Any) -> Any:
    app = create_app(settings, model=champion, features=features, config=kit.serve_config())
    runtime = app.state.runtime
    runtime.canary_loader = lambda rollout: challenger
    runtime.router.poll_s = 0.02
    return app


async def test_rollout_file_routes_users_stickily_and_the_canary_acts(
    settings: Any, champion: Any, challenger: Any, features: Any, kit: Any
) -> None:
    app = _app(settings, champion, challenger, features, kit)
    runtime = app.state.runtime
    rollout = new_rollout(challenger.version, champion.version, 0.5)
    async with kit.running_app(app) as client:
        first = await client.post("/predict", json=kit.txn(0))
        assert first.json()["model_version"] == champion.version  # no rollout: champion
        write_rollout(settings.workdir, rollout)
        await kit.wait_for(lambda: runtime.router.active is not None, what="rollout routed")
        seen: dict[int, set[str]] = {}
        for i in range(1, 121):
            body = kit.txn(i)
            data = (await client.post("/predict", json=body)).json()
            seen.setdefault(body["user_id"], set()).add(data["model_version"])
            # the arm's own model answers: its score against its own threshold
            model = challenger if data["model_version"] == challenger.version else champion
            assert data["threshold"] == model.threshold
        write_rollout(settings.workdir, rollout.ended("stopped"))
        await kit.wait_for(lambda: runtime.router.active is None, what="rollout ended")
        last = await client.post("/predict", json=kit.txn(999))
        assert last.json()["model_version"] == champion.version
    for user, versions in seen.items():
        expected = challenger.version if in_canary(user, rollout.salt, 0.5) else champion.version
        assert versions == {expected}, f"user {user} saw {versions}"
    assert len({v for vs in seen.values() for v in vs}) == 2  # both arms served somebody
    rows = read_predictions(settings.prediction_log)
    assert len(rows) == 122
    assert rows[0]["arm"] is None
    assert rows[0]["rollout_id"] is None
    assert rows[-1]["arm"] is None
    routed = rows[1:-1]
    assert {r["rollout_id"] for r in routed} == {rollout.rollout_id}
    for r in routed:
        assert (r["arm"] == "canary") == (r["model_version"] == challenger.version)
        assert (r["arm"] == "canary") == in_canary(r["user_id"], rollout.salt, 0.5)


async def test_changing_and_ending_a_rollout_under_load_loses_and_misroutes_nothing(
    settings: Any, champion: Any, challenger: Any, features: Any, kit: Any
) -> None:
    app = _app(settings, champion, challenger, features, kit)
    runtime = app.state.runtime
    a = new_rollout(challenger.version, champion.version, 0.3)
    b = new_rollout(challenger.version, champion.version, 0.5)
    salts = {a.rollout_id: (a.salt, a.share), b.rollout_id: (b.salt, b.share)}
    n_single, n_batches, batch = 240, 30, 4
    statuses: list[int] = []
    limit = asyncio.Semaphore(12)  # in flight at once: under the test config's max_queue
    async with kit.running_app(app) as client:

        async def single(i: int) -> None:
            async with limit:
                r = await client.post("/predict", json=kit.txn(i))
            statuses.append(r.status_code)

        async def many(j: int) -> None:
            bodies = [kit.txn(10_000 + j * batch + k) for k in range(batch)]
            async with limit:
                r = await client.post("/predict/batch", json={"transactions": bodies})
            statuses.extend([r.status_code] * batch)

        async def flip() -> None:
            # each change once some requests have been answered, while others are in flight
            # (paced by answers, not by the clock: a loaded machine would skip a rollout)
            changes = (a, b, b.ended("rolled_back"), a, None)
            for k, rollout in enumerate(changes, start=1):
                await kit.wait_for(lambda k=k: len(statuses) >= 60 * k, 60, "answers")
                await runtime.router.apply(rollout, runtime._build_canary)

        await asyncio.gather(
            flip(), *(single(i) for i in range(n_single)), *(many(j) for j in range(n_batches))
        )
    total = n_single + n_batches * batch
    assert statuses == [200] * total
    rows = read_predictions(Path(settings.prediction_log))
    assert len(rows) == total, "a request accepted during a rollout change has no log row"
    assert len({r["transaction_id"] for r in rows}) == total
    by_rollout = {r["rollout_id"] for r in rows}
    assert {a.rollout_id, b.rollout_id} <= by_rollout  # the changes happened under load
    for r in rows:
        if r["rollout_id"] is None:
            assert r["arm"] is None
            assert r["model_version"] == champion.version
            continue
        salt, share = salts[r["rollout_id"]]
        arm = "canary" if in_canary(r["user_id"], salt, share) else "champion"
        assert r["arm"] == arm, r
        expected = challenger.version if arm == "canary" else champion.version
        assert r["model_version"] == expected, r
