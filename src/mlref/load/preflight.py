"""What a load run needs in the workdir before it starts anything: a built system.

Checked before a file is written or a server started, so a load run on an empty or missing
workdir ends in one line naming the command that builds the system (``no model in .mlref: run
uv run mlref demo``) and leaves the directory as it was. Only the presence of the files is
checked here; what is in them (a champion alias, a readable model) is the server's to judge
at start-up, and the load run passes its one-line reason through
(``mlref.load.launcher.ServerStartError``) rather than guessing it here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlref.settings import Settings

#: the command that builds every artefact a load run needs (data, feature store, registry)
BUILD_COMMAND = "uv run mlref demo"
_SQLITE = "sqlite:///"


class MissingArtefactError(RuntimeError):
    """A file the load run needs is absent; the message is one line naming the command that
    makes it."""


def shown(path: str | os.PathLike[str]) -> str:
    """``path`` as a user would type it: relative to the current directory when below it."""
    absolute = Path(path).resolve()
    try:
        return str(absolute.relative_to(Path.cwd()))
    except ValueError:
        return str(absolute)


def check_system(settings: Settings, model_path: str | os.PathLike[str] | None = None) -> None:
    """Raise ``MissingArtefactError`` unless ``settings.workdir`` holds what the server loads:
    the model (``model_path``, else the local MLflow registry; a remote registry is the
    server's to check) and the Feast repo. Reads only; creates nothing."""
    where = shown(settings.workdir)
    if model_path is not None:
        if not Path(model_path).is_file():
            raise MissingArtefactError(
                f"no model at {shown(model_path)}: --model-path names an ONNX file that does "
                "not exist"
            )
    elif not _local_registry_exists(settings.registry_uri):
        raise MissingArtefactError(f"no model in {where}: run {BUILD_COMMAND}")
    if not (settings.feature_repo / "feature_store.yaml").is_file():
        raise MissingArtefactError(f"no feature store in {where}: run {BUILD_COMMAND}")


def _local_registry_exists(uri: str) -> bool:
    """False only for a local SQLite registry whose file is absent (opening it would create
    it: the stray ``mlflow.db`` of an empty workdir)."""
    return not uri.startswith(_SQLITE) or Path(uri.removeprefix(_SQLITE)).is_file()
