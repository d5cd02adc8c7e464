"""The README's commands are real: every `mlref` subcommand and nox session it names exists,
and its cheap commands run. (The quickstart demo and the test command run in .ci/run.)"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_quickstart_shows_the_two_commands() -> None:
    assert "uv run mlref demo" in README
    assert "uv run pytest --mlgates" in README


def test_every_mlref_command_in_the_readme_exists() -> None:
    named = set(re.findall(r"`mlref ([a-z][a-z-]+)", README))
    assert {"demo", "serve", "promote", "rollback", "monitor"} <= named
    done = _run(sys.executable, "-m", "mlref.cli", "--help")
    assert done.returncode == 0, done.stderr
    missing = sorted(cmd for cmd in named if not re.search(rf"^\s+{cmd}\b", done.stdout, re.M))
    assert not missing, f"README names mlref commands the CLI lacks: {missing}"


def test_every_nox_session_in_the_readme_exists() -> None:
    named = set(re.findall(r"nox -s ([a-z]+)", README))
    assert {"lint", "load", "perf", "scale"} <= named
    done = _run(sys.executable, "-m", "nox", "-l")
    assert done.returncode == 0, done.stderr
    listed = set(re.findall(r"^[*-] (\w+)", done.stdout, re.M))
    assert named <= listed, f"README names nox sessions noxfile.py lacks: {named - listed}"


@pytest.mark.parametrize("option", ["--schema"])
def test_report_module_commands_run(option: str) -> None:
    assert f"python -m mlgates.report {option}" in README
    done = _run(sys.executable, "-m", "mlgates.report", option)
    assert done.returncode == 0, done.stderr
    assert '"schema_version"' in done.stdout


def test_linked_files_exist() -> None:
    links = re.findall(r"\]\(((?!https?:)[^)#]+)\)", README)
    assert links
    missing = [link for link in links if not (ROOT / link).exists()]
    assert not missing, f"README links to missing files: {missing}"
