"""Policy gates, each failing on a real defect of mlref next to its clean twin.

- ``pii_scan``: a prediction log that also records the customer's e-mail (a log schema
  change "for support lookups": a private copy of the session's SQLite log gains a
  ``customer_email`` column filled from the raw events' e-mail per user; ``read_log`` does not
  select it, the scan of the whole database finds it) fails, naming the log database and the
  e-mail pattern with a masked example; the session's own log, and every other source of the
  gate test, pass.
"""

from __future__ import annotations

import importlib.util
import sqlite3
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import ServedLog

    from mlref.pipeline import ReferenceSystem


def gate_suite() -> ModuleType:
    """tests/gates/test_policy_gates.py as a module (test modules are not importable by name),
    so the proof scans exactly the sources the gate test scans."""
    path = Path(__file__).parents[1] / "gates" / "test_policy_gates.py"
    spec = importlib.util.spec_from_file_location("mlref_gate_suite_policy", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pii_scan_fails_on_an_email_leaked_into_the_prediction_log(
    reference_system: ReferenceSystem, served_log: ServedLog, tmp_path: Path
) -> None:
    from mlgates.gates import pii_scan
    from mlref.data.columns import EMAIL, USER_ID
    from mlref.serve.predlog import TABLE

    suite = gate_suite()
    sources = suite.pii_sources(reference_system)
    clean = pii_scan(sources)
    assert clean.verdict == "pass", clean.explain()

    leaky = tmp_path / "predictions.sqlite"
    leaky.write_bytes(suite.sqlite_bytes(reference_system.settings.prediction_log))
    emails = reference_system.raw.drop_duplicates(USER_ID).set_index(USER_ID)[EMAIL]
    con = sqlite3.connect(leaky)
    try:
        with con:  # one transaction, committed
            con.execute(f"ALTER TABLE {TABLE} ADD COLUMN customer_email TEXT")
            users = [u for (u,) in con.execute(f"SELECT DISTINCT user_id FROM {TABLE}")]
            con.executemany(
                f"UPDATE {TABLE} SET customer_email = ? WHERE user_id = ?",
                [(emails[u], u) for u in users if u in emails.index],
            )
    finally:
        con.close()
    result = pii_scan({**sources, "prediction_log_db": suite.sqlite_bytes(leaky)})
    assert result.verdict == "fail", result.explain()
    found = {(f["source"], f["pattern"]) for f in result.details["findings"]}
    assert found == {("prediction_log_db", "email")}
    assert result.measured >= len(served_log.log["user_id"].unique())
    text = result.explain()
    assert "prediction_log_db: email x" in text
    assert not any(e in text for e in emails)  # masked, never the address
