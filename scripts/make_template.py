"""Generate the copier template (template/) from mlref, so the two cannot drift apart.

mlref is the one source: its package, its unit tests, the gate suite and the session fixtures
are copied into template/ with the package name (``mlref``, ``MLREF``) and the serving port
replaced by copier variables; the project files (pyproject.toml with mlref's dependencies and
``[tool.mlgates.*]`` thresholds, noxfile, README, CI workflow) are written from the skeletons
in this file. Hand edits under template/ are lost on the next run: change mlref (or this
script) and regenerate.

    uv run python scripts/make_template.py           # rewrite template/
    uv run python scripts/make_template.py --check   # exit 1 when template/ is stale

tests/template/test_lockstep.py runs ``--check`` in the main test run, so a change to mlref
that is not regenerated fails CI with the command above.
"""

from __future__ import annotations

import argparse
import filecmp
import re
import shutil
import sys
import tempfile
import tomllib
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template"

PKG = "{{ package_name }}"
PKG_UPPER = "{{ package_name | upper }}"
SCALE_ONLY = "{% if include_scale %}scale{% endif %}"

# (source in this repo, destination under template/): whole trees mirrored file by file
TREES: tuple[tuple[str, str], ...] = (
    ("src/mlref", f"src/{PKG}"),
    ("tests/mlref", f"tests/{PKG}"),
    ("tests/gates", "tests/gates"),
    ("tests/scale", f"tests/{SCALE_ONLY}"),
)
# single files
FILES: tuple[tuple[str, str], ...] = (
    ("conftest.py", "conftest.py"),
    ("scripts/scale_setup.sh", "scripts/{% if include_scale %}scale_setup.sh{% endif %}"),
    ("docs/nginx-replicas.conf", "docs/{% if include_scale %}nginx-replicas.conf{% endif %}"),
    # the system's own contracts (the project's tests read prediction-log.md)
    ("docs/prediction-log.md", "docs/prediction-log.md"),
    ("docs/faults.md", "docs/faults.md"),
    ("docs/overload.md", "docs/overload.md"),
    ("docs/canary.md", "docs/canary.md"),
)
# the scale-out package is a question: its directory renders to nothing when not included
RENAMED_DIRS = {f"src/{PKG}/scale": f"src/{PKG}/{SCALE_ONLY}"}
# mlref's own repository tests (they read this repository's README), not the project's
SKIPPED = {"tests/mlref/test_first_hour.py"}
# where the default serving port is written (the test of a URL helper keeps its literal)
PORT_FILES = {"src/mlref/settings.py", "src/mlref/load/locustfile.py"}

NAME = re.compile(r"(?<![A-Za-z0-9])(mlref|MLREF)(?![A-Za-z0-9])")
PORT = re.compile(r"(?<![0-9])8000(?![0-9])")
# files of the generated project that mlref has no counterpart of (mlref's own noxfile,
# README and CI are written for this repository: two packages, benchmarks, examples),
# copied as they are (Jinja where the name ends in .jinja)
HANDWRITTEN = ROOT / "scripts" / "template_files"
IGNORED = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}


def _raw(text: str) -> str:
    return "{% raw %}" + text + "{% endraw %}" if text else ""


def templated(text: str, *, port: bool) -> str | None:
    """``text`` as Jinja with the names (and the port) as variables; None when it has none.

    Everything else sits in raw blocks, so braces of f-strings, dict literals and Jinja-like
    text in the sources are copied as they are."""
    pattern = re.compile(f"{NAME.pattern}|{PORT.pattern}") if port else NAME
    pieces: list[str] = []
    last = 0
    for match in pattern.finditer(text):
        pieces.append(_raw(text[last : match.start()]))
        word = match.group(0)
        pieces.append("{{ port }}" if word == "8000" else (PKG_UPPER if word.isupper() else PKG))
        last = match.end()
    if last == 0:
        return None
    pieces.append(_raw(text[last:]))
    return "".join(pieces)


def _source_files(tree: Path) -> Iterable[Path]:
    for path in sorted(tree.rglob("*")):
        if path.is_file() and not IGNORED.intersection(path.parts) and path.suffix != ".pyc":
            yield path


def _destination(rel_dest: str) -> str:
    for old, new in RENAMED_DIRS.items():
        if rel_dest == old or rel_dest.startswith(old + "/"):
            return new + rel_dest[len(old) :]
    return rel_dest


def mirrored(root: Path = ROOT) -> Iterable[tuple[str, str]]:
    """(path in mlref, path under template/ without the .jinja suffix) of every mirrored file."""
    for rel_src, rel_dest in TREES:
        for src in _source_files(root / rel_src):
            rel = src.relative_to(root).as_posix()
            if rel not in SKIPPED:
                yield rel, _destination(f"{rel_dest}/{src.relative_to(root / rel_src).as_posix()}")
    yield from FILES


def _emit(out: Path, src: Path, rel_src: str, rel_dest: str) -> None:
    text = src.read_text()
    rendered = templated(text, port=rel_src in PORT_FILES)
    target = out / (rel_dest + (".jinja" if rendered is not None else ""))
    target.parent.mkdir(parents=True, exist_ok=True)
    if rendered is None:
        shutil.copy2(src, target)
    else:
        target.write_text(rendered)


def _toml_list(items: Iterable[str], indent: str = "    ") -> str:
    return "[\n" + "".join(f'{indent}"{item}",\n' for item in items) + "]"


def pyproject(root: Path) -> str:
    """The generated project's pyproject.toml: mlref's runtime dependencies, mlgates from the
    answered source, the same pytest settings and the same ``[tool.mlgates.*]`` thresholds."""
    text = (root / "pyproject.toml").read_text()
    data = tomllib.loads(text)
    extras = data["project"]["optional-dependencies"]
    runtime = [d for d in extras["ref"] if not d.startswith("mlgates")]
    scale = [d for d in extras["scale"] if not d.startswith("mlgates")]
    dev = [
        d
        for d in data["dependency-groups"]["dev"]
        # schemathesis: the project's server is checked against its own OpenAPI document
        if not d.startswith(("mlgates", "copier"))
    ]
    marker = "# ---------------------------------------------------------------- ML gates"
    gates = text[text.index(marker) :]
    pytest_start = text.index("[tool.pytest.ini_options]")
    pytest_cfg = text[pytest_start : text.index("\n[", pytest_start + 1)].rstrip()
    # this repository's own markers (the template's proofs) mean nothing in the project
    pytest_cfg = re.sub(r"\nmarkers = \[\n(?:    .*\n)*\]", "", pytest_cfg)
    return (
        _PYPROJECT.replace("@RUNTIME@", _toml_list([*runtime, "mlgates[fairness,coverage,schema]"]))
        .replace("@SCALE@", _toml_list(scale))
        .replace("@DEV@", _toml_list(dev))
        .replace("@PYTEST@", _raw(pytest_cfg))
        .replace("@GATES@", templated(gates, port=False) or _raw(gates))
    )


_PYPROJECT = """\
[build-system]
requires = ["hatchling>=1.25"]
build-backend = "hatchling.build"

[project]
name = "{{ project_name }}"
version = "0.1.0"
description = "{{ description }}"
requires-python = ">=3.11"
dependencies = @RUNTIME@
{%- if include_scale %}

[project.optional-dependencies]
# scaling out on existing engines: Feast's Redis online store, Spark batch scoring
scale = @SCALE@
{%- endif %}

[project.scripts]
{{ package_name }} = "{{ package_name }}.cli:main"

[dependency-groups]
dev = @DEV@

[tool.uv.sources]
{%- if mlgates_source.startswith(("git+", "https://", "ssh://", "git@")) %}
mlgates = { git = "{{ mlgates_source | replace('git+', '', 1) }}" }
{%- else %}
# editable: the mlgates checkout is read where it is (its src/ is on the path after this
# project's: hatch_build.py, tests/test_layout.py)
mlgates = { path = "{{ mlgates_source }}", editable = true }
{%- endif %}

[tool.hatch.build.targets.wheel]
packages = ["src/{{ package_name }}"]

# editable installs: this project's src/ before mlgates' on the path (hatch_build.py says why)
[tool.hatch.build.hooks.custom]

@PYTEST@

[tool.ruff]
line-length = 100
target-version = "py311"
src = ["src", "tests"]

[tool.ruff.lint]
select = ["E", "F", "W", "I", "B", "UP", "SIM", "RUF", "PT"]
ignore = ["E501"]

[tool.mypy]
python_version = "3.11"
files = ["src"]
ignore_missing_imports = true
warn_unused_ignores = true

@GATES@"""


def generate(out: Path, root: Path = ROOT) -> None:
    """Write the generated part of the template into ``out`` (which must be empty)."""
    for rel_src, rel_dest in mirrored(root):
        _emit(out, root / rel_src, rel_src, rel_dest)
    (out / "pyproject.toml.jinja").write_text(pyproject(root))
    for src in _source_files(HANDWRITTEN):
        target = out / src.relative_to(HANDWRITTEN)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)


def _tree(root: Path) -> dict[str, Path]:
    return {p.relative_to(root).as_posix(): p for p in _source_files(root)} if root.exists() else {}


def differences(expected: Path, actual: Path) -> list[str]:
    """Paths (relative) that are missing, extra or different in ``actual``."""
    want, have = _tree(expected), _tree(actual)
    out = [f"missing: {p}" for p in sorted(want.keys() - have.keys())]
    out += [f"stale: {p}" for p in sorted(have.keys() - want.keys())]
    out += [
        f"differs: {p}"
        for p in sorted(want.keys() & have.keys())
        if not filecmp.cmp(want[p], have[p], shallow=False)
    ]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "template"
        fresh.mkdir()
        generate(fresh)
        diff = differences(fresh, TEMPLATE)
        if args.check:
            if diff:
                print(f"template/ is stale ({len(diff)} files):", *diff[:20], sep="\n  ")
                print("regenerate it: uv run python scripts/make_template.py")
                return 1
            print("template/ matches mlref")
            return 0
        if TEMPLATE.exists():
            shutil.rmtree(TEMPLATE)
        shutil.copytree(fresh, TEMPLATE)
        print(
            f"wrote {len(_tree(TEMPLATE))} files to {TEMPLATE.relative_to(ROOT)}/ ({len(diff)} changed)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
