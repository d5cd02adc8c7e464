"""No-worse gates: a candidate is compared with the registry's champion before promotion.

The session's registry holds one model (the champion, promoted as a first deploy). The
candidate here is a real retrain of the champion's training config on the same training
rows, registered as ``challenger`` like any candidate; both are loaded back from the
registry and scored with ONNX Runtime on the same latest labelled window (the champion's
test window). Training is deterministic (fixed seed, one thread), so the candidate must be
no worse; a retrain with ANOTHER seed is not used here: on this data it scores about 0.004
AUC below the champion with a CI straddling the 0.005 margin (an honest "inconclusive"),
which says more about seed variance than about the gate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import numpy as np

    from mlgates.fixture import Gates
    from mlref.pipeline import ReferenceSystem
    from mlref.registry import LoadedModel
    from mlref.settings import Settings


@pytest.mark.mlgate("no_worse")
def test_first_deploy_passed_with_a_note(mlgates: Gates, reference_system: ReferenceSystem) -> None:
    """The reference system's promotion ran ``no_worse`` with no champion: a note, not a
    pass. It let the first model through (nothing to compare against) and said so, and it
    earns no ML Test Score point, not even the ones its test's marker would claim."""
    from mlgates import rubric
    from mlgates.fixture import make_record

    decision = reference_system.decision
    results = [g for g in decision.gates if g.name == "no_worse"]
    assert len(results) == 1, f"promotion ran no no_worse gate:\n{decision.explain()}"
    result = mlgates.check(results[0])
    assert result.verdict == "note", result.explain()
    assert result.passed, "a first deploy must not be blocked"
    assert decision.promoted, decision.explain()
    assert result.details.get("first_deploy") is True, result.explain()
    assert "first deploy" in result.message
    claimed = make_record(result, "first-deploy", ("model-6", "infra-4"), {})
    earned = rubric.score([claimed])
    assert sum(earned.points.values()) == 0, f"a first deploy earned {earned.points}"


@pytest.mark.mlgate("no_worse", rubric=("model-6",))
def test_retrained_candidate_no_worse_than_champion(
    mlgates: Gates, ref_settings: Settings, reference_system: ReferenceSystem
) -> None:
    """A retrain of the champion's config, registered as challenger, is not worse than the
    champion by more than the margin (paired bootstrap CI; per merchant-category slices too).

    The challenger alias is removed afterwards, so the shared registry again serves the
    champion alone (a server started later must not score a shadow model)."""
    import pandas as pd

    from mlgates.gates import no_worse
    from mlref.data.columns import CATEGORIES
    from mlref.export import OnnxScorer
    from mlref.promote import latest_labelled_window
    from mlref.registry import CHALLENGER, CHAMPION, Registry
    from mlref.train.fit import feature_matrix
    from mlref.train.pipeline import run_training

    system = reference_system
    config = system.run.result.config
    registry = Registry(ref_settings)
    run = run_training(ref_settings, system.frame, config=config)
    try:
        champion = registry.load(CHAMPION)
        challenger = registry.load(CHALLENGER)
        assert challenger.version == run.version != champion.version
        days = (config.test_end - config.test_start) / pd.Timedelta(days=1)
        window = latest_labelled_window(system.frame, days=days, label_delay=config.label_delay)

        def scores(model: LoadedModel) -> np.ndarray:
            scorer = OnnxScorer(model.onnx_path)
            return scorer.score(feature_matrix(window, model.card["feature_names"]))

        codes = window["merchant_category_code"].astype(int)
        slices = codes.map(lambda c: CATEGORIES[c] if 0 <= c < len(CATEGORIES) else "unknown")
        mlgates.run(
            no_worse,
            window["is_fraud"].to_numpy(),
            scores(champion),
            scores(challenger),
            slices=slices.to_numpy(),
        )
    finally:
        registry.client.delete_registered_model_alias(registry.name, CHALLENGER)
