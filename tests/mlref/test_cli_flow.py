"""The documented CLI, command by command, on a small workdir: generate -> features -> train ->
promote -> retrain with reviewed labels. Each step is the real one (Feast, XGBoost, ONNX,
MLflow on SQLite); the test checks exit codes and what each command tells its user."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlref.cli import main


def test_generate_features_train_promote_retrain(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlref.data.generate import read_parquet
    from mlref.flywheel import ReviewQueue, SimulatedReviewer
    from mlref.settings import make_settings

    data = ["--workdir", str(tmp_path), "--n-users", "200", "--days", "90", "--seed", "3"]
    assert main(["generate", *data]) == 0
    assert main(["features", *data]) == 0
    assert main(["train", *data]) == 0
    assert "registered   version 1 (alias challenger)" in capsys.readouterr().out
    assert main(["promote", *data]) == 0  # the first model has no champion to beat

    # a reviewer labels 20 stored transactions from the middle of the history
    settings = make_settings(tmp_path, n_users=200, days=90, seed=3)
    events = read_parquet(settings.raw_path)
    picked = events.iloc[len(events) // 3 :: 97].head(20)
    queue_path = tmp_path / "flywheel" / "review_queue.sqlite"
    queue_path.parent.mkdir(parents=True, exist_ok=True)
    queue = ReviewQueue(queue_path)
    queue.enqueue(
        pd.DataFrame(
            {
                "transaction_id": picked["transaction_id"].astype(str),
                "score": np.full(len(picked), 0.5),
                "threshold": np.full(len(picked), 0.5),
                "uncertainty": np.zeros(len(picked)),
            }
        )
    )
    assert SimulatedReviewer(events).review(queue, now=events["event_timestamp"].max()).labelled
    code = main(["retrain", *data])
    out = capsys.readouterr().out
    assert "20 of 20 reviewed labels merged" in out
    assert "reviewed labels are in this run's windows" in out
    assert "registered   version 2 (alias challenger)" in out
    # the reviews agree with the labels the history already had: the retrained model equals
    # the champion, which proves nothing better, so it is not promoted and the exit code says so
    assert "challenger version 2 NOT PROMOTED; champion 1 -> 1" in out
    assert code == 1
