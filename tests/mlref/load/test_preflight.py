"""A load run on a workdir that holds no built system: one line naming the command that builds
it, a non-zero exit, no traceback, and nothing written (issue 19: the README's `nox -s load`
after the demo read another workdir, printed two stacked tracebacks with a wrong hint, and
left a stray ``mlflow.db`` behind). Run as a user runs it: ``python -m mlref.load`` in its own
process, so what is checked is everything it prints."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlref.load.preflight import MissingArtefactError, check_system
from mlref.settings import make_settings


def tree(root: Path) -> list[str]:
    """Every path below ``root`` (the directory's state, to compare before and after)."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def run_load(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MLREF_HOME"}
    return subprocess.run(
        [sys.executable, "-m", "mlref.load", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (["--workdir", "empty"], "empty"),  # an empty directory
        (["--workdir", "nowhere"], "nowhere"),  # a directory that does not exist
        ([], ".mlref"),  # the default: the demo's workdir, absent here
    ],
)
def test_no_system_is_one_line_naming_the_command(
    tmp_path: Path, args: list[str], shown: str
) -> None:
    (tmp_path / "empty").mkdir()
    before = tree(tmp_path)

    done = run_load(tmp_path, *args, "-t", "2s")

    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == f"no model in {shown}: run uv run mlref demo\n"
    assert tree(tmp_path) == before  # no reports folder, no mlflow.db, no users file


def test_a_missing_model_file_is_named(tmp_path: Path) -> None:
    done = run_load(tmp_path, "--workdir", ".", "--model-path", "missing.onnx")

    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "no model at missing.onnx: --model-path names an ONNX file that does not exist"
    ]
    assert tree(tmp_path) == []


def test_check_system_names_the_first_missing_artefact(tmp_path: Path) -> None:
    """Model first (the registry's file or ``--model-path``), then the Feast repo; a
    remote registry is the server's to check. Reading only: nothing is created."""
    settings = make_settings(tmp_path / "w")
    with pytest.raises(MissingArtefactError, match=r"^no model in .*w: run uv run mlref demo$"):
        check_system(settings)
    model = tmp_path / "model.onnx"
    model.write_bytes(b"not checked here: the server judges the content")
    with pytest.raises(MissingArtefactError, match=r"^no feature store in .*w: run uv run"):
        check_system(settings, model)
    remote = settings.with_(tracking_uri="http://127.0.0.1:5000")
    with pytest.raises(MissingArtefactError, match="no feature store"):
        check_system(remote)
    assert not settings.workdir.exists()
    repo = settings.feature_repo
    repo.mkdir(parents=True)
    (repo / "feature_store.yaml").write_text("project: t\n")
    check_system(settings, model)
    check_system(remote)
    with pytest.raises(MissingArtefactError, match="no model in"):
        check_system(settings)
