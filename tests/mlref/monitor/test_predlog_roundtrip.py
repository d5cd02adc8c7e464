"""The serve helper's writer and the monitor's reader agree on the prediction log."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from mlref.monitor import read_log
from mlref.serve.predlog import PredictionLog, PredictionRecord, features_json

NAMES = ("txn_velocity_24h", "log_amount", "hour_of_day")


def _records(n: int, start: float) -> list[PredictionRecord]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        values = [float(rng.poisson(2)), float(rng.normal(3.5, 1)), float(i % 24)]
        if i == 3:
            values[1] = math.nan  # written as JSON null
        out.append(
            PredictionRecord(
                request_id=f"r{i}",
                ts=start + i,
                event_timestamp=start + i - 0.5,
                transaction_id=f"t{i:05d}",
                user_id=100 + i,
                features=features_json(NAMES, values),
                score=float(rng.random()),
                decision=int(i % 2),
                threshold=0.08,
                model_version="3",
                latency_ms=float(rng.gamma(4, 2)),
                shadow_score=None if i % 3 else float(rng.random()),
                shadow_version=None if i % 3 else "4",
                unknown_user=0,
                batch_size=1 if i % 5 else 5,
            )
        )
    return out


def test_rows_written_by_the_server_log_read_back(tmp_path) -> None:
    path = tmp_path / "logs" / "predictions.sqlite"
    records = _records(40, start=1_772_323_200.0)
    log = PredictionLog(path, flush_rows=8, flush_interval_s=0.05)
    log.start()
    try:
        log.append(records[:20])
        deadline = time.monotonic() + 10.0
        while log.written < 20 and time.monotonic() < deadline:
            time.sleep(0.02)
        # monitoring reads while the server is still writing (WAL, read-only connection)
        assert len(read_log(path)) == 20
        log.append(records[20:])
    finally:
        log.close()
    assert log.written == 40

    frame = read_log(path)
    assert frame["request_id"].tolist() == [r.request_id for r in records]
    assert frame.attrs["feature_names"] == list(NAMES)
    assert frame.loc[0, "log_amount"] == pytest.approx(
        float(records[0].features.split('"log_amount": ')[1].split(",")[0])
    )
    assert math.isnan(frame.loc[3, "log_amount"])
    assert frame["shadow_score"].notna().sum() == sum(r.shadow_score is not None for r in records)
    assert frame["ts"].iloc[0].timestamp() == pytest.approx(records[0].ts)
    assert frame["batch_size"].tolist() == [r.batch_size for r in records]
    window = read_log(path, start=records[10].ts, end=records[20].ts)
    assert window["transaction_id"].tolist() == [r.transaction_id for r in records[10:20]]
