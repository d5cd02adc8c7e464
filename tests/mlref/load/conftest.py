"""Fixtures for the load tests: a small but real reference system (Feast store + ONNX model)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def small_system(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Generated data -> Feast (SQLite online store) -> a small XGBoost model -> ONNX."""
    from mlref.load.system import build_small_system
    from mlref.settings import make_settings

    workdir: Path = tmp_path_factory.mktemp("load-system")
    settings = make_settings(workdir, n_users=60, days=14, fraud_rate=0.05, seed=3)
    return build_small_system(settings, quick=True)
