"""Infrastructure gates of the ML Test Score: training is reproducible (infra-1) and a bad
champion can be rolled back (infra-7), both on the reference system's real parts."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from mlgates.fixture import Gates
    from mlref.pipeline import ReferenceSystem
    from mlref.settings import Settings


@pytest.mark.mlgate("model_parity", rubric=("infra-1",))
def test_training_is_reproducible(mlgates: Gates, reference_system: ReferenceSystem) -> None:
    """The champion's config trained again on the same Feast training rows gives the same
    scores on the whole test window, to the last bit (seeded, one thread)."""
    from mlgates.gates import model_parity
    from mlref.train.fit import train

    first = reference_system.run.result
    again = train(first.config, reference_system.frame)
    window = first.split.test
    mlgates.run(model_parity, first.scores(window), again.scores(window), atol=0.0)


@pytest.mark.mlgate("rollback", rubric=("infra-7",))
def test_a_champion_can_be_rolled_back(
    mlgates: Gates, ref_settings: Settings, reference_system: ReferenceSystem
) -> None:
    """A rollback drill on its own registered model (the shared champion is not touched):
    promote a first version, promote a second, roll back, and the version served as
    champion is the first again, byte for byte."""
    from mlgates.result import GateResult
    from mlref.promote import promote
    from mlref.registry import CHAMPION, Registry

    registry = Registry(ref_settings.with_(model_name="mlref-rollback-drill"))
    export = reference_system.run.export
    first = registry.register(export)
    assert promote(registry.settings, reference_system.frame, registry=registry).promoted
    second = registry.register(export)
    promoted = promote(registry.settings, reference_system.frame, registry=registry)
    assert promoted.promoted, promoted.explain()
    assert registry.version_of(CHAMPION) == second

    rolled = registry.rollback()
    restored = registry.load(CHAMPION)
    ok = rolled == (second, first) and restored.version == first
    same_bytes = restored.onnx_path.read_bytes() == export.onnx_path.read_bytes()
    mlgates.check(
        GateResult(
            name="rollback",
            verdict="pass" if ok and same_bytes else "fail",
            measured=None,
            threshold=None,
            message=(
                f"champion rolled back from version {second} to {first}; the restored model "
                "is the one first promoted, byte for byte"
                if ok and same_bytes
                else f"rollback returned {rolled}, champion is now {restored.version} "
                f"(expected {first}); bytes identical: {same_bytes}"
            ),
            hint="check Registry.rollback and the champion history tag",
            rubric=("infra-7",),
        )
    )
