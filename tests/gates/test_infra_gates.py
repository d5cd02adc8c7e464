"""Infrastructure gates of the ML Test Score: training is reproducible (infra-1) and a bad
champion can be rolled back (infra-7), both on the reference system's real parts.

The rollback drill runs in a private workdir (its own MLflow registry on SQLite, its own
prediction log): three versions whose ONNX bytes differ (the champion's recipe with seeds
0, 1 and 2), each promoted in turn, then the champion is rolled back. After each step a
freshly started server (``create_app``: it loads the registry's champion at start-up; mlref
has no hot reload) scores the same transactions on 127.0.0.1, so the drill proves that the
SERVED scores change with a promotion and come back with the rollback, not only that an alias
moved. tests/mutations/test_model.py shows a rollback that leaves the alias in place, and one
that restores the wrong version, failing it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np
    import pandas as pd

    from mlgates.fixture import Gates
    from mlgates.result import GateResult
    from mlref.export import ExportResult
    from mlref.pipeline import ReferenceSystem
    from mlref.registry import Registry
    from mlref.serve.features import RequestBatch
    from mlref.settings import Settings

# transactions the drill's servers score (from the champion's test window)
DRILL_REQUESTS = 200
# The drill rehearses undoing a promotion, not the comparison before it: the seed-1 and
# seed-2 retrains are promoted even if the regression gate could not tell them from the
# champion (a seed change moves AUC by about 0.004 here, the default margin is 0.005).
DRILL_PROMOTION_MARGIN = 0.05


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
    mlgates: Gates, ref_settings: Settings, reference_system: ReferenceSystem, tmp_path: Path
) -> None:
    """Promote three versions that score differently, roll the champion back: the registry's
    champion is the second version again, byte for byte, and a restarted server answers the
    second version's scores again, bit for bit."""
    mlgates.check(rollback_drill(ref_settings, reference_system, tmp_path))


class FrameLookup:
    """A ``FeatureSource`` answering each request with its transaction's row of ``frame``
    (the reference training rows): the drill's servers need no Feast store of their own.
    An id not in the frame (the server's start-up probe) gets missing features."""

    def __init__(self, frame: pd.DataFrame) -> None:
        from mlref.features.definitions import MODEL_FEATURES

        self.frame = frame.set_index("transaction_id")[list(MODEL_FEATURES)]

    def lookup(self, requests: RequestBatch) -> dict[str, np.ndarray]:
        rows = self.frame.reindex(list(requests.transaction_id))
        out = {name: rows[name].to_numpy() for name in rows.columns}
        out["unknown_user"] = rows.isna().all(axis=1).to_numpy()
        return out


def drill_exports(system: ReferenceSystem, workdir: Path) -> list[ExportResult]:
    """The champion's export and two retrains of its recipe with other seeds (row and column
    subsampling draw other rows, so the trees and the ONNX bytes differ)."""
    from mlref.export import export_trained
    from mlref.train.fit import train

    config = system.run.result.config
    exports = [system.run.export]
    for seed in (config.seed + 1, config.seed + 2):
        result = train(config.with_(seed=seed), system.frame)
        exports.append(export_trained(result, workdir / f"seed-{seed}", model_name="drill"))
    return exports


def served_scores(
    settings: Settings, requests: pd.DataFrame, features: FrameLookup
) -> tuple[np.ndarray, set[str]]:
    """Start the scoring server (it loads the registry's champion), POST every request on
    127.0.0.1, stop it; the scores in request order and the model versions that answered."""
    import numpy as np

    from mlref.pipeline import send_traffic, serving_in_thread
    from mlref.serve.app import ServeConfig, create_app

    config = ServeConfig.from_settings(settings, shadow_alias=None)
    app = create_app(settings, features=features, config=config)
    with serving_in_thread(app, ready_timeout_s=60.0) as url:
        answers = send_traffic(url, requests, concurrency=8)
    bad = [a for a in answers if a.get("status") != 200]
    assert not bad, f"{len(bad)} of {len(answers)} drill requests failed: {bad[:3]}"
    return np.array([a["score"] for a in answers]), {str(a["model_version"]) for a in answers}


def rollback_drill(
    ref_settings: Settings,
    system: ReferenceSystem,
    workdir: Path,
    *,
    registry_type: type[Registry] | None = None,
    exports: list[ExportResult] | None = None,
) -> GateResult:
    """The drill, as the ``rollback`` gate's result. ``registry_type`` is the registry the
    drill promotes and rolls back with (the mutation proofs pass a defective one); the
    servers load the champion through mlref's own loader, as production does. ``exports``:
    the three versions (default: ``drill_exports``)."""
    import numpy as np

    from mlgates.result import GateResult
    from mlref.promote import latest_labelled_window, promote
    from mlref.registry import CHAMPION, Registry

    settings = ref_settings.with_(workdir=workdir / "mlref", model_name="mlref-rollback-drill")
    settings.ensure_dirs()
    registry = (registry_type or Registry)(settings)
    exports = exports or drill_exports(system, workdir)
    config = system.run.result.config
    window = latest_labelled_window(
        system.frame,
        days=(config.test_end - config.test_start) / np.timedelta64(1, "D"),
        label_delay=config.label_delay,
    )
    picked = window.sample(n=min(DRILL_REQUESTS, len(window)), random_state=0)
    raw = system.events.set_index("transaction_id").loc[picked["transaction_id"]].reset_index()
    features = FrameLookup(system.frame)

    versions: list[str] = []
    served: dict[str, np.ndarray] = {}
    answered_by: dict[str, set[str]] = {}
    for export in exports:
        versions.append(registry.register(export))
        decision = promote(settings, system.frame, registry=registry, margin=DRILL_PROMOTION_MARGIN)
        assert decision.promoted, decision.explain()
        served[versions[-1]], answered_by[versions[-1]] = served_scores(settings, raw, features)
    first, second, third = versions
    rolled = registry.rollback()
    after, answered_after = served_scores(settings, raw, features)
    restored = Registry(settings).load(CHAMPION)

    payloads = [e.onnx_path.read_bytes() for e in exports]
    differing = int((served[third] != served[second]).sum())
    details: dict[str, Any] = {
        "versions": versions,
        "rollback_returned": list(rolled),
        "champion_after": restored.version,
        "history_after": registry.history(),
        "served_by_after": sorted(answered_after),
        "requests": len(raw),
        "rows_changed_by_promotion": differing,
        "rows_restored": int((after == served[second]).sum()),
    }
    common = dict(name="rollback", measured=None, threshold=None, rubric=("infra-7",))
    if len({bytes(p) for p in payloads}) < len(payloads) or differing == 0:
        return GateResult(
            verdict="inconclusive",
            message=(
                f"the drill's versions {versions} cannot be told apart (ONNX bytes identical: "
                f"{len({bytes(p) for p in payloads}) < len(payloads)}; rows scored differently "
                f"by versions {second} and {third}: {differing} of {len(raw)}), so a rollback "
                "would look the same whether it worked or not"
            ),
            hint="register drill versions trained with other seeds or windows",
            details=details,
            **common,
        )
    problems = [
        f"after promoting version {v} the server answered as {sorted(answered_by[v])}"
        for v in versions
        if answered_by[v] != {v}
    ]
    if tuple(rolled) != (third, second):
        problems.append(f"rollback returned {rolled}, expected {(third, second)}")
    if restored.version != second:
        problems.append(f"the registry's champion is version {restored.version}, not {second}")
    elif restored.onnx_path.read_bytes() != payloads[1]:
        problems.append(f"the champion's ONNX file is not the bytes version {second} promoted")
    if answered_after != {second}:
        problems.append(f"the restarted server answered as version(s) {sorted(answered_after)}")
    if not np.array_equal(after, served[second]):
        problems.append(
            f"the restarted server's scores equal version {second}'s on "
            f"{details['rows_restored']} of {len(raw)} transactions (version {third}'s on "
            f"{int((after == served[third]).sum())})"
        )
    if problems:
        return GateResult(
            verdict="fail",
            message=f"rolling the champion back from {third} to {second} failed: "
            + "; ".join(problems),
            hint="check Registry.rollback, the champion history tag and what the server "
            "loads at start-up",
            details=details,
            **common,
        )
    return GateResult(
        verdict="pass",
        message=(
            f"champion rolled back from version {third} to {second}: the registry serves "
            f"version {second}'s bytes and a restarted server answers its scores again on all "
            f"{len(raw)} drill transactions (the promotion of {third} had changed "
            f"{differing} of them); version {first} stayed in the history"
        ),
        hint="",
        details=details,
        **common,
    )
