"""train -> export -> register in one call (what ``mlref train`` and ``mlref demo`` run)."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlref.train.config import TrainConfig
from mlref.train.fit import TrainResult, train
from mlref.train.provenance import Provenance, record_provenance

if TYPE_CHECKING:
    import pandas as pd

    from mlref.export import ExportResult
    from mlref.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingRun:
    result: TrainResult
    export: ExportResult
    version: str | None  # registered model version (None when not registered)
    out_dir: Path
    # commit, uncommitted spec files and spec hash at training (also MLflow run tags)
    provenance: Provenance | None = None

    def describe(self) -> str:
        """Where every artefact went, for the terminal."""
        lines = [
            self.result.summary(),
            f"  result       {self.out_dir / 'train_result.json'}",
            f"  onnx         {self.export.onnx_path}",
            f"  model card   {self.export.card_path}",
            f"  parity       {self.export.parity.explain().splitlines()[0]}",
        ]
        if self.version is not None:
            lines.append(f"  registered   version {self.version} (alias challenger)")
        return "\n".join(lines)


def run_training(
    settings: Settings,
    frame: pd.DataFrame,
    *,
    config: TrainConfig | None = None,
    register: bool = True,
    spec_repo: Path | None = None,
    **from_dates: Any,
) -> TrainingRun:
    """Train on ``frame`` (``training_frame`` output), export to ONNX with parity, write the
    result JSON, and register the model as ``challenger``.

    ``config`` defaults to ``TrainConfig.from_dates(frame, experiment_name=model name,
    **from_dates)``. The specification's provenance (``mlref.train.provenance``: commit,
    uncommitted spec files, spec hash) is read from ``spec_repo`` (default: the git checkout
    mlref runs from) and written as MLflow run tags of the registered version.
    """
    from mlref.export import export_trained

    if config is None:
        from_dates.setdefault("experiment_name", settings.model_name)
        config = TrainConfig.from_dates(frame, **from_dates)
    elif from_dates:
        raise ValueError(
            f"pass either config or from_dates options, not both: {sorted(from_dates)}"
        )
    # the specification as it is on disk now, before training reads it (model-1)
    provenance = record_provenance(spec_repo)
    if provenance.dirty:
        log.warning(
            "training from uncommitted specification files %s: the model will not match a "
            "commit (spec_in_version_control fails); commit them and retrain",
            ", ".join(provenance.dirty_files),
        )
    result = train(config, frame)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out_dir = settings.artifacts_dir / "models" / f"{stamp}-{config.data_version[:12]}"
    export = export_trained(result, out_dir, model_name=settings.model_name)
    (out_dir / "train_result.json").write_text(result.to_json())
    version = None
    if register:
        from mlref.registry import Registry

        registry = Registry(settings)
        version = registry.register(export, result=result)
        run_id = registry.client.get_model_version(registry.name, version).run_id
        if run_id is None:  # register() always logs a run; a registry without one is broken
            raise RuntimeError(f"model version {version} has no MLflow run to tag")
        for key, value in provenance.tags().items():
            registry.client.set_tag(run_id, key, value)
    run = TrainingRun(
        result=result, export=export, version=version, out_dir=out_dir, provenance=provenance
    )
    log.info("training run written to %s", out_dir)
    return run
