"""The model registry: MLflow with a SQLite backend and a local artifact folder by default.

Every registered candidate gets the alias ``challenger``; ``champion`` moves only through
``set_champion(decision)`` with a passing ``PromotionDecision`` (``mlref.decision``, made by
``mlref.promote``), and back through ``rollback()``. The champion history is a JSON list in the registered-model tag
``mlref.champion_history``; each version is tagged when it is promoted, refused or rolled back.

MLflow is imported inside the methods (``import mlflow`` costs seconds) and the client is
built with explicit tracking and registry URIs: no global MLflow state is touched, and nothing
is written outside ``settings.mlflow_dir`` (or the server ``settings.tracking_uri`` points at).

Each version's artifact folder ``model/`` is an MLflow ONNX model (``MLmodel`` with a tensor
signature, CPU execution provider, explicit requirements so logging does not spend seconds
inferring them) plus the model card and the native XGBoost model used to re-check parity.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlparse
from urllib.request import url2pathname

from mlref.export import (
    BINS_FILE,
    CARD_SUFFIX,
    NATIVE_SUFFIX,
    OUTPUT_NAME,
    REFERENCE_SCORES_FILE,
    _sha256,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from mlref.decision import PromotionDecision
    from mlref.export import ExportResult
    from mlref.settings import Settings
    from mlref.train.fit import TrainResult

log = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
ALIASES = (CHAMPION, CHALLENGER)
HISTORY_TAG = "mlref.champion_history"
MODEL_DIR = "model"
ONNX_FILE = "model.onnx"
CARD_FILE = "model_card.json"
NATIVE_FILE = "model.xgb.json"


class RegistryError(RuntimeError):
    """The registry cannot do what was asked (missing alias, nothing to roll back, ...)."""


class RegistryMissing(FileNotFoundError):
    """A file of a local registry is gone (its database, a version's model files); raised
    instead of re-creating it when the registry is opened with ``create=False``."""


class LoadedModel(NamedTuple):
    onnx_path: Path
    card: dict[str, Any]
    version: str

    @property
    def native_path(self) -> Path:
        return self.onnx_path.with_name(NATIVE_FILE)

    @property
    def bins_path(self) -> Path:
        """PSI bins frozen on the training window (what monitoring bins production by)."""
        return self.onnx_path.with_name(BINS_FILE)

    @property
    def reference_scores_path(self) -> Path:
        """The test window's scores: the reference for prediction drift."""
        return self.onnx_path.with_name(REFERENCE_SCORES_FILE)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _local_path(uri: str) -> Path | None:
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(url2pathname(parsed.path))
    if parsed.scheme == "" and uri.startswith("/"):
        return Path(uri)
    return None


class Registry:
    """Register, promote, roll back and load models of ``settings.model_name``."""

    def __init__(
        self, settings: Settings, *, client: MlflowClient | None = None, create: bool = True
    ) -> None:
        """``create=False`` (serving): never create a registry. MLflow re-creates a missing
        SQLite database empty and then reports "no 'champion' alias", which hides that the
        file is gone; here a missing one is named instead (``RegistryMissing``)."""
        self.settings = settings
        self.name = settings.model_name
        self._client = client
        self._create = create

    @property
    def uri(self) -> str:
        return self.settings.registry_uri

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            from mlflow import MlflowClient

            if self.settings.tracking_uri is None:
                database = self.settings.mlflow_dir / "mlflow.db"
                if not self._create and not database.is_file():
                    raise RegistryMissing(
                        f"the MLflow registry database {database} is missing; restore it or "
                        "rebuild the system (`mlref demo`)"
                    )
                self.settings.mlflow_dir.mkdir(parents=True, exist_ok=True)
            self._client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
        return self._client

    # ------------------------------------------------------------------ experiments / runs
    def _experiment_id(self, name: str) -> str:
        experiment = self.client.get_experiment_by_name(name)
        if experiment is not None:
            return str(experiment.experiment_id)
        location = None
        if self.settings.tracking_uri is None:
            # without it a SQLite store puts artifacts under ./mlruns of the current directory
            location = (self.settings.mlflow_dir / "artifacts" / name).resolve().as_uri()
        return str(self.client.create_experiment(name, artifact_location=location))

    def register(
        self,
        export: ExportResult,
        *,
        result: TrainResult | None = None,
        run_name: str | None = None,
    ) -> str:
        """Log the run (config, data version, metrics, model card, ONNX model) and register a
        new version with the alias ``challenger``. Returns the version (a string)."""
        from mlflow.entities import Metric, Param, RunTag

        card = export.card
        config = card.get("training_config", {})
        experiment = config.get("experiment_name") or self.name
        data_version = str(card.get("data_version", "unknown"))
        client = self.client
        experiment_id = self._experiment_id(experiment)
        run = client.create_run(
            experiment_id,
            run_name=run_name,
            tags={"mlref.model_name": self.name, "mlref.data_version": data_version},
        )
        run_id = run.info.run_id
        try:
            params = result.config.mlflow_params() if result is not None else _flat(config)
            now_ms = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
            metrics = [
                Metric(f"{window}.{key}", float(value), now_ms, 0)
                for window, values in card.get("metrics", {}).items()
                for key, value in values.items()
                if isinstance(value, (int, float)) and value is not None
            ]
            metrics.append(
                Metric("decision_threshold", float(card["decision"]["threshold"]), now_ms, 0)
            )
            client.log_batch(
                run_id,
                metrics=metrics,
                params=[Param(k, v[:6000]) for k, v in sorted(params.items())],
                tags=[RunTag("mlref.onnx_sha256", str(card.get("onnx_sha256", "")))],
            )
            # staged under the workdir: nothing is written outside the configured folders
            self.settings.artifacts_dir.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(
                prefix=".register-", dir=self.settings.artifacts_dir
            ) as tmp:
                model_dir = Path(tmp) / MODEL_DIR
                self._save_mlflow_model(export, model_dir)
                client.log_artifacts(run_id, str(model_dir), MODEL_DIR)
            if result is not None:
                client.log_text(run_id, result.to_json(), "train_result.json")
            client.set_terminated(run_id, "FINISHED")
        except BaseException:
            client.set_terminated(run_id, "FAILED")
            raise
        from mlflow.exceptions import MlflowException

        try:
            client.get_registered_model(self.name)
        except MlflowException:
            client.create_registered_model(
                self.name, description="mlref fraud model (ONNX); aliases champion/challenger"
            )
        version = client.create_model_version(
            self.name,
            source=f"{run.info.artifact_uri}/{MODEL_DIR}",
            run_id=run_id,
            tags={
                "mlref.data_version": data_version,
                "mlref.threshold": str(card["decision"]["threshold"]),
                "mlref.onnx_sha256": str(card.get("onnx_sha256", "")),
                "mlref.registered_at": _now(),
            },
            description=f"data {data_version[:12]}, seed {card.get('seed')}",
        )
        client.set_registered_model_alias(self.name, CHALLENGER, version.version)
        log.info(
            "registered %s version %s as %s (run %s)",
            self.name,
            version.version,
            CHALLENGER,
            run_id,
        )
        return str(version.version)

    def _save_mlflow_model(self, export: ExportResult, model_dir: Path) -> None:
        import mlflow.onnx
        import numpy as np
        import onnx
        from mlflow.models import ModelSignature
        from mlflow.types import Schema, TensorSpec

        n = len(export.card["feature_names"])
        signature = ModelSignature(
            inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, n), "features")]),
            outputs=Schema([TensorSpec(np.dtype(np.float32), (-1,), OUTPUT_NAME)]),
        )
        import platform
        from importlib.metadata import version

        mlflow.onnx.save_model(
            onnx.load(str(export.onnx_path)),
            str(model_dir),
            signature=signature,
            # the whole environment, not pip_requirements: from those MLflow builds a conda env
            # that pins the running pip, and warns "Failed to resolve installed pip version" on
            # every registration where pip is not installed (uv's environments)
            conda_env={
                "name": "mlref-model",
                "channels": ["conda-forge"],
                "dependencies": [
                    f"python={platform.python_version()}",
                    "pip",
                    {
                        "pip": [
                            f"mlflow=={version('mlflow')}",
                            f"onnx=={version('onnx')}",
                            f"onnxruntime=={version('onnxruntime')}",
                        ]
                    },
                ],
            },
            onnx_execution_providers=["CPUExecutionProvider"],
            save_as_external_data=False,
        )
        # the card's hash is of the exported bytes: keep exactly those, not a re-serialisation
        shutil.copyfile(export.onnx_path, model_dir / ONNX_FILE)
        shutil.copyfile(export.card_path, model_dir / CARD_FILE)
        shutil.copyfile(export.native_path, model_dir / NATIVE_FILE)
        for extra in (BINS_FILE, REFERENCE_SCORES_FILE):
            if (export.onnx_path.parent / extra).exists():
                shutil.copyfile(export.onnx_path.parent / extra, model_dir / extra)

    # ------------------------------------------------------------------ aliases
    def version_of(self, alias: str) -> str | None:
        """The version behind ``alias``, or None when the alias (or the model) does not exist."""
        from mlflow.exceptions import MlflowException

        try:
            return str(self.client.get_model_version_by_alias(self.name, alias).version)
        except MlflowException:
            return None

    def history(self) -> list[str]:
        """Previous champions, oldest first (the last one is what ``rollback`` restores)."""
        from mlflow.exceptions import MlflowException

        try:
            tags = self.client.get_registered_model(self.name).tags
        except MlflowException:
            return []
        return [str(v) for v in json.loads(tags.get(HISTORY_TAG, "[]"))]

    def _write_history(self, history: list[str]) -> None:
        self.client.set_registered_model_tag(self.name, HISTORY_TAG, json.dumps(history))

    def set_champion(self, decision: PromotionDecision) -> None:
        """Move ``champion`` to the decision's challenger. Only a passing decision can."""
        if not decision.promoted:
            raise RegistryError(
                f"version {decision.challenger_version} was not promoted by the gates; champion "
                f"stays {decision.champion_version}:\n{decision.explain()}"
            )
        version = decision.challenger_version
        current = self.version_of(CHAMPION)
        if current != decision.champion_version:
            raise RegistryError(
                f"the champion changed while deciding (was {decision.champion_version}, now "
                f"{current}); run the promotion again"
            )
        client = self.client
        history = self.history()
        if current is not None and current != version:
            history.append(current)
            client.set_model_version_tag(self.name, current, "mlref.demoted_at", _now())
        client.set_registered_model_alias(self.name, CHAMPION, version)
        self._write_history(history)
        client.set_model_version_tag(self.name, version, "mlref.promoted_at", _now())
        client.set_model_version_tag(self.name, version, "mlref.promotion", "promoted")
        if self.version_of(CHALLENGER) == version:
            client.delete_registered_model_alias(self.name, CHALLENGER)
        log.info("champion -> version %s (was %s)", version, current)

    def mark_refused(self, decision: PromotionDecision) -> None:
        self.client.set_model_version_tag(
            self.name, decision.challenger_version, "mlref.promotion", "refused"
        )

    def rollback(self) -> tuple[str, str]:
        """Move ``champion`` back to the previous champion; returns ``(from, to)``.

        The version rolled back from loses the ``challenger`` alias too (if it has it), so it
        is not promoted again by accident.
        """
        current = self.version_of(CHAMPION)
        if current is None:
            raise RegistryError(f"no champion for model {self.name!r}: nothing to roll back")
        history = self.history()
        if not history:
            raise RegistryError(
                f"champion {self.name!r} version {current} has no previous champion: nothing to "
                "roll back to"
            )
        previous = history.pop()
        client = self.client
        client.set_registered_model_alias(self.name, CHAMPION, previous)
        self._write_history(history)
        client.set_model_version_tag(self.name, current, "mlref.rolled_back_at", _now())
        client.set_model_version_tag(self.name, previous, "mlref.restored_at", _now())
        if self.version_of(CHALLENGER) == current:
            client.delete_registered_model_alias(self.name, CHALLENGER)
        log.info("rolled back champion from version %s to %s", current, previous)
        return current, previous

    # ------------------------------------------------------------------ loading
    def load(self, alias: str) -> LoadedModel:
        """``(onnx_path, model_card, version)`` behind ``alias``; the ONNX file's hash is
        checked against the card. Local stores are read in place, remote ones downloaded under
        ``settings.artifacts_dir/registry``."""
        version = self.version_of(alias)
        if version is None:
            hint = (
                "register a model first (mlref train)"
                if alias == CHALLENGER
                else ("promote a challenger first (mlref promote)")
            )
            raise RegistryError(f"model {self.name!r} has no {alias!r} alias: {hint}")
        source = self.client.get_model_version_download_uri(self.name, version)
        model_dir = _local_path(source)
        if model_dir is not None and not model_dir.exists() and not self._create:
            # a local artifact store has nothing to download from: say what is gone instead
            # of making an empty download directory
            raise RegistryMissing(
                f"version {version}: its model files at {model_dir} are missing; restore them "
                "or register the model again"
            )
        if model_dir is None or not model_dir.exists():
            import mlflow.artifacts

            target = self.settings.artifacts_dir / "registry" / f"v{version}"
            target.mkdir(parents=True, exist_ok=True)
            model_dir = Path(
                mlflow.artifacts.download_artifacts(
                    artifact_uri=source, dst_path=str(target), tracking_uri=self.uri
                )
            )
        onnx_path = model_dir / ONNX_FILE
        card = json.loads((model_dir / CARD_FILE).read_text())
        expected = card.get("onnx_sha256")
        if expected and _sha256(onnx_path) != expected:
            raise RegistryError(
                f"version {version}: {onnx_path} does not match the hash in its model card; the "
                "artifact was changed after export"
            )
        return LoadedModel(onnx_path=onnx_path, card=card, version=version)


def _flat(mapping: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flat(value, f"{name}."))
        elif isinstance(value, list):
            out[name] = ",".join(map(str, value))
        else:
            out[name] = str(value)
    return out


__all__ = [
    "ALIASES",
    "CARD_SUFFIX",
    "CHALLENGER",
    "CHAMPION",
    "NATIVE_SUFFIX",
    "LoadedModel",
    "Registry",
    "RegistryError",
]
