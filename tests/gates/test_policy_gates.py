"""Policy gates on the reference system: no personal data past the privacy step.

The raw history carries each user's card number, e-mail and purchase IP
(``generate_transactions(pii=True)``); ``mlref.data.privacy`` drops them before validation.
``pii_scan`` checks every place they must not reach: the feature store's offline rows, the
training set, the model artefacts (ONNX, native model, model card) and the prediction log
the server wrote while ``served_log`` replayed live traffic. tests/mutations/test_policy_gates.py
shows an e-mail leaked into the prediction log failing it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pathlib import Path

    from conftest import ServedLog

    from mlgates.fixture import Gates
    from mlref.pipeline import ReferenceSystem


def pii_sources(system: ReferenceSystem) -> dict[str, object]:
    """Everything downstream of the privacy step that the reference system keeps."""
    import pandas as pd

    from mlref.features.store import offline_parquet_path
    from mlref.monitor.log import read_log

    export = system.run.export
    return {
        "feature_rows": pd.read_parquet(offline_parquet_path(system.settings)),
        "training_set": system.frame,
        "model_onnx": export.onnx_path,
        "model_native": export.native_path,
        "model_card": export.card_path,
        "prediction_log": read_log(system.settings.prediction_log),
        # the whole database too: a column or table read_log does not select still holds
        # whatever was written
        "prediction_log_db": sqlite_bytes(system.settings.prediction_log),
    }


def sqlite_bytes(path: Path) -> bytes:
    """The database at ``path`` as one byte string, rows still in its write-ahead log
    included (the file alone can miss them); opened read-only, the server's log is untouched."""
    import sqlite3

    con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return con.serialize()
    finally:
        con.close()


@pytest.mark.mlgate("pii_scan")
def test_no_personal_data_past_the_privacy_step(
    mlgates: Gates, reference_system: ReferenceSystem, served_log: ServedLog
) -> None:
    """The raw history does hold personal data (else the scan proves nothing); nothing
    built from it does."""
    from mlgates.gates import pii_scan
    from mlref.data.columns import PII_COLUMNS

    assert set(PII_COLUMNS) <= set(reference_system.raw.columns)
    assert pii_scan({"raw": reference_system.raw.head(1000)}).verdict == "fail"
    assert len(served_log.log) > 0
    mlgates.run(pii_scan, pii_sources(reference_system))
