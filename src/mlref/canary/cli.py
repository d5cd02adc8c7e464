"""``mlref canary start | status | stop``: the command-line side of a rollout.

``status`` judges the rollout on the prediction log joined with the labels known now
(default: the workdir's transactions file; ``--labels`` for another parquet file with
``transaction_id, is_fraud, label_timestamp, amount``) and prints each arm, the decision and
what would change it; ``--act`` carries a promote / rollback / stop decision out (what an
automated job runs on a schedule). Imported only when the command runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from mlref.canary.state import DecisionKnobs, RolloutError

if TYPE_CHECKING:
    from mlref.settings import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="canary_command", required=True, metavar="ACTION")
    start = sub.add_parser("start", help="route a share of users to the challenger")
    start.add_argument("--share", type=float, required=True, help="0.05 to 0.5 of users")
    start.add_argument("--version", default=None, help="version to canary (default challenger)")
    defaults = DecisionKnobs()
    for name, help_ in (
        ("margin", "non-inferiority margin, cost per transaction"),
        ("alpha", "error of the anytime-valid decision"),
        ("cost-cap", "a transaction's cost counts at most this much (the bound)"),
        ("max-loss", "backstop: extra cost the canary may run up before it is ended"),
    ):
        key = name.replace("-", "_")
        start.add_argument(
            f"--{name}", dest=key, type=float, default=getattr(defaults, key), help=help_
        )
    start.add_argument(
        "--latency-threshold-ms",
        dest="latency_threshold_ms",
        type=float,
        default=None,
        help="turn on the tail-latency guardrail at this threshold (e.g. the p99 budget)",
    )
    status = sub.add_parser("status", help="per-arm outcomes and the current decision")
    status.add_argument("--labels", default=None, help="parquet of labels (default: the data)")
    status.add_argument("--as-of", dest="as_of", default=None, help="label cutoff, ISO with zone")
    status.add_argument("--act", action="store_true", help="carry the decision out")
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    sub.add_parser("stop", help="end the rollout; the champion keeps all traffic")
    for p in sub.choices.values():  # --workdir after the action too
        p.add_argument("--workdir", default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def run(args: argparse.Namespace, settings: Settings) -> int:
    try:
        return _run(args, settings)
    except RolloutError as exc:
        print(f"mlref canary {args.canary_command}: {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from mlref.canary import control

    if args.canary_command == "start":
        knobs = DecisionKnobs(
            margin=args.margin,
            alpha=args.alpha,
            cost_cap=args.cost_cap,
            max_loss=args.max_loss,
            latency_threshold_ms=args.latency_threshold_ms,
        )
        rollout = control.start(settings, args.share, version=args.version, knobs=knobs)
        print(
            f"canary rollout {rollout.rollout_id}: version {rollout.canary_version} on "
            f"{rollout.share:.0%} of users (champion {rollout.champion_version}); a running "
            "server picks it up within a second"
        )
        return 0
    if args.canary_command == "stop":
        ended = control.stop(settings)
        print(f"canary rollout {ended.rollout_id} stopped: champion {ended.champion_version}")
        return 0
    import pandas as pd

    from mlref.canary.decide import act, status
    from mlref.canary.outcomes import LABEL_COLUMNS

    path = Path(args.labels) if args.labels else settings.raw_path
    labels = pd.read_parquet(path, columns=list(LABEL_COLUMNS)) if path.exists() else None
    as_of = pd.Timestamp(args.as_of) if args.as_of else pd.Timestamp.now(tz="UTC")
    judged = status(settings, labels, as_of=as_of)
    print(judged.to_json() if args.json else judged.summary())
    if args.act:
        after = act(settings, judged)
        print(f"rollout {judged.rollout.rollout_id}: {after}")
    return 0
