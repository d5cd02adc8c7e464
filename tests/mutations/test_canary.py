"""Mutation proof of the canary gate (tests/gates/test_canary_gate.py, infra-6).

The defect: the canary's export reads the wrong output column (P(legit) taken for P(fraud):
``1 - p``), a classic slip when an ONNX graph's outputs are re-ordered. Offline parity of a
correctly exported model says nothing about it; only serving it shows it. The rollout runs
exactly as the gate's (private registry copy, A/A version, half of the users, the unseen
labelled days replayed through the real server), with the server loading the defective
canary. It is rolled back by the gate (not the max-loss backstop), looking after every
250 requests, before the canary's extra cost reaches ``max_loss``; acting on it leaves the
champion in place, ends the rollout and tags the version refused.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from mlref.pipeline import ReferenceSystem
    from mlref.settings import Settings

MAX_ROWS = 6_000
LOOK_EVERY = 250  # requests between looks at the decision (a look every few seconds)


class InvertedOutput:
    """The defect: the model's other output column (1 - P(fraud))."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def predict(self, x: np.ndarray) -> np.ndarray:
        return 1.0 - np.asarray(self.inner.predict(x), dtype=np.float64)


def test_a_canary_reading_the_wrong_output_is_rolled_back_before_max_loss(
    reference_system: ReferenceSystem, ref_settings: Settings, tmp_path: Path
) -> None:
    from mlref.canary.decide import act, evaluate
    from mlref.canary.outcomes import ArmOutcomes
    from mlref.canary.replay import copy_registry, register_same_artefacts, run_rollout
    from mlref.canary.state import DecisionKnobs, read_decisions, read_rollout
    from mlref.registry import CHAMPION, Registry
    from mlref.serve.predictor import load_registered_model

    settings = ref_settings.with_(workdir=tmp_path / "mlref")
    settings.ensure_dirs()
    copy_registry(ref_settings, settings)
    champion_version = str(Registry(settings).version_of(CHAMPION))
    register_same_artefacts(settings, champion_version)

    def defective(rollout: Any) -> Any:
        good = load_registered_model(settings, "canary")
        return replace(good, model=InvertedOutput(good.model))

    knobs = DecisionKnobs()  # the defaults `mlref canary start` uses (max_loss 5,000)
    system = reference_system
    drill = run_rollout(
        settings,
        system.frame,
        system.events,
        share=0.5,
        max_rows=MAX_ROWS,
        knobs=knobs,
        canary_loader=defective,
        salt="gate-canary",
    )
    assert drill.statuses == [200] * len(drill.window)
    judged = drill.judged
    assert judged.action == "rollback", judged.summary()
    assert judged.gate.verdict == "fail"
    assert "backstop" not in judged.reason

    # look by look, as a scheduled `mlref canary status --act` would: the first rollback
    # comes from the gate while the extra cost is still under max_loss
    arms = judged.arms
    first = None
    for n in range(LOOK_EVERY, len(drill.window) + LOOK_EVERY, LOOK_EVERY):
        prefix = {
            name: ArmOutcomes(
                a.arm,
                a.versions,
                a.requests,
                a.errors,
                a.costs[: n * a.labelled // len(drill.window)],
                a.latencies_ms,
            )
            for name, a in arms.items()
        }
        look = evaluate(drill.rollout, prefix)
        if look.action != "continue":
            first = look
            break
    assert first is not None
    assert first.action == "rollback"
    assert first.gate.verdict == "fail", first.reason
    assert first.excess_loss < knobs.max_loss, first.summary()

    assert act(settings, judged) == "rolled_back"
    reg = Registry(settings)
    assert reg.version_of(CHAMPION) == champion_version
    ended = read_rollout(settings.workdir)
    assert ended is not None
    assert ended.status == "rolled_back"
    tags = reg.client.get_model_version(reg.name, drill.rollout.canary_version).tags
    assert tags["mlref.promotion"] == "refused"
    assert read_decisions(settings.workdir)[-1]["event"] == "rolled_back"
