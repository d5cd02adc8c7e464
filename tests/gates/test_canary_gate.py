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


def private_registry(ref_settings: Settings, workdir: Path) -> Settings:
    """A workdir whose registry is a copy of the session's, with an A/A challenger (the
    champion's artefacts as a new version): aliases move there, never in the session's."""
    from mlref.canary.replay import copy_registry, register_same_artefacts
    from mlref.registry import CHAMPION, Registry

    settings = ref_settings.with_(workdir=workdir)
    settings.ensure_dirs()
    copy_registry(ref_settings, settings)
    register_same_artefacts(settings, str(Registry(settings).version_of(CHAMPION)))
    return settings


@pytest.mark.mlgate("canary")
def test_canary_rollout_on_served_traffic_promotes_a_canary_no_worse(
    mlgates: Gates,
    reference_system: ReferenceSystem,
    ref_settings: Settings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from mlref.canary.decide import act
    from mlref.canary.outcomes import LABEL_COLUMNS
    from mlref.canary.replay import run_rollout
    from mlref.canary.state import DecisionKnobs, read_decisions, read_rollout
    from mlref.cli import main
    from mlref.registry import CHAMPION, Registry

    settings = private_registry(ref_settings, tmp_path / "mlref")
    system = reference_system
    # the latency guardrail stays off: a /predict/batch replay gives both arms of a call one
    # latency, and the replay's load is not steady (DecisionKnobs)
    drill = run_rollout(
        settings,
        system.frame,
        system.events,
        share=SHARE,
        max_rows=MAX_ROWS,
        knobs=DecisionKnobs(),
        salt="gate-canary",  # a reproducible split
    )
    assert drill.statuses == [200] * len(drill.window)
    assert drill.feature_misses == 1  # the server's warm-up probe only
    judged, sent = drill.judged, len(drill.window)
    arms = judged.arms
    # the split and the log: every request in exactly one arm, both arms about half
    assert arms["champion"].requests + arms["canary"].requests == sent
    assert 0.4 < arms["canary"].requests / sent < 0.6
    assert arms["canary"].labelled >= 2000
    mlgates.check(judged.gate)
    assert judged.action == "promote", judged.summary()
    rollout = judged.rollout
    # carried out as a scheduled job would: `mlref canary status --act` on the same log and labels
    labels_path = tmp_path / "labels.parquet"
    drill.window[list(LABEL_COLUMNS)].to_parquet(labels_path)
    as_of = drill.window["label_timestamp"].max().isoformat()
    common = ["--workdir", str(settings.workdir), "--labels", str(labels_path), "--as-of", as_of]
    assert main(["canary", "status", *common, "--act"]) == 0
    out = capsys.readouterr().out
    assert "decision: PROMOTE" in out
    assert f"rollout {rollout.rollout_id}: promoted" in out
    assert act(settings, judged) == "promoted"  # a second look at an ended rollout: no-op
    reg = Registry(settings)
    assert reg.version_of(CHAMPION) == rollout.canary_version
    assert reg.history()[-1] == rollout.champion_version  # mlref rollback can undo it
    ended = read_rollout(settings.workdir)
    assert ended is not None
    assert ended.status == "promoted"
    record = read_decisions(settings.workdir)[-1]
    assert record["event"] == "promoted"
    assert record["gate"]["verdict"] == "pass"
