"""`mlref new DIR`: a new project from the mlref copier template (copier's Python API).

The template lives beside mlref in its repository (copier.yml + template/, generated from
this package by scripts/make_template.py); docs/template.md describes the questions and how
updates are taken. In a project generated from the template there is no template beside it,
and the command says where to get one.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

#: this package's repository root, when it is a checkout holding the template
REPOSITORY = Path(__file__).resolve().parents[2]


class TemplateNotFound(FileNotFoundError):
    """No copier template where one was looked for; the message says what to pass instead."""


def template_source(source: str | None = None) -> str:
    """The template to copy: ``source`` as given (a path or git URL), else this checkout."""
    if source:
        return source
    if (REPOSITORY / "copier.yml").is_file() and (REPOSITORY / "template").is_dir():
        return str(REPOSITORY)
    raise TemplateNotFound(
        f"no copier template beside this package ({REPOSITORY} has no copier.yml): pass "
        "--template PATH-OR-GIT-URL of an mlref checkout, or run "
        "`uvx copier copy PATH-OR-GIT-URL DIR`"
    )


def parse_answer(pair: str) -> tuple[str, str]:
    """``"port=8123"`` -> ``("port", "8123")`` (copier casts to each question's type)."""
    key, sep, value = pair.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"an answer is KEY=VALUE, got {pair!r}")
    return key.strip(), value


def new_project(
    destination: Path,
    answers: Mapping[str, object] | None = None,
    *,
    source: str | None = None,
    vcs_ref: str | None = None,
    defaults: bool = False,
    lock: bool = True,
) -> Path:
    """Render the template into ``destination`` and lock its environment (``uv lock``).

    ``answers`` override the questions' defaults; ``defaults=True`` asks nothing else
    (non-interactive). ``mlgates_source`` defaults to this checkout when the template is.
    Raises :class:`TemplateNotFound`, or ValueError for an answer the template refuses.
    """
    try:
        import copier
    except ImportError as exc:  # copier is a dev dependency of mlref, not a runtime one
        raise TemplateNotFound(
            "copier is not installed here: `uv run mlref new` (the dev group has it) or "
            "`uvx copier copy PATH-OR-GIT-URL DIR`"
        ) from exc

    src = template_source(source)
    data = dict(answers or {})
    if src == str(REPOSITORY):
        data.setdefault("mlgates_source", str(REPOSITORY))
    copier.run_copy(src, str(destination), data=data, vcs_ref=vcs_ref, defaults=defaults)
    tidy(destination)
    uv = shutil.which("uv")
    if lock and uv is not None:
        # the first `uv run` would lock too; locking now lets the first commit hold uv.lock
        subprocess.run([uv, "lock"], cwd=destination, check=True)
    return destination


def tidy(project: Path) -> bool:
    """Sort imports and format the new project with ruff, when it is installed here.

    The template is mlref's files with the package name swapped: another name changes line
    lengths and where imports sort (``card_risk`` before ``mlgates``, ``mlref`` after), so
    the project's own lint would fail on its first run. False when ruff is missing."""
    if importlib.util.find_spec("ruff") is None:
        return False
    ruff = [sys.executable, "-m", "ruff"]
    subprocess.run(
        [*ruff, "check", "--fix", "--select", "I", "--quiet", "."], cwd=project, check=True
    )
    subprocess.run([*ruff, "format", "--quiet", "."], cwd=project, check=True)
    return True
