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


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # the entity's names: snake, kebab, Camel and UPPER parts, plural, the Feast entity
        (
            'USER_ID = "user_id"',
            '{{ entity | upper }}{% raw %}_ID = "{% endraw %}{{ entity }}{% raw %}_id"{% endraw %}',
        ),
        ("n_users", "{% raw %}n_{% endraw %}{{ entity }}s"),
        ("--spark-users", "{% raw %}--spark-{% endraw %}{{ entity }}s"),
        ("UserSampler", "{{ entity | capitalize }}{% raw %}Sampler{% endraw %}"),
        ('f"user_{kind}"', '{% raw %}f"{% endraw %}{{ entity }}{% raw %}_{kind}"{% endraw %}'),
        ('ENTITY = "user"', '{% raw %}ENTITY = "{% endraw %}{{ entity }}{% raw %}"{% endraw %}'),
        # the label column, whole
        ('LABEL = "is_fraud"', '{% raw %}LABEL = "{% endraw %}{{ label }}{% raw %}"{% endraw %}'),
        # prose, Python's and Locust's users, and names that only contain the letters
        ("per user, the users, a user's habit", None),
        ("UserWarning FastHttpUser locust_users --user-data-dir expanduser", None),
        ("test_is_fraud_rate is_fraudulent", None),
    ],
)
def test_entity_and_label_names_become_variables_and_nothing_else(
    text: str, expected: str | None
) -> None:
    assert make_template.templated(text, port=False) == expected


def test_label_delay_only_in_the_settings() -> None:
    line = "    label_delay_days: int = 7\n"
    assert make_template.templated(line, port=False, delay=True) == (
        "{% raw %}    label_delay_days: int = {% endraw %}{{ label_delay_days }}{% raw %}\n{% endraw %}"
    )
    assert make_template.templated(line, port=False) is None
    from mlref.settings import DataConfig

    assert make_template.label_delay_default() == DataConfig().label_delay_days


def test_copier_defaults_must_be_mlrefs(tmp_path: Path) -> None:
    """copier.yml offering another default than mlref's (here the label delay) is refused
    when the template is generated: its default answers would no longer render mlref."""
    root = tmp_path / "root"
    (root / "src/mlref").mkdir(parents=True)
    shutil.copy2(ROOT / make_template.DELAY_FILE, root / make_template.DELAY_FILE)
    text = (ROOT / "copier.yml").read_text()
    (root / "copier.yml").write_text(text)
    make_template.check_defaults(root)
    default = make_template.label_delay_default(root)
    changed = re.sub(
        r"(label_delay_days:\n(?:  .*\n)*?  default: )\d+", rf"\g<1>{default + 1}", text
    )
    assert changed != text
    (root / "copier.yml").write_text(changed)
    with pytest.raises(ValueError, match="label_delay_days"):
        make_template.check_defaults(root)


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
    """Another package name, entity, label, label delay and port, no scale-out: no trace of
    the reference names left in the package, the tests, the docs or the settings, and no
    scale-out files."""
    out = render(
        tmp_path,
        package_name="card_risk",
        entity="account",
        label="is_chargeback",
        label_delay_days=4,
        port=8123,
        include_scale=False,
    )
    assert not (out / "src" / "mlref").exists()
    assert not (out / "tests" / "scale").exists()
    assert not (out / "src" / "card_risk" / "scale").exists()
    assert not (out / "scripts" / "scale_setup.sh").exists()
    settings = (out / "src/card_risk/settings.py").read_text()
    assert "port: int = 8123" in settings
    assert "label_delay_days: int = 4" in settings
    assert "n_accounts: int = " in settings
    columns = (out / "src/card_risk/data/columns.py").read_text()
    assert 'ACCOUNT_ID = "account_id"' in columns
    assert 'LABEL = "is_chargeback"' in columns
    definitions = (out / "src/card_risk/features/definitions.py").read_text()
    assert 'ENTITY = "account"' in definitions
    assert 'VELOCITY_VIEW = "account_velocity_24h"' in definitions
    reference = re.compile(
        r"(?<![A-Za-z0-9])(mlref|MLREF)(?![A-Za-z0-9])"
        rf"|(?<![A-Za-z0-9_]){make_template.LABEL_NAME}(?![A-Za-z0-9_])"
        r"|\b(user_id|USER_ID|n_users)\b"
    )
    leftovers = [
        f"{p.relative_to(out)}: {found}"
        for p in sorted(out.rglob("*"))
        if p.is_file()
        and p.suffix in {".py", ".toml", ".yaml", ".yml", ".cfg", ".md", ".conf", ".sh"}
        # the answers hold the mlgates path (named as its clone is); the editable-install
        # hook and its test name mlgates' own mlref on purpose
        and p.name not in {".copier-answers.yml", "hatch_build.py", "test_layout.py"}
        # the README says where the project started, on purpose
        for text in [p.read_text().replace("[mlref](https://github.com/mlgates/mlref)", "")]
        # the generator's own finder too: any name with a user part that is the entity
        for found in [
            *(m.group(0) for m in reference.finditer(text)),
            *(text[start:end] for start, end, _ in make_template.entity_spans(text)),
        ][:1]
    ]
    assert leftovers == []
    pyproject = (out / "pyproject.toml").read_text()
    assert 'card_risk = "card_risk.cli:main"' in pyproject
    assert "pyspark" not in pyproject
