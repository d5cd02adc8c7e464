"""`mlref new DIR`: copier's Python API behind the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlref import new
from mlref.cli import main


def test_answers_are_key_value() -> None:
    assert new.parse_answer("port=8123") == ("port", "8123")
    assert new.parse_answer("description=a=b") == ("description", "a=b")
    with pytest.raises(ValueError, match="KEY=VALUE"):
        new.parse_answer("port")


def test_bad_answer_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["new", "out", "-d", "=1"])
    assert exc.value.code == 2
    assert "KEY=VALUE" in capsys.readouterr().err


def test_no_template_beside_a_generated_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a project made from the template, `new` has no template to copy and says so."""
    monkeypatch.setattr(new, "REPOSITORY", tmp_path)
    with pytest.raises(new.TemplateNotFound, match="--template"):
        new.template_source()
    assert new.template_source("git+https://example.invalid/x") == "git+https://example.invalid/x"


def test_refused_answer_exits_2_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "copier.yml").write_text(
        Path(new.REPOSITORY / "copier.yml").read_text().replace("_subdirectory: template", "")
    )
    out = tmp_path / "out"
    args = ["new", str(out), "--template", str(source), "-d", "package_name=Bad-Name"]
    code = main([*args, "--defaults", "--no-lock"])
    assert code == 2
    assert "package_name" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.template
# a working tree with uncommitted edits (while developing): copier copies them and says so
@pytest.mark.filterwarnings("ignore::copier.errors.DirtyLocalWarning")
def test_new_renders_this_checkout(tmp_path: Path) -> None:
    """The default source is this checkout; mlgates comes from it too."""
    answers = {"package_name": "card_risk", "entity": "account", "label": "is_chargeback"}
    out = new.new_project(tmp_path / "p", answers, defaults=True, lock=False)
    assert (out / "src" / "card_risk" / "cli.py").is_file()
    recorded = (out / ".copier-answers.yml").read_text()
    assert f"mlgates_source: {new.REPOSITORY}" in recorded
    assert "entity: account" in recorded
    # renamed (package, entity, label), then tidied: the project's own lint passes from the start
    import subprocess
    import sys

    for check in (["check", "."], ["format", "--check", "."]):
        done = subprocess.run([sys.executable, "-m", "ruff", *check], cwd=out, check=False)
        assert done.returncode == 0, check
