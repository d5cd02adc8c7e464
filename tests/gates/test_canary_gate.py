"""The canary gate on mlref's served traffic (ML Test Score infra-6: models are tested via a
canary process before they enter production serving).

A rollout runs end to end on a private copy of the session's registry: the canary version is
registered (the champion's own artefacts under a new version: an A/A canary, which must not
be rolled back), ``mlref.canary.control.start`` puts it on half of the users, and the
labelled days no model trained on are replayed through the real server (uvicorn on
127.0.0.1, the routing, both arms' batchers, ONNX Runtime, the prediction log; features
from Feast's offline store point-in-time: ``mlref.canary.replay``). The decision is
``mlgates.canary`` on each arm's business cost per transaction from the log joined with the
labels (with the error-rate and latency guardrails), and acting on it moves the registry's
``champion`` alias and records the evidence. tests/mutations/test_canary.py serves a worse
canary through the same path and shows it rolled back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pathlib import Path

    from mlgates.fixture import Gates
    from mlref.pipeline import ReferenceSystem
    from mlref.settings import Settings

# half the users on the canary; the labelled unseen days, capped: ~9,000 requests per arm
# settle an A/A canary within the margin below (docs/canary.md, "mlref")
SHARE = 0.5
MAX_ROWS = 18_000


def run_rollout(
    system: ReferenceSystem, ref_settings: Settings, workdir: Path, *, defect: str | None = None
) -> tuple[Settings, object, int]:
    """Start a rollout in a private workdir, replay the unseen labelled window through a
    server; returns (settings, the judged status, requests sent). ``defect="inverted"``
    serves a canary that reads the wrong output column (P(legit) taken for P(fraud))."""
    from dataclasses import replace

    from mlref.canary import control
    from mlref.canary.decide import status
    from mlref.canary.outcomes import LABEL_COLUMNS
    from mlref.canary.replay import (
        OfflineFeatureSource,
        copy_registry,
        register_same_artefacts,
        send_batches,
        unseen_window,
        wait_for_rows,
    )
    from mlref.canary.state import DecisionKnobs
    from mlref.pipeline import serving_in_thread
    from mlref.registry import CHAMPION, Registry
    from mlref.serve.app import ServeConfig, create_app
    from mlref.serve.predictor import load_registered_model

    settings = ref_settings.with_(workdir=workdir)
    settings.ensure_dirs()
    copy_registry(ref_settings, settings)
    champion = Registry(settings).load(CHAMPION)
    register_same_artefacts(settings, champion.version)
    # the latency guardrail stays off: a /predict/batch replay gives both arms of a call one
    # latency, and the replay's load is not steady (DecisionKnobs)
    knobs = DecisionKnobs()
    rollout = control.start(settings, SHARE, knobs=knobs)
    window = unseen_window(system.frame, system.events, champion.card, MAX_ROWS)
    features = OfflineFeatureSource(window, tuple(champion.card["feature_names"]))
    app = create_app(
        settings, features=features, config=ServeConfig.from_settings(settings, shadow_alias=None)
    )
    runtime = app.state.runtime
    runtime.router.poll_s = 0.05
    if defect == "inverted":

        class Inverted:
            def __init__(self, inner: object) -> None:
                self.inner = inner

            def predict(self, x: object) -> object:
                return 1.0 - self.inner.predict(x)  # type: ignore[attr-defined]

        def load(r: object) -> object:
            good = load_registered_model(settings, "canary")
            return replace(good, model=Inverted(good.model))

        runtime.canary_loader = load
    with serving_in_thread(app) as url:
        import time

        deadline = time.monotonic() + 30
        while runtime.router.active is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert runtime.router.active is not None, "the server never picked up the rollout"
        statuses = send_batches(url, window)
    assert statuses == [200] * len(window)
    assert features.misses == 1, "replayed transactions without features"  # the warm-up only
    assert wait_for_rows(settings.prediction_log, rollout.rollout_id, len(window)) == len(window)
    labels = window[list(LABEL_COLUMNS)]
    judged = status(settings, labels, as_of=labels["label_timestamp"].max())
    return settings, judged, len(window)


@pytest.mark.mlgate("canary")
def test_canary_rollout_on_served_traffic_promotes_a_canary_no_worse(
    mlgates: Gates,
    reference_system: ReferenceSystem,
    ref_settings: Settings,
    tmp_path: Path,
) -> None:
    from mlref.canary.decide import act
    from mlref.canary.state import read_decisions, read_rollout
    from mlref.registry import CHAMPION, Registry

    settings, judged, sent = run_rollout(reference_system, ref_settings, tmp_path / "mlref")
    arms = judged.arms  # type: ignore[attr-defined]
    # the split and the log: every request in exactly one arm, both arms about half
    assert arms["champion"].requests + arms["canary"].requests == sent
    assert 0.4 < arms["canary"].requests / sent < 0.6
    assert arms["canary"].labelled >= 2000
    mlgates.check(judged.gate)  # type: ignore[attr-defined]
    assert judged.action == "promote", judged.summary()  # type: ignore[attr-defined]
    rollout = judged.rollout  # type: ignore[attr-defined]
    assert act(settings, judged) == "promoted"  # type: ignore[arg-type]
    reg = Registry(settings)
    assert reg.version_of(CHAMPION) == rollout.canary_version
    assert reg.history()[-1] == rollout.champion_version  # mlref rollback can undo it
    ended = read_rollout(settings.workdir)
    assert ended is not None
    assert ended.status == "promoted"
    record = read_decisions(settings.workdir)[-1]
    assert record["event"] == "promoted"
    assert record["gate"]["verdict"] == "pass"
