"""Taking updates: a project rendered at one version of the template receives a later fix
with `copier update`, and keeps its own edits (elsewhere in the same file, and in another
file). Needs no environment (nothing is installed), but copier clones twice: marked
``template`` with the rest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.template

GATE_TEST = "tests/gates/test_data_gates.py"
FIX = "# fixed in the template (v0.2.0): a gate-test change every project should receive\n"
LOCAL_END = "\n# the project's own note, added after generation\n"


def test_update_brings_the_fix_and_keeps_local_changes(tmp_path: Path, shell: Any) -> None:
    import copier

    repo = shell.template_repo(tmp_path / "repo")
    project = tmp_path / "project"
    copier.run_copy(
        str(repo), str(project), data={"mlgates_source": str(ROOT)}, defaults=True, quiet=True
    )
    shell.git(project, "init", "-q", "-b", "main")
    shell.git(project, "add", "-A")
    shell.git(project, "commit", "-q", "-m", "from the template v0.1.0")

    # local changes: a threshold in pyproject.toml, a line at the end of the gate test
    pyproject = project / "pyproject.toml"
    assert "[tool.mlgates.psi_drift]\nwarn = 0.1\nfail = 0.2\n" in pyproject.read_text()
    pyproject.write_text(
        pyproject.read_text().replace("warn = 0.1\nfail = 0.2\n", "warn = 0.1\nfail = 0.25\n", 1)
    )
    gate_test = project / GATE_TEST
    gate_test.write_text(gate_test.read_text() + LOCAL_END)
    shell.git(project, "commit", "-q", "-am", "our threshold, our note")

    # the template's fix: a line at the top of the same gate test (its source is Jinja)
    source = repo / "template" / (GATE_TEST + ".jinja")
    if not source.exists():
        source = repo / "template" / GATE_TEST
    text = source.read_text()
    fixed = text.replace(
        "from __future__ import annotations\n", FIX + "from __future__ import annotations\n", 1
    )
    assert fixed != text
    source.write_text(fixed)
    shell.git(repo, "commit", "-q", "-am", "fix a gate test")
    shell.git(repo, "tag", "v0.2.0")

    copier.run_update(str(project), defaults=True, overwrite=True, quiet=True, conflict="inline")

    updated = gate_test.read_text()
    assert FIX in updated, "the template's fix did not arrive"
    assert updated.endswith(LOCAL_END), "the project's own line was lost"
    assert "fail = 0.25\n" in pyproject.read_text(), "the project's threshold was overwritten"
    conflicts = [
        p
        for p in project.rglob("*")
        if p.is_file() and ".git" not in p.parts and "<<<<<<<" in p.read_text(errors="ignore")
    ]
    assert conflicts == []
    assert "_commit: v0.2.0" in (project / ".copier-answers.yml").read_text()
