"""Synthetic prediction logs written straight into the serving SQLite schema."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

FEATURES = (
    "txn_velocity_24h",
    "avg_order_30d",
    "amount_vs_user_avg",
    "seconds_since_last_txn",
    "merchant_category_code",
    "log_amount",
    "hour_of_day",
    "day_of_week",
)
DDL = """
CREATE TABLE IF NOT EXISTS predictions (
    request_id TEXT, ts REAL, event_timestamp REAL, transaction_id TEXT, user_id INTEGER,
    features TEXT, score REAL, decision INTEGER, threshold REAL, model_version TEXT,
    latency_ms REAL, shadow_score REAL NULL, shadow_version TEXT NULL, unknown_user INTEGER
)
"""
START = pd.Timestamp("2026-03-01T00:00:00+00:00")
THRESHOLD = 0.08


def synth_log(
    n: int = 2000,
    seed: int = 0,
    *,
    drift: float = 0.0,
    slow: bool = False,
    start: pd.Timestamp = START,
    hours: float = 6.0,
    threshold: float = THRESHOLD,
    shadow: bool = False,
    prefix: str = "t",
) -> pd.DataFrame:
    """Rows in the log's raw schema; ``drift`` in [0, 1] scales the amount/category shift."""
    rng = np.random.default_rng(seed)
    amount = rng.lognormal(3.5, 1.0, n) * (1.0 + 1.5 * drift)
    avg = rng.lognormal(3.5, 0.6, n)
    category = rng.integers(0, 8, n)
    if drift:
        crypto = rng.random(n) < 0.3 * drift
        category = np.where(crypto, 8, category)
    feats = pd.DataFrame(
        {
            "txn_velocity_24h": rng.poisson(2.0, n).astype(float),
            "avg_order_30d": avg,
            "amount_vs_user_avg": amount / avg,
            "seconds_since_last_txn": rng.exponential(20_000.0, n),
            "merchant_category_code": category.astype(float),
            "log_amount": np.log1p(amount),
            "hour_of_day": rng.integers(0, 24, n).astype(float),
            "day_of_week": rng.integers(0, 7, n).astype(float),
        }
    )
    z = -3.6 + 0.9 * (feats["log_amount"] - 3.5) + 0.25 * feats["txn_velocity_24h"]
    z = z + rng.normal(0, 0.8, n)
    score = 1.0 / (1.0 + np.exp(-z.to_numpy()))
    ts = start.timestamp() + np.sort(rng.uniform(0, hours * 3600.0, n))
    latency = rng.gamma(4.0, 2.0, n) * (8.0 if slow else 1.0)
    frame = pd.DataFrame(
        {
            "request_id": [f"r-{prefix}{seed}-{i:06d}" for i in range(n)],
            "ts": ts,
            "event_timestamp": ts - rng.uniform(0.0, 2.0, n),
            "transaction_id": [f"{prefix}{seed:02d}{i:07d}" for i in range(n)],
            "user_id": rng.integers(1, 500, n),
            "features": [
                json.dumps(dict(zip(FEATURES, map(float, row), strict=True)))
                for row in feats.to_numpy()
            ],
            "score": score,
            "decision": (score >= threshold).astype(int),
            "threshold": threshold,
            "model_version": "3",
            "latency_ms": latency,
            "shadow_score": np.nan,
            "shadow_version": None,
            "unknown_user": (rng.random(n) < 0.02).astype(int),
        }
    )
    if shadow:
        zs = z.to_numpy() + rng.normal(0, 0.5, n)
        frame["shadow_score"] = 1.0 / (1.0 + np.exp(-zs))
        frame["shadow_version"] = "4"
    return frame


def write_log(path: Path, frame: pd.DataFrame) -> Path:
    con = sqlite3.connect(path)
    try:
        con.execute(DDL)
        rows = [
            tuple(None if (isinstance(v, float) and np.isnan(v)) else v for v in rec)
            for rec in frame.itertuples(index=False, name=None)
        ]
        with con:
            con.executemany(f"INSERT INTO predictions VALUES ({', '.join('?' * 14)})", rows)
    finally:
        con.close()
    return path


@pytest.fixture
def log_writer(tmp_path: Path) -> Callable[..., Path]:
    """``log_writer(frame, name="log.sqlite") -> path`` writes a synthetic log."""
    counter = {"n": 0}

    def _write(frame: pd.DataFrame, name: str | None = None) -> Path:
        counter["n"] += 1
        return write_log(tmp_path / (name or f"log{counter['n']}.sqlite"), frame)

    return _write


@pytest.fixture
def synth() -> Callable[..., pd.DataFrame]:
    """``synth(n, seed, drift=..., slow=..., shadow=...)`` -> raw log rows (see synth_log)."""
    return synth_log


@pytest.fixture(scope="module")
def reference() -> tuple[object, np.ndarray, list[str]]:
    """Training-time artefacts: FrozenBins fitted on reference features, reference scores,
    and the feature names (reference = synth_log(3000, seed=100))."""
    from mlgates import FrozenBins

    raw = synth_log(3000, seed=100)
    feats = pd.DataFrame([json.loads(s) for s in raw["features"]])
    return FrozenBins.fit(feats), raw["score"].to_numpy(), list(feats.columns)
