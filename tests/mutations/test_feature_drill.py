"""Mutation proofs of the new-feature drill (data-6, tests/gates/test_feature_drill.py).

- a definition of a kind the derivation does not support (a 7-day median) fails the drill
  at its first step, ``offline rows``, naming the kind;
- a copy of mlref whose online path hard-codes the aggregations the old code had (count,
  mean, last: what ``OnlineAggregator`` computed before features were derived from their
  definitions), run first on the path (PYTHONPATH=copy/src), fails the drill naming
  ``online aggregator``: adding a 7-day max there needs hand code;
- the clean counterpart: the same 7-day max on the checkout passes (every step).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

pytestmark = [
    pytest.mark.filterwarnings("ignore:fetch_arrow_table\\(\\) is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:On demand feature view is an experimental:RuntimeWarning"),
]

SRC = Path(__file__).resolve().parents[2] / "src"

# the drill of tests/gates/test_feature_drill.py, as a script (for a copy of the code)
DRILL = """
import json, sys
from datetime import timedelta
from mlgates.gates import new_feature_drill
from mlref.data.columns import AMOUNT
from mlref.data.generate import generate_transactions
from mlref.data.validate import validate
from mlref.features.definitions import StoredFeature
from mlref.features.drill import drill_steps
from mlref.settings import DataConfig

events = validate(
    generate_transactions(DataConfig(n_users=60, days=12, seed=11)), max_quarantine_rate=0.2
).valid.reset_index(drop=True)
feature = StoredFeature(
    name="max_amount_7d", view="user_amount_7d", aggregation="max", column=AMOUNT,
    window=timedelta(days=7), default=float("nan"), dtype="Float64", description="max",
)
result = new_feature_drill(drill_steps(feature, events, sys.argv[1]), feature=feature.name)
print(json.dumps({"verdict": result.verdict, "details": result.details}))
"""


def _max_7d() -> object:
    from mlref.data.columns import AMOUNT
    from mlref.features.definitions import StoredFeature

    return StoredFeature(
        name="max_amount_7d",
        view="user_amount_7d",
        aggregation="max",
        column=AMOUNT,
        window=timedelta(days=7),
        default=float("nan"),
        dtype="Float64",
        description="largest amount of the user's events in (t - 7d, t]",
    )


def _events() -> object:
    from mlref.data.generate import generate_transactions
    from mlref.data.validate import validate
    from mlref.settings import DataConfig

    raw = generate_transactions(DataConfig(n_users=60, days=12, seed=11))
    return validate(raw, max_quarantine_rate=0.2).valid.reset_index(drop=True)


def test_clean_drill_passes(tmp_path: Path) -> None:
    from mlgates.gates import new_feature_drill
    from mlref.features.drill import drill_steps

    steps = drill_steps(_max_7d(), _events(), tmp_path / "drill")  # type: ignore[arg-type]
    result = new_feature_drill(steps, feature="max_amount_7d")
    assert result.verdict == "pass", result.explain()
    assert result.details["passed_steps"] == list(steps)


def test_an_unsupported_kind_fails_naming_the_step(tmp_path: Path) -> None:
    from mlgates.gates import new_feature_drill
    from mlref.features.drill import drill_steps

    median = replace(_max_7d(), name="median_amount_7d", aggregation="median")  # type: ignore[type-var]
    steps = drill_steps(median, _events(), tmp_path / "drill")  # type: ignore[arg-type]
    result = new_feature_drill(steps, feature="median_amount_7d")
    assert result.verdict == "fail"
    assert result.details["failed_step"] == "offline rows"
    assert "'median'" in result.details["error"]
    assert "feast apply + materialize" in result.details["not_run"]


def _run_copy(tmp_path: Path, module: str, old: str, new: str) -> dict[str, Any]:
    """The drill script on a copy of src/ with ``old`` -> ``new`` in ``module``, first on
    the path; returns the gate result's verdict and details."""
    copy = tmp_path / "copy"
    shutil.copytree(SRC, copy / "src", ignore=shutil.ignore_patterns("__pycache__"))
    path = copy / "src" / "mlref" / "features" / module
    text = path.read_text()
    assert old in text  # the mutation must apply to the code it claims to change
    path.write_text(text.replace(old, new))
    env = {**os.environ, "PYTHONPATH": str(copy / "src")}
    done = subprocess.run(
        [sys.executable, "-c", DRILL, str(tmp_path / "drill")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_an_online_path_with_hand_coded_kinds_fails_naming_it(tmp_path: Path) -> None:
    result = _run_copy(tmp_path, "online.py", '    "max": _max,\n', "")
    assert result["verdict"] == "fail"
    assert result["details"]["failed_step"] == "online aggregator"
    assert result["details"]["passed_steps"] == ["offline rows"]


def test_offline_and_online_deriving_a_kind_differently_fail_parity(tmp_path: Path) -> None:
    # the offline reduction of "max" keeps the smallest amount: both paths build, they differ
    result = _run_copy(tmp_path, "offline.py", "np.maximum, -np.inf", "np.minimum, -np.inf")
    assert result["verdict"] == "fail"
    assert result["details"]["failed_step"] == "online aggregator"
    assert "feature_parity gate says fail" in result["details"]["error"]
