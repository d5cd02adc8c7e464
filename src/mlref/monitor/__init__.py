"""Production monitoring over the prediction log.

``read_log`` reads a window of the serving log; ``monitor`` checks it (feature PSI against
the training-time frozen bins, prediction drift, latency p99; every figure from mlgates) and
returns a ``MonitorReport`` with alerts; ``monitor_versions`` splits a window by the model
version that made each prediction and judges each part against that version's reference
(a ``MonitorRun``); ``write_html`` renders the self-contained report; ``run_monitor`` is
what the ``mlref monitor`` command runs (exit status 2 when any alert is critical, so a
scheduler sees a failure).
"""

from __future__ import annotations

from mlref.monitor.alerts import EXIT_CRITICAL, EXIT_OK, Alert, AlertThresholds
from mlref.monitor.drift import ModelReference, monitor, monitor_versions, run_monitor
from mlref.monitor.log import PREDICTION_LOG_COLUMNS, feature_columns, read_log
from mlref.monitor.report import MonitorReport, MonitorRun
from mlref.monitor.report_html import render_html, write_html

__all__ = [
    "EXIT_CRITICAL",
    "EXIT_OK",
    "PREDICTION_LOG_COLUMNS",
    "Alert",
    "AlertThresholds",
    "ModelReference",
    "MonitorReport",
    "MonitorRun",
    "feature_columns",
    "monitor",
    "monitor_versions",
    "read_log",
    "render_html",
    "run_monitor",
    "write_html",
]
