"""Load tests, the server launcher for them, and the traffic they send.

``run_load`` (``mlref.load.runner``) starts the scoring server (``mlref.load.launcher``),
drives it with Locust (``mlref.load.locust_run``, ``mlref.load.locustfile``) and summarises
the run (``mlref.load.summary``) against the latency, cost and error budgets
(``mlref.load.budgets``); ``python -m mlref.load`` (``mlref.load.cli``) is its command line. Names resolve lazily: importing this package imports nothing
heavy, and never Locust (it monkey-patches the standard library with gevent).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "run_load": "mlref.load.runner",
    "summarize": "mlref.load.summary",
    "running_server": "mlref.load.launcher",
    "LoadSummary": "mlref.load.summary",
    "DEFAULT_HOURLY_USD": "mlref.load.budgets",
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
