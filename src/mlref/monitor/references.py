"""Each model version's monitoring reference, read from the registry.

Training freezes a version's feature bins and its test-window scores next to its ONNX file
(:mod:`mlref.export`); monitoring judges that version's logged predictions against them
(:func:`mlref.monitor.drift.monitor_versions`). A version the registry does not hold, or
one registered without a reference, is left out: its rows are reported as not judged.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mlref.monitor.drift import ModelReference

if TYPE_CHECKING:
    from mlref.settings import Settings

logger = logging.getLogger(__name__)


def registry_references(settings: Settings, versions: Sequence[str]) -> dict[str, ModelReference]:
    """``{version: ModelReference}`` for the ``versions`` the registry holds a reference of."""
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    from mlref.export import BINS_FILE, REFERENCE_SCORES_FILE

    # the registry's own reading of an artifact URI as a local folder (one implementation)
    from mlref.registry import Registry, _local_path

    registry = Registry(settings)
    found: dict[str, ModelReference] = {}
    for version in versions:
        try:
            source = registry.client.get_model_version_download_uri(registry.name, version)
            folder = _local_path(source)
            if folder is not None and folder.is_dir():
                # a local store is read in place, as Registry.load reads it
                bins, scores = folder / BINS_FILE, folder / REFERENCE_SCORES_FILE
                if not (bins.is_file() and scores.is_file()):
                    raise FileNotFoundError(
                        f"{folder} holds no {BINS_FILE}/{REFERENCE_SCORES_FILE}"
                    )
            else:
                # a remote store: the folder Registry.load downloads to
                target = settings.artifacts_dir / "registry" / f"v{version}"
                target.mkdir(parents=True, exist_ok=True)
                bins, scores = (
                    Path(
                        mlflow.artifacts.download_artifacts(
                            artifact_uri=f"{source}/{name}",
                            dst_path=str(target),
                            tracking_uri=registry.uri,
                        )
                    )
                    for name in (BINS_FILE, REFERENCE_SCORES_FILE)
                )
        except (MlflowException, OSError) as exc:
            logger.info("model version %s has no monitoring reference: %s", version, exc)
            continue
        found[version] = ModelReference(bins, scores)
    return found
