"""Before the server starts: is there a system in the workdir to serve?

A server that can never become ready must not pretend it might (answer 503 for ever), and a
directory that holds no system must stay as it was: opening MLflow or the prediction log
there would create ``mlflow.db`` and ``predictions.sqlite``. So the artefacts start-up needs
are checked here by looking only (``Path.exists`` and a read-only SQLite query), and a missing
one is a single line naming the command that makes it.

What is checked: the model (the ONNX file and its card when ``model_path`` is set; else the
local registry's database and its ``model_alias``) and the Feast feature repository
(``feature_store.yaml``, and the SQLite online store when that is the configured store). A
remote registry (``tracking_uri`` set) or Redis cannot be looked at without connecting: those
are left to start-up, which reports them on ``/readyz``.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlref.serve.config import ServeConfig
    from mlref.settings import Settings


class NothingToServe(FileNotFoundError):
    """An artefact the server needs is missing; the message names the command that makes it.

    A ``FileNotFoundError`` so the CLI answers it with one line and exit status 2."""


def check_servable(settings: Settings, config: ServeConfig) -> None:
    """Raise ``NothingToServe`` when start-up could never load what it needs."""
    where = _shown(settings.workdir)
    make = "uv run mlref demo" + _workdir_option(settings.workdir)
    if config.model_path is not None:
        card = config.model_card_path or config.model_path.with_suffix(".card.json")
        for path in (config.model_path, card):
            if not path.exists():
                raise NothingToServe(f"no model file {_shown(path)}: check model_path")
    elif settings.tracking_uri is None:
        database = settings.mlflow_dir / "mlflow.db"
        if not database.exists():
            raise NothingToServe(f"no model in {where}: run {make}")
        if not _has_alias(database, settings.model_name, config.model_alias):
            raise NothingToServe(
                f"no {config.model_alias} model in {where}: run {make} (or uv run mlref train "
                f"and uv run mlref promote{_workdir_option(settings.workdir)})"
            )
    store = settings.feature_repo / "feature_store.yaml"
    online = settings.feature_repo / "data" / "online_store.db"
    if not store.exists() or (settings.online_store == "sqlite" and not online.exists()):
        features = "uv run mlref features" + _workdir_option(settings.workdir)
        raise NothingToServe(f"no feature store in {where}: run {make} (or {features})")


def _has_alias(database: Path, model_name: str, alias: str) -> bool:
    """Whether MLflow's registry database gives ``model_name`` the alias ``alias``; read-only
    (``mode=ro`` never creates the file or a journal). True when the schema is not the one
    expected (another MLflow version): then start-up decides."""
    try:
        with sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True) as conn:
            row = conn.execute(
                "SELECT 1 FROM registered_model_aliases WHERE name = ? AND alias = ? LIMIT 1",
                (model_name, alias),
            ).fetchone()
    except sqlite3.Error:
        return True
    return row is not None


def _shown(path: Path) -> str:
    """``path`` as the user would type it: relative to the current directory when inside it."""
    try:
        return os.path.relpath(path) if path.is_relative_to(Path.cwd()) else str(path)
    except ValueError:
        return str(path)


def _workdir_option(workdir: Path) -> str:
    """`` --workdir X`` unless ``workdir`` is where the commands look by default."""
    default = Path(os.environ.get("MLREF_HOME") or ".mlref").resolve()
    return "" if workdir == default else f" --workdir {_shown(workdir)}"
