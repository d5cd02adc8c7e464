"""The template's proofs build whole environments (uv sync of the full stack, the demo, the
gate suite of each generated project): they run under ``nox -s template`` or with
``MLREF_TEMPLATE=1``, and are skipped otherwise. The lockstep check (test_lockstep.py) is
not marked: it is cheap and runs in every main run."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def template_run() -> bool:
    return os.environ.get("MLREF_TEMPLATE") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if template_run():
        return
    skip = pytest.mark.skip(
        reason="builds whole projects: run `uv run nox -s template` (or MLREF_TEMPLATE=1)"
    )
    for item in items:
        if item.get_closest_marker("template"):
            item.add_marker(skip)


class Shell:
    """Commands the template's proofs run (a fixture: test modules cannot import conftest
    under --import-mode=importlib)."""

    root = ROOT

    @staticmethod
    def run(cmd: list[str], cwd: Path, timeout: float, env: dict[str, str] | None = None) -> str:
        """Run ``cmd``; fail with the tail of its output when it exits non-zero."""
        __tracebackhide__ = True
        out = subprocess.run(
            cmd,
            cwd=cwd,
            env=env if env is not None else dict(os.environ),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if out.returncode != 0:
            pytest.fail(
                f"`{' '.join(cmd)}` in {cwd} exited {out.returncode}:\n"
                f"{out.stdout[-6000:]}\n{out.stderr[-3000:]}",
                pytrace=False,
            )
        return out.stdout

    def git(self, cwd: Path, *args: str) -> str:
        ident = ["-c", "user.email=template@test", "-c", "user.name=template-test"]
        return self.run(["git", *ident, *args], cwd, timeout=120)

    def template_repo(self, dest: Path) -> Path:
        """A git repository holding only the template (copier.yml + template/) at ``dest``,
        one commit tagged v0.1.0: what copier reads when it copies from a path or URL."""
        dest.mkdir(parents=True)
        shutil.copy2(ROOT / "copier.yml", dest / "copier.yml")
        shutil.copytree(ROOT / "template", dest / "template")
        self.git(dest, "init", "-q", "-b", "main")
        self.git(dest, "add", "-A")
        self.git(dest, "commit", "-q", "-m", "template v0.1.0")
        self.git(dest, "tag", "v0.1.0")
        return dest


@pytest.fixture(scope="session")
def shell() -> Shell:
    return Shell()
