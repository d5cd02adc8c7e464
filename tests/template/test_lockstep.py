"""template/ is mlref: regenerating it changes nothing (main run, ~2 s), and rendering it with
the default answers gives back mlref's files byte for byte (marked ``template``: two copier
renders; no environment is built)."""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "make_template", ROOT / "scripts" / "make_template.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_template", module)
    spec.loader.exec_module(module)
    return module


make_template = _script()


def render(tmp: Path, **answers: object) -> Path:
    """Render the working tree's template (copied beside its copier.yml, no git) into tmp/out."""
    import copier

    src = tmp / "src"
    src.mkdir()
    shutil.copy2(ROOT / "copier.yml", src / "copier.yml")
    shutil.copytree(ROOT / "template", src / "template")
    out = tmp / "out"
    data = {"mlgates_source": str(ROOT), **answers}
    copier.run_copy(str(src), str(out), data=data, defaults=True, quiet=True)
    return out


def test_template_is_regenerated() -> None:
    """A change to mlref that was not carried into template/ fails here, with the command."""
    assert make_template.main(["--check"]) == 0, (
        "template/ is stale: run `uv run python scripts/make_template.py` and commit template/"
    )


def test_check_sees_a_stale_template(tmp_path: Path) -> None:
    """--check is not vacuous: one changed, one extra file are both reported."""
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    make_template.generate(fresh)
    stale = tmp_path / "stale"
    shutil.copytree(fresh, stale)
    target = next(stale.glob("src/*/features/definitions.py.jinja"))
    target.write_text(target.read_text() + "\n# drifted\n")
    (stale / "extra.txt").write_text("x")
    diff = make_template.differences(fresh, stale)
    assert diff == [
        "stale: extra.txt",
        "differs: src/{{ package_name }}/features/definitions.py.jinja",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "import mlref.data\n",
            "{% raw %}import {% endraw %}{{ package_name }}{% raw %}.data\n{% endraw %}",
        ),
        (
            'f"{x}" mlref_total',
            '{% raw %}f"{x}" {% endraw %}{{ package_name }}{% raw %}_total{% endraw %}',
        ),
        ("MLREF_HOME", "{{ package_name | upper }}{% raw %}_HOME{% endraw %}"),
        ("mlrefs xmlref mlgates {{ a }}", None),
    ],
)
def test_names_become_variables_and_nothing_else(text: str, expected: str | None) -> None:
    assert make_template.templated(text, port=False) == expected


def test_port_only_where_asked() -> None:
    assert make_template.templated("port: int = 8000  # 80000", port=True) == (
        "{% raw %}port: int = {% endraw %}{{ port }}{% raw %}  # 80000{% endraw %}"
    )
    assert make_template.templated("port: int = 8000", port=False) is None


# a copier render each (~10 s idle, up to 2 min on a loaded machine): nox -s template
@pytest.mark.template
def test_default_answers_give_back_mlref(tmp_path: Path) -> None:
    """Every mirrored file of mlref, rendered with the default answers (package mlref, port
    8000, scale-out included), is byte for byte the source: the escaping loses nothing."""
    out = render(tmp_path)
    defaults = {make_template.PKG: "mlref", make_template.SCALE_ONLY: "scale"}
    defaults["{% if include_scale %}scale_setup.sh{% endif %}"] = "scale_setup.sh"
    defaults["{% if include_scale %}nginx-replicas.conf{% endif %}"] = "nginx-replicas.conf"
    pairs = []
    for rel_src, rel_dest in make_template.mirrored(ROOT):
        for variable, value in defaults.items():
            rel_dest = rel_dest.replace(variable, value)
        pairs.append((rel_src, rel_dest))
    assert len(pairs) > 150
    different = [
        rel_src
        for rel_src, rel_out in pairs
        if (out / rel_out).read_bytes() != (ROOT / rel_src).read_bytes()
    ]
    assert different == []
    assert (out / "src/mlref/scale/run.py").exists()
    assert 'mlref = "mlref.cli:main"' in (out / "pyproject.toml").read_text()


@pytest.mark.template
def test_other_answers_rename_everything(tmp_path: Path) -> None:
    """Another package name and port, no scale-out: no trace of the reference names left in
    the package, the tests or the settings, and no scale-out files."""
    out = render(tmp_path, package_name="card_risk", port=8123, include_scale=False)
    assert not (out / "src" / "mlref").exists()
    assert not (out / "tests" / "scale").exists()
    assert not (out / "src" / "card_risk" / "scale").exists()
    assert not (out / "scripts" / "scale_setup.sh").exists()
    assert "port: int = 8123" in (out / "src/card_risk/settings.py").read_text()
    word = re.compile(r"(?<![A-Za-z0-9])(mlref|MLREF)(?![A-Za-z0-9])")
    leftovers = [
        f"{p.relative_to(out)}: {m.group(0)}"
        for p in sorted(out.rglob("*"))
        if p.is_file()
        and p.suffix in {".py", ".toml", ".yaml", ".yml", ".cfg"}
        # the answers hold the mlgates path (named as its clone is); the editable-install
        # hook and its test name mlgates' own mlref on purpose
        and p.name not in {".copier-answers.yml", "hatch_build.py", "test_layout.py"}
        for m in [word.search(p.read_text())]
        if m
    ]
    assert leftovers == []
    pyproject = (out / "pyproject.toml").read_text()
    assert 'card_risk = "card_risk.cli:main"' in pyproject
    assert "pyspark" not in pyproject
