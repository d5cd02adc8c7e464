"""pytest entry point for mlgates (placeholder until the plugin lands)."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mlgates", "ML quality gates")
    group.addoption("--mlgates", action="store_true", default=False, help="run the ML gates")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "mlgate(name, **overrides): an ML quality gate test")
