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
PORT_DEFAULT = 8000
PORT = re.compile(rf"(?<![0-9]){PORT_DEFAULT}(?![0-9])")
# The label column, as a whole identifier (``is_fraud``; not ``test_is_fraud_...``).
LABEL_NAME = "is_fraud"
LABEL = re.compile(rf"(?<![A-Za-z0-9_]){LABEL_NAME}(?![A-Za-z0-9_])")
# The label delay: the one default every stage derives it from (DataConfig.label_delay_days;
# the gates read settings.data.label_delay_days; TrainConfig.from_dates measures it).
DELAY_FILE = "src/mlref/settings.py"
DELAY = re.compile(r"(?<=label_delay_days: int = )[0-9]+(?![0-9])")
# The entity (``user``) is also an English word, so only names are replaced, never prose: a
# word made of parts (snake_case, kebab-case, CamelCase: ``user_id``, ``n_users``,
# ``--spark-users``, ``UserSampler``, ``UNKNOWN_USER_STATE``) whose part is user/users, and
# the Feast entity's own name, ``"user"`` in double quotes. A bare ``user`` stays (a local
# variable, or prose: "per user" reads the same for an account).
ENTITY_NAME = "user"
TOKEN = re.compile(r"[A-Za-z0-9_]+(?:-[A-Za-z0-9_]+)*")
PART = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z0-9]+")
ENTITY_PARTS = {
    "user": "{{ entity }}",
    "users": "{{ entity }}s",
    "User": "{{ entity | capitalize }}",
    "Users": "{{ entity | capitalize }}s",
    "USER": "{{ entity | upper }}",
    "USERS": "{{ entity | upper }}S",
}
# names with a user part that are not the entity: Python's, Locust's (a simulated client is a
# "user"), nginx's (the worker's Unix user), Chromium's flag, and mlref's names for Locust's
# users; renaming them would break a library call or say something false
NOT_THE_ENTITY = frozenset(
    {
        "UserWarning",
        "HttpUser",
        "FastHttpUser",
        "ScoringUser",
        "user_count",
        "user-data-dir",
        "user_line",
        "locust_users",
        "MAX_USERS",
        "test_locustfile_parses_and_lists_its_user",
    }
)
# files of the generated project that mlref has no counterpart of (mlref's own noxfile,
# README and CI are written for this repository: two packages, benchmarks, examples),
# copied as they are (Jinja where the name ends in .jinja)
HANDWRITTEN = ROOT / "scripts" / "template_files"
IGNORED = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}


def _raw(text: str) -> str:
    return "{% raw %}" + text + "{% endraw %}" if text else ""


def entity_spans(text: str) -> Iterable[tuple[int, int, str]]:
    """(start, end, Jinja) of every part of ``text`` that names the entity (see ENTITY_PARTS)."""
    for token in TOKEN.finditer(text):
        word = token.group(0)
        if word in NOT_THE_ENTITY or "user" not in word.lower():
            continue
        parts = list(PART.finditer(word))
        if len(parts) == 1 and not set(word) & {"_", "-"}:  # a bare word (f"user_{x}" is not)
            quoted = (
                text[token.start() - 1 : token.start()]
                == '"'
                == text[token.end() : token.end() + 1]
            )
            if word == ENTITY_NAME and quoted:
                yield token.start(), token.end(), ENTITY_PARTS[word]
            continue
        for part in parts:
            if part.group(0) in ENTITY_PARTS:
                start = token.start() + part.start()
                yield start, start + len(part.group(0)), ENTITY_PARTS[part.group(0)]


def templated(text: str, *, port: bool, delay: bool = False) -> str | None:
    """``text`` as Jinja with the names (package, entity, label), and where asked the port and
    the label delay, as variables; None when it has none.

    Everything else sits in raw blocks, so braces of f-strings, dict literals and Jinja-like
    text in the sources are copied as they are."""
    spans: list[tuple[int, int, str]] = [
        (m.start(), m.end(), PKG_UPPER if m.group(0).isupper() else PKG)
        for m in NAME.finditer(text)
    ]
    spans += [(m.start(), m.end(), "{{ label }}") for m in LABEL.finditer(text)]
    spans += entity_spans(text)
    if port:
        spans += [(m.start(), m.end(), "{{ port }}") for m in PORT.finditer(text)]
    if delay:
        spans += [(m.start(), m.end(), "{{ label_delay_days }}") for m in DELAY.finditer(text)]
    if not spans:
        return None
    pieces: list[str] = []
    last = 0
    for start, end, variable in sorted(spans):
        if start < last:  # the patterns never overlap; if one day they do, say where
            raise ValueError(f"overlapping names at {start}: {text[start - 20 : end + 20]!r}")
        pieces.append(_raw(text[last:start]))
        pieces.append(variable)
        last = end
    pieces.append(_raw(text[last:]))
    return "".join(pieces)


def label_delay_default(root: Path = ROOT) -> int:
    """mlref's label delay (days), which copier.yml must offer as the default."""
    found = DELAY.findall((root / DELAY_FILE).read_text())
    if len(found) != 1:
        raise ValueError(f"{DELAY_FILE}: expected one `label_delay_days: int = N`, found {found}")
    return int(found[0])


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
    rendered = templated(text, port=rel_src in PORT_FILES, delay=rel_src == DELAY_FILE)
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


def check_defaults(root: Path = ROOT) -> None:
    """copier.yml's defaults must be mlref's own names and figures: the default answers render
    mlref byte for byte (tests/template/test_lockstep.py) only if they are."""
    import yaml

    questions = yaml.safe_load((root / "copier.yml").read_text())
    want = {
        "package_name": "mlref",
        "entity": ENTITY_NAME,
        "label": LABEL_NAME,
        "label_delay_days": label_delay_default(root),
        "port": PORT_DEFAULT,
    }
    wrong = {k: questions[k]["default"] for k, v in want.items() if questions[k]["default"] != v}
    if wrong:
        raise ValueError(
            f"copier.yml defaults {wrong} are not mlref's ({ {k: want[k] for k in wrong} }): "
            "change copier.yml with mlref"
        )


def generate(out: Path, root: Path = ROOT) -> None:
    """Write the generated part of the template into ``out`` (which must be empty)."""
    check_defaults(root)
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
