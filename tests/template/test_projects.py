"""Generated projects work: rendered with the default answers and with another package name,
port and no scale-out, each locks its own environment (uv, sharing the machine's uv cache),
runs its demo and its own gate suite (`uv run pytest --mlgates`), and both pass. The
renamed project (another package, entity, label and label delay) is its own all the way
down: its demo's data has its entity key, its label and its label delay, and its gate
results name its package, its entity's features and none of the reference's names.

Slow by nature (a full environment, the demo and the whole suite per project): marked
``template``, run by ``uv run nox -s template``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.template

ANSWERS: dict[str, dict[str, object]] = {
    # every question at its default: project fraud-model, package mlref, port 8000, scale-out
    "defaults": {},
    # another package, entity, label and label delay (shorter than mlref's: the gates' label
    # windows and training's embargo must follow it), port, no scale-out
    "renamed": {
        "project_name": "account-risk",
        "package_name": "account_risk",
        "entity": "account",
        "label": "is_chargeback",
        "label_delay_days": 4,
        "port": 8123,
        "include_scale": False,
    },
}
# the reference's names, which a renamed project's data and gate results must not carry
REFERENCE_NAMES = re.compile(r"(?<![A-Za-z0-9])(users?_|USERS?_)|_users?(?![A-Za-z])|\bis_fraud\b")
# what the parent run must not pass down: its environment, its coverage, its switches
DROPPED_ENV = (
    "VIRTUAL_ENV",
    "PYTHONPATH",
    "MLREF_TEMPLATE",
    "MLREF_HOME",
    "UV_PROJECT_ENVIRONMENT",
    # .ci/run sets it for this repository's lock; the generated project makes its own
    "UV_LOCKED",
    "UV_FROZEN",
)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in DROPPED_ENV}
    return {k: v for k, v in env.items() if not k.startswith(("COV_CORE_", "PYTEST_"))}


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory, shell: Any) -> Path:
    return shell.template_repo(tmp_path_factory.mktemp("template") / "repo")


@pytest.mark.parametrize("which", sorted(ANSWERS))
def test_generated_project_passes_its_own_gates(
    which: str, repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shell: Any
) -> None:
    import copier

    answers = {"mlgates_source": str(ROOT), **ANSWERS[which]}
    project = tmp_path / "project"
    copier.run_copy(str(repo), str(project), data=answers, defaults=True, quiet=True)
    package = str(ANSWERS[which].get("package_name", "mlref"))
    shell.git(project, "init", "-q", "-b", "main")
    shell.git(project, "add", "-A")
    shell.git(project, "commit", "-q", "-m", "from the template")

    for key in DROPPED_ENV:
        monkeypatch.delenv(key, raising=False)
    env = _env()
    shell.run(["uv", "lock"], project, timeout=900, env=env)
    shell.git(project, "add", "uv.lock")
    shell.git(project, "commit", "-q", "-m", "lock")
    shell.run(["uv", "sync", "--locked"], project, timeout=1800, env=env)
    shell.run(
        ["uv", "run", "--locked", package, "demo", "--workdir", str(tmp_path / "demo")],
        project,
        timeout=1800,
        env=env,
    )
    report = tmp_path / "mlgates-report.json"
    out = shell.run(
        [
            "uv",
            "run",
            "--locked",
            "pytest",
            "--mlgates",
            f"--mlgates-report={report}",
            "-p",
            "no:cacheprovider",
            "-q",
        ],
        project,
        timeout=3600,
        env=env,
    )
    assert re.search(r"\d+ passed", out), out[-2000:]

    doc = json.loads(report.read_text())
    text = json.dumps(doc)
    verdicts = [r.get("verdict") for r in doc["results"]]
    assert len(verdicts) > 20, f"only {len(verdicts)} gate results"
    assert "fail" not in verdicts
    # the report is the project's own: its package's modules, none of the reference's
    assert re.search(rf"\b{package}\.(features|train)\.", text), (
        "report names no module of the package"
    )
    if package != "mlref":
        assert not re.search(r"\bmlref\.(features|train|data|serve)\b", text)

    # its own entity, label and label delay: in the data the demo made, and in the gate
    # results (the features built on the entity, the tests' names, the gates' details)
    entity = str(ANSWERS[which].get("entity", "user"))
    label = str(ANSWERS[which].get("label", "is_fraud"))
    _assert_data_is_the_projects(tmp_path / "demo" / "data", entity, label, ANSWERS[which])
    results = json.dumps(doc["results"])
    assert re.search(rf"(?<![A-Za-z0-9]){entity}_|_{entity}(?![A-Za-z])", results), (
        f"no gate result names a feature or test of the entity {entity!r}"
    )
    if which != "defaults":
        found = sorted({m.group(0) for m in REFERENCE_NAMES.finditer(results)})
        assert found == [], f"the gate results carry the reference's names: {found}"


def _assert_data_is_the_projects(
    data: Path, entity: str, label: str, answers: dict[str, object]
) -> None:
    """The demo's event log has the project's key and label columns, and its labels arrive
    the answered delay after the events (the generator's figure: +- half a day, the median)."""
    import pandas as pd

    config = json.loads((data / "config.json").read_text())
    delay = int(answers.get("label_delay_days", config["label_delay_days"]))
    assert config["label_delay_days"] == delay
    assert f"n_{entity}s" in config, sorted(config)
    events = pd.read_parquet(data / "transactions.parquet")
    assert {f"{entity}_id", label} <= set(events.columns), list(events.columns)
    legit = events[events[label] == 0]
    days = (legit["label_timestamp"] - legit["event_timestamp"]).dt.total_seconds() / 86_400
    assert abs(days.median() - delay) <= 0.5, f"labels arrive {days.median():.2f} d late"
