"""``mlref explain TRANSACTION_ID`` as a user runs it, on the session's served traffic."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import ServedLog

    from mlref.settings import Settings


def _explain(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MLREF_HOME", "COLUMNS")}
    return subprocess.run(
        [sys.executable, "-m", "mlref.cli", "explain", *args, "--workdir", str(settings.workdir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_explain_prints_the_served_prediction_step_by_step(
    ref_settings: Settings, served_log: ServedLog
) -> None:
    row = served_log.log.iloc[5]
    out = _explain(ref_settings, str(row["transaction_id"]), "--no-online")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert f"transaction {row['transaction_id']}" in text
    assert f"model version {row['model_version']}" in text
    assert "txn_request.amount" in text  # where log_amount came from: the request
    assert "explanation_consistency: PASS" in text
    assert "served score reproduced from the logged inputs" in text

    out = _explain(ref_settings, str(row["transaction_id"]), "--no-online", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["score"] == float(row["score"])
    total = data["bias"] + sum(f["contribution"] for f in data["features"])
    assert abs(total - data["served_margin"]) <= 1e-5


def test_explain_of_an_unknown_transaction_says_so(
    ref_settings: Settings, served_log: ServedLog
) -> None:
    out = _explain(ref_settings, "no-such-transaction", "--no-online")
    assert out.returncode == 1
    assert "not in the prediction log" in out.stderr
