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


def _settings(args: argparse.Namespace):
    from mlref.settings import make_settings

    overrides: dict[str, object] = {}
    for key in ("n_users", "days", "fraud_rate", "seed", "port"):
        value = getattr(args, key, None)
        if value is not None:
            overrides[key] = value
    return make_settings(args.workdir, **overrides)


def _load_events(settings):
    """Validated history from the raw parquet `mlref generate`/`mlref demo` wrote."""
    from mlref.data.generate import read_parquet
    from mlref.pipeline import validate_events

    if not settings.raw_path.exists():
        raise SystemExit(
            f"no data at {settings.raw_path}: run `mlref generate` (or `mlref demo`) first"
        )
    return validate_events(settings, read_parquet(settings.raw_path)).valid


def _training_frame(settings):
    from mlref.features.store import open_feature_store, training_frame

    return training_frame(open_feature_store(settings), _load_events(settings))


def _demo(args: argparse.Namespace) -> int:
    from mlref.pipeline import run_demo

    return run_demo(_settings(args), serve_requests=args.requests)


def _generate(args: argparse.Namespace) -> int:
    from mlref.data.generate import generate_transactions, write_parquet

    settings = _settings(args)
    events = generate_transactions(settings.data, scale=args.scale)
    path = write_parquet(events, settings.raw_path)
    print(f"{len(events)} transactions ({events['is_fraud'].mean():.2%} fraud) -> {path}")
    return 0


def _features(args: argparse.Namespace) -> int:
    from mlref.features.store import build_feature_store

    settings = _settings(args)
    settings.ensure_dirs()
    timings: dict[str, float] = {}
    build_feature_store(settings, _load_events(settings), timings=timings)
    print(
        f"feature store at {settings.feature_repo}: "
        + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items())
    )
    return 0


def _train(args: argparse.Namespace) -> int:
    from mlref.pipeline import burn_in
    from mlref.train.pipeline import run_training

    settings = _settings(args)
    frame = _training_frame(settings)
    # the same training start as the demo's model: same data, same model from every entry point
    run = run_training(settings, frame, **burn_in(frame))
    print(run.describe())
    return 0


def _promote(args: argparse.Namespace) -> int:
    from mlref.promote import promote

    settings = _settings(args)
    shadow_log = None
    if settings.prediction_log.exists():
        from mlref.monitor.log import read_log

        shadow_log = read_log(settings.prediction_log)
    decision = promote(
        settings, _training_frame(settings), apply=not args.dry_run, shadow_log=shadow_log
    )
    print(decision.explain())
    return 0 if decision.promoted else 1


def _rollback(args: argparse.Namespace) -> int:
    from mlref.registry import Registry, RegistryError

    try:
        previous, restored = Registry(_settings(args)).rollback()
    except RegistryError as exc:
        print(f"rollback refused: {exc}", file=sys.stderr)
        return 1
    print(f"champion rolled back: version {previous} -> {restored}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from mlref.serve.run import StartupFailed, serve

    try:
        serve(_settings(args))
    except StartupFailed as exc:  # logged with its traceback above; the last line says why
        print(f"mlref serve: {exc}", file=sys.stderr)
        return 1
    return 0


def _monitor(args: argparse.Namespace) -> int:
    from mlref.monitor.drift import run_monitor
    from mlref.registry import CHAMPION, Registry

    settings = _settings(args)
    champion = Registry(settings).load(CHAMPION)
    return run_monitor(
        settings.prediction_log,
        champion.bins_path,
        champion.reference_scores_path,
        settings.p99_budget_ms,
        start=args.start,
        end=args.end,
        json_path=settings.reports_dir / "monitor.json",
        html_path=settings.reports_dir / "monitor.html",
    )


def _shadow_report(args: argparse.Namespace) -> int:
    from mlref.monitor.log import read_log
    from mlref.shadow import shadow_report

    settings = _settings(args)
    labels = None
    if settings.raw_path.exists():
        from mlref.data.generate import read_parquet

        labels = read_parquet(settings.raw_path)[["transaction_id", "is_fraud", "label_timestamp"]]
    report = shadow_report(read_log(settings.prediction_log), labels)
    print(report.summary())
    return 0 if report.gate_result.passed else 1


def _score_batch(args: argparse.Namespace) -> int:
    import datetime as dt

    import pandas as pd

    from mlref.batch import batch_features, score_batch, staleness_gate
    from mlref.export import OnnxScorer
    from mlref.registry import CHAMPION, Registry

    settings = _settings(args)
    events = _load_events(settings)
    champion = Registry(settings).load(CHAMPION)
    scorer = OnnxScorer(champion.onnx_path)
    as_of = pd.Timestamp(args.as_of)
    if as_of.tzinfo is None:
        raise SystemExit("--as-of needs a time zone, e.g. 2026-03-31T00:00:00+00:00")

    def features(entity_df: pd.DataFrame) -> pd.DataFrame:
        return batch_features(None, entity_df, events=events)

    predictions = score_batch(
        events,
        as_of,
        features,
        lambda frame: scorer.score(frame.to_numpy(dtype="float32")),
        champion.version,
        threshold=float(champion.card["decision"]["threshold"]),
    )
    out = settings.artifacts_dir / "batch" / f"scores-{as_of:%Y%m%dT%H%M%S}.parquet"
    out.parent.mkdir(parents=True, exist_ok=True)
    predictions.to_parquet(out, index=False)
    print(f"{len(predictions)} users scored at {as_of.isoformat()} -> {out}")
    now = pd.Timestamp(args.now) if args.now else pd.Timestamp.now(tz="UTC")
    gate = staleness_gate(predictions, now, dt.timedelta(hours=args.max_age_hours))
    print(gate.explain())
    return 0 if gate.passed else 1


def _retrain(args: argparse.Namespace) -> int:
    from mlref.features.store import build_feature_store, training_frame
    from mlref.flywheel import feedback_use, labelled_feedback, merge_feedback
    from mlref.pipeline import burn_in
    from mlref.promote import promote
    from mlref.train.pipeline import run_training

    settings = _settings(args)
    queue = settings.workdir / "flywheel" / "review_queue.sqlite"
    feedback = labelled_feedback(queue)
    events = merge_feedback(_load_events(settings), feedback)
    print(f"{events.attrs['feedback_applied']} of {len(feedback)} reviewed labels merged")
    store = build_feature_store(settings, events)
    frame = training_frame(store, events)
    run = run_training(settings, frame, **burn_in(frame))
    print(run.describe())
    print(feedback_use(feedback, events, run.result.split, run.result.config.test_end).explain())
    decision = promote(settings, frame)
    print(decision.explain())
    return 0 if decision.promoted else 1


def _load(args: argparse.Namespace) -> int:
    from mlref.load.runner import main as load_main

    return int(load_main(["--workdir", str(_settings(args).workdir), *args.locust_args]))


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

    def data_knobs(p: argparse.ArgumentParser) -> None:
        p.add_argument("--n-users", dest="n_users", type=_positive_int, default=None)
        p.add_argument("--days", type=_positive_int, default=None)
        p.add_argument("--seed", type=int, default=None)

    demo = add("demo", _demo, "run the whole reference system end to end")
    data_knobs(demo)
    # 120 days: training starts after the 30-day feature burn-in and still has its windows
    demo.set_defaults(days=120)
    demo.add_argument(
        "--requests", type=_positive_int, default=400, help="requests sent to the demo server"
    )
    gen = add("generate", _generate, "generate seeded synthetic transactions")
    data_knobs(gen)
    gen.add_argument(
        "--scale", type=_positive_float, default=1.0, help="multiply n_users (benchmarks)"
    )
    data_knobs(add("features", _features, "validate, build and materialise the Feast store"))
    data_knobs(add("train", _train, "train, export to ONNX and register a challenger"))
    promote = add("promote", _promote, "gate the challenger against the champion; promote")
    data_knobs(promote)
    promote.add_argument("--dry-run", action="store_true", help="decide without moving the alias")
    add("rollback", _rollback, "move champion back to the previous version")
    serve = add("serve", _serve, "serve the champion on 127.0.0.1 (FastAPI + ONNX Runtime)")
    serve.add_argument("--port", type=_positive_int, default=None)
    monitor = add("monitor", _monitor, "drift and latency alerts over the prediction log")
    monitor.add_argument("--start", default=None, help="window start (ISO time, inclusive)")
    monitor.add_argument("--end", default=None, help="window end (ISO time, exclusive)")
    data_knobs(add("shadow-report", _shadow_report, "champion vs shadow over the prediction log"))
    batch = add("score-batch", _score_batch, "score every active user as of a time")
    data_knobs(batch)
    batch.add_argument("--as-of", dest="as_of", required=True, help="ISO time with zone")
    batch.add_argument("--now", default=None, help="check staleness at this time (default now)")
    batch.add_argument("--max-age-hours", dest="max_age_hours", type=_positive_float, default=12)
    data_knobs(add("retrain", _retrain, "retrain with reviewed labels, gate and promote"))
    load = add("load", _load, "Locust load against a local server (see nox -s load)")
    load.add_argument("locust_args", nargs=argparse.REMAINDER, help="options for the runner")
    return parser


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number above 0, got {value}")
    return value


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
    # Feast logs every registry refresh at INFO; keep the demo's progress readable
    logging.getLogger("feast").setLevel(logging.WARNING)
    # one line per request from the demo's client would drown the progress lines
    logging.getLogger("httpx").setLevel(logging.WARNING)
    from mlgates.result import GateInputError

    try:
        return int(args.handler(args))
    except (GateInputError, FileNotFoundError) as exc:
        # unusable input is the user's to fix: say what, without a traceback
        print(f"mlref {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
