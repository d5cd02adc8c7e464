"""`mlref canary start | status | stop` against a real MLflow registry (SQLite, two
versions registered by hand: the commands move aliases and read the log, they never load
the artefacts)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlref.canary.state import read_decisions, read_rollout
from mlref.cli import main
from mlref.settings import make_settings


def test_start_status_stop(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mlref.registry import CHALLENGER, CHAMPION, Registry

    settings = make_settings(tmp_path / "w")
    settings.ensure_dirs()
    reg = Registry(settings)
    reg.client.create_registered_model(reg.name)
    for _ in range(2):
        reg.client.create_model_version(reg.name, str(tmp_path / "model"))
    reg.client.set_registered_model_alias(reg.name, CHAMPION, "1")
    reg.client.set_registered_model_alias(reg.name, CHALLENGER, "2")
    work = ["--workdir", str(settings.workdir)]

    assert main(["canary", "start", "--share", "0.7", *work]) == 1
    assert "share must be between 0.05 and 0.5" in capsys.readouterr().err
    assert main(["canary", "start", "--share", "0.1", *work]) == 0
    rollout = read_rollout(settings.workdir)
    assert rollout is not None
    assert rollout.active
    assert (rollout.canary_version, rollout.champion_version, rollout.share) == ("2", "1", 0.1)
    assert reg.version_of("canary") == "2"
    assert main(["canary", "start", "--share", "0.1", *work]) == 1
    assert "still active" in capsys.readouterr().err

    assert main(["canary", "status", *work]) == 0
    out = capsys.readouterr().out
    assert "decision: CONTINUE" in out
    assert "0 champion / 0 canary requests" in out

    assert main(["canary", "stop", *work]) == 0
    ended = read_rollout(settings.workdir)
    assert ended is not None
    assert ended.status == "stopped"
    assert reg.version_of("canary") is None
    assert reg.version_of(CHAMPION) == "1"
    assert [d["event"] for d in read_decisions(settings.workdir)] == ["started", "stopped"]
    assert main(["canary", "stop", *work]) == 1
