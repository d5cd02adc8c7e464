"""`mlref`: the reference system's command line.

Start-up stays fast: every subcommand imports its stage only when it runs, so `mlref --help`
never pays for Feast, MLflow or XGBoost.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

Handler = Callable[[argparse.Namespace], int]


def _settings(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from mlref.settings import make_settings

    overrides: dict[str, object] = {}
    for key in ("n_users", "days", "fraud_rate", "seed"):
        value = getattr(args, key, None)
        if value is not None:
            overrides[key] = value
    return make_settings(args.workdir, **overrides)


def _demo(args: argparse.Namespace) -> int:
    from mlref.pipeline import run_demo

    return run_demo(_settings(args), serve_requests=args.requests)


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlref",
        description="Reference fraud-detection system: data -> Feast -> XGBoost -> ONNX -> "
        "MLflow -> FastAPI, enforced by mlgates.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Handler, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.add_argument(
            "--workdir",
            default=None,
            help="where every artefact goes (default: $MLREF_HOME or ./.mlref)",
        )
        p.set_defaults(handler=handler)
        return p

    demo = add("demo", _demo, "run the whole reference system end to end")
    demo.add_argument("--n-users", dest="n_users", type=_positive_int, default=None)
    demo.add_argument("--days", type=_positive_int, default=None)
    demo.add_argument("--seed", type=int, default=None)
    demo.add_argument(
        "--requests", type=_positive_int, default=400, help="requests sent to the demo server"
    )
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number above 0, got {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
