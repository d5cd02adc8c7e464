"""Load tests, the server launcher for them, and the traffic they send.

``run_load`` (``mlref.load.runner``) starts the scoring server, drives it with Locust
(``mlref.load.locustfile``) and evaluates the latency, cost and error budgets; ``python -m
mlref.load`` is its command line. Names resolve lazily: importing this package imports nothing
heavy, and never Locust (it monkey-patches the standard library with gevent).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "run_load": "mlref.load.runner",
    "summarize": "mlref.load.runner",
    "running_server": "mlref.load.runner",
    "LoadSummary": "mlref.load.runner",
    "DEFAULT_HOURLY_USD": "mlref.load.runner",
    "build_small_system": "mlref.load.system",
    "SmallSystem": "mlref.load.system",
    "read_raw": "mlref.load.rawlog",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mlref.load' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
