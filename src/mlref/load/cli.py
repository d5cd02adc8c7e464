"""``python -m mlref.load``: a bounded Locust load test against a local scoring server.

Prints the summary once and exits 0 when every budget held, 1 when one broke, 2 when nothing
could be measured: bad usage, a workdir without a built system (one line naming the command
that builds it, nothing written), or a server that could not start (its own reason, one line).
The workdir defaults to the one ``uv run mlref demo`` builds (``mlref.settings``: $MLREF_HOME
or ./.mlref).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from mlref.load.budgets import (
    DEFAULT_HOURLY_USD,
    DEFAULT_MAX_ERROR_RATE,
    DEFAULT_MAX_USD_PER_MILLION,
)
from mlref.load.launcher import ServerStartError
from mlref.load.preflight import MissingArtefactError
from mlref.load.runner import run_load


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m mlref.load",
        description="Load test the scoring server with Locust and hold it to its budgets.",
    )
    p.add_argument(
        "--workdir",
        default=None,
        help="the built reference system (default: $MLREF_HOME or ./.mlref, as mlref demo)",
    )
    p.add_argument("--out", default=None, help="reports folder (default WORKDIR/reports/load)")
    p.add_argument("-u", "--users", type=int, default=20, help="simulated users (default 20)")
    p.add_argument("-r", "--spawn-rate", type=float, default=5.0, help="users started per s")
    p.add_argument("-t", "--run-time", default="30s", help="e.g. 30s, 2m (default 30s)")
    p.add_argument("--processes", type=int, default=None, help="Locust worker processes")
    p.add_argument("--host", default=None, help="a server already running on 127.0.0.1")
    p.add_argument("--model-path", default=None, help="serve this ONNX file, not the champion")
    p.add_argument("--p99-ms", type=float, default=None, help="p99 budget (default: settings)")
    p.add_argument("--hourly-usd", type=float, default=DEFAULT_HOURLY_USD)
    p.add_argument("--max-usd-per-million", type=float, default=DEFAULT_MAX_USD_PER_MILLION)
    p.add_argument("--max-error-rate", type=float, default=DEFAULT_MAX_ERROR_RATE)
    p.add_argument("--batching", choices=("on", "off"), default=None)
    p.add_argument("--max-wait-ms", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run a load test; 0 when every budget held, 1 when one broke, 2 when nothing could be
    measured (see the module docstring)."""
    args = build_parser().parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-7s %(message)s")
    from mlref.settings import make_settings

    overrides: dict[str, object] = {}
    if args.batching is not None:
        overrides["batching"] = args.batching == "on"
    if args.max_wait_ms is not None:
        overrides["max_wait_ms"] = args.max_wait_ms
    settings = make_settings(args.workdir, **overrides)
    out = Path(args.out) if args.out else settings.reports_dir / "load"
    try:
        summary = run_load(
            settings,
            args.users,
            args.spawn_rate,
            args.run_time,
            out,
            host=args.host,
            processes=args.processes,
            model_path=args.model_path,
            p99_budget_ms=args.p99_ms,
            hourly_usd=args.hourly_usd,
            max_usd_per_million=args.max_usd_per_million,
            max_error_rate=args.max_error_rate,
            seed=args.seed,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except MissingArtefactError as exc:
        print(exc, file=sys.stderr)
        return 2
    except ServerStartError as exc:
        print(exc.one_line(), file=sys.stderr)
        return 2
    print(summary.report())
    print(f"reports: {out}/summary.json, {out}/locust.html, {out}/locust_stats.csv")
    for gate in summary.failed_gates:
        print(gate.explain(), file=sys.stderr)
    return 0 if summary.passed else 1
