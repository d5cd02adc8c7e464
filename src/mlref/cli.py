"""`mlref`: the reference system's command line.

Start-up stays fast: every subcommand imports its stage only when it runs, so `mlref --help`
never pays for Feast, MLflow or XGBoost.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from mlref.settings import DEFAULT_WORKDIR

Handler = Callable[[argparse.Namespace], int]


class WorkdirNotReady(Exception):
    """The workdir is not in the state a command needs (an artefact is missing, or the demo
    would pile onto a previous run); the message names the command to run. Answered with
    one line and exit code 1, no traceback."""


def _shown(path: Path) -> str:
    """``path`` as the user would type it: relative to the current directory when inside it."""
    try:
        return str(path.relative_to(Path.cwd())) or "."
    except ValueError:
        return str(path)


def _command(args: argparse.Namespace, *words: str) -> str:
    """The command line a user types next, with the same ``--workdir`` as this one."""
    where = f" --workdir {args.workdir}" if getattr(args, "workdir", None) else ""
    return f"uv run mlref {' '.join(words)}{where}"


# what a command can need from its workdir, in the order the pipeline makes it: (need, what
# its absence is called, the commands that make it)
_MAKERS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("data", "no transactions", ("generate",)),
    ("features", "no feature store", ("features",)),
    ("registry", "no model registry", ("train",)),
    ("champion", "no model registry", ("train", "promote")),
)


def _require(args: argparse.Namespace, settings, needs: Sequence[str]) -> None:
    """Raise :class:`WorkdirNotReady` naming what is missing and the commands that make it,
    from the first missing step on, in the order to run them. Checks files only: nothing
    is opened, nothing created (opening the registry creates an empty MLflow database)."""
    present = {
        "data": settings.raw_path.exists(),
        "features": (settings.feature_repo / "feature_store.yaml").exists(),
        # only the default SQLite registry can be checked without connecting
        "registry": settings.tracking_uri is not None
        or (settings.mlflow_dir / "mlflow.db").exists(),
        "predictions": settings.prediction_log.exists(),
    }
    present["champion"] = present["registry"]
    where = _shown(settings.workdir)
    demo = _command(args, "demo")
    if "predictions" in needs and not present["predictions"]:
        # only a server writes the log: the demo serves live traffic (and builds the rest)
        raise WorkdirNotReady(
            f"no prediction log in {where}: run `{demo}` (or send requests to "
            f"`{_command(args, 'serve')}`)"
        )
    needed = [i for i, step in enumerate(_MAKERS) if step[0] in needs]
    missing = [i for i in needed if not present[_MAKERS[i][0]]]
    if not missing:
        return
    what = ", ".join(dict.fromkeys(_MAKERS[i][1] for i in missing))
    # from the first step whose output is absent (needed or not: each makes the next one's
    # input) through the last needed one
    upto = needed[-1] + 1
    first = next(i for i in range(upto) if not present[_MAKERS[i][0]])
    commands = [cmd for step in _MAKERS[first:upto] for cmd in step[2]]
    chain = " && ".join(_command(args, cmd) for cmd in dict.fromkeys(commands))
    raise WorkdirNotReady(f"{what} in {where}: run `{chain}` (or `{demo}` for all of it)")


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

    return validate_events(settings, read_parquet(settings.raw_path)).valid


def _training_frame(settings):
    from mlref.features.store import open_feature_store, training_frame

    return training_frame(open_feature_store(settings), _load_events(settings))


def _demo(args: argparse.Namespace) -> int:
    from mlref.pipeline import run_demo

    settings = _settings(args)
    # a second run on the first one's state would judge a mix of both (monitoring, registry
    # versions): start clean, but only when asked, since it deletes the first run
    existing = settings.system_entries()
    if existing and not args.fresh:
        raise WorkdirNotReady(
            f"{_shown(settings.workdir)} already holds an mlref run "
            f"({', '.join(p.name for p in existing)}): `{_command(args, 'demo', '--fresh')}` "
            "deletes it and starts over"
        )
    if existing:
        settings.clear()
        print(
            f"starting over: removed {', '.join(p.name for p in existing)} "
            f"from {_shown(settings.workdir)}"
        )
    return run_demo(settings, serve_requests=args.requests)


def _generate(args: argparse.Namespace) -> int:
    from mlref.data.generate import generate_transactions, write_parquet
    from mlref.progress import stage
    from mlref.settings import save_data_config

    settings = _settings(args)
    with stage("generate transactions"):
        events = generate_transactions(settings.data, scale=args.scale)
        path = write_parquet(events, settings.raw_path)
        save_data_config(settings)
    print(f"{len(events)} transactions ({events['is_fraud'].mean():.2%} fraud) -> {path}")
    return 0


def _features(args: argparse.Namespace) -> int:
    from mlref.features.store import build_feature_store
    from mlref.progress import stage

    settings = _settings(args)
    timings: dict[str, float] = {}
    with stage("validate + Feast apply + materialize"):
        events = _load_events(settings)
        settings.ensure_dirs()
        build_feature_store(settings, events, timings=timings)
    print(
        f"feature store at {settings.feature_repo}: "
        + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items())
    )
    return 0


def _train(args: argparse.Namespace) -> int:
    from mlref.pipeline import burn_in
    from mlref.progress import stage
    from mlref.train.pipeline import run_training

    settings = _settings(args)
    with stage("training rows (Feast historical)"):
        frame = _training_frame(settings)
    with stage("train + export + register"):
        # the same training start as the demo's model: same data, same model from every
        # entry point
        run = run_training(settings, frame, **burn_in(frame))
    print(run.describe())
    return 0


def _promote(args: argparse.Namespace) -> int:
    from mlref.progress import stage
    from mlref.promote import promote

    settings = _settings(args)
    shadow_log = None
    if settings.prediction_log.exists():
        from mlref.monitor.log import read_log

        shadow_log = read_log(settings.prediction_log)
    with stage("evaluation rows (Feast historical)"):
        frame = _training_frame(settings)
    with stage("champion vs challenger through the gates"):
        decision = promote(settings, frame, apply=not args.dry_run, shadow_log=shadow_log)
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


def _canary(args: argparse.Namespace) -> int:
    from mlref.canary.cli import run

    return run(args, _settings(args))


def _serve(args: argparse.Namespace) -> int:
    from mlref.serve.config import ServeConfig
    from mlref.serve.run import StartupFailed, serve

    settings = _settings(args)
    log_knobs = {
        key: getattr(args, key)
        for key in ("log_sync", "log_max_rows", "log_max_age_s", "log_max_file_bytes")
        if getattr(args, key) is not None
    }
    try:
        serve(settings, config=ServeConfig.from_settings(settings, gc_freeze=True, **log_knobs))
    except StartupFailed as exc:  # logged with its traceback above; the last line says why
        print(f"mlref serve: {exc}", file=sys.stderr)
        return 1
    return 0


def _monitor(args: argparse.Namespace) -> int:
    from functools import partial

    from mlref.monitor.drift import numbered_report_paths, run_monitor
    from mlref.monitor.references import registry_references

    settings = _settings(args)
    # a new numbered report each run: the demo's monitor.html and earlier runs stay as written
    json_path, html_path = numbered_report_paths(settings.reports_dir)
    return run_monitor(
        settings.prediction_log,
        None,
        None,
        settings.p99_budget_ms,
        # each prediction judged against the reference of the model version that made it
        references=partial(registry_references, settings),
        start=args.start,
        end=args.end,
        json_path=json_path,
        html_path=html_path,
    )


def _explain(args: argparse.Namespace) -> int:
    from mlref.explain import explain_transaction

    settings = _settings(args)
    try:
        explanation = explain_transaction(
            settings, args.transaction_id, with_online_row=not args.no_online
        )
    except LookupError as exc:  # not in the log: the user's to fix, no traceback
        print(f"mlref explain: {exc}", file=sys.stderr)
        return 1
    print(explanation.to_json() if args.json else explanation.summary())
    # the explanation's own checks: contributions + bias reproduce the served margin, which
    # reproduces the served score
    return 0 if explanation.consistent else 1


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

    from mlref.batch import batch_features, frame_scorer, score_batch, staleness_gate
    from mlref.progress import stage
    from mlref.registry import CHAMPION, Registry

    settings = _settings(args)
    as_of = pd.Timestamp(args.as_of)
    if as_of.tzinfo is None:
        raise SystemExit("--as-of needs a time zone, e.g. 2026-03-31T00:00:00+00:00")
    events = _load_events(settings)
    champion = Registry(settings).load(CHAMPION)
    # native XGBoost above the measured crossover (thousands of users per call), ONNX below
    scorer = frame_scorer(champion.onnx_path, champion.card.get("feature_names"))

    def features(entity_df: pd.DataFrame) -> pd.DataFrame:
        return batch_features(None, entity_df, events=events)

    with stage(f"score every active user as of {as_of.isoformat()}"):
        predictions = score_batch(
            events,
            as_of,
            features,
            scorer,
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
    from mlref.progress import stage
    from mlref.promote import promote
    from mlref.train.pipeline import run_training

    settings = _settings(args)
    queue = settings.workdir / "flywheel" / "review_queue.sqlite"
    feedback = labelled_feedback(queue)
    events = merge_feedback(_load_events(settings), feedback)
    print(f"{events.attrs['feedback_applied']} of {len(feedback)} reviewed labels merged")
    with stage("Feast apply + materialize"):
        store = build_feature_store(settings, events)
    with stage("training rows (Feast historical)"):
        frame = training_frame(store, events)
    with stage("train + export + register"):
        run = run_training(settings, frame, **burn_in(frame))
    print(run.describe())
    print(feedback_use(feedback, events, run.result.split, run.result.config.test_end).explain())
    with stage("champion vs challenger through the gates"):
        decision = promote(settings, frame)
    print(decision.explain())
    return 0 if decision.promoted else 1


def _load(args: argparse.Namespace) -> int:
    from mlref.load.cli import main as load_main

    # `mlref load -- -u 4 -t 10s`: argparse keeps the "--" that lets the options through
    extra = args.locust_args[1:] if args.locust_args[:1] == ["--"] else args.locust_args
    return int(load_main(["--workdir", str(_settings(args).workdir), *extra]))


def _new(args: argparse.Namespace) -> int:
    from mlref.new import new_project

    try:
        dest = new_project(
            Path(args.destination),
            dict(args.data),
            source=args.template,
            vcs_ref=args.vcs_ref,
            defaults=args.defaults,
            lock=not args.no_lock,
        )
    except ValueError as exc:  # copier's refusal of an answer or of a template path
        print(f"mlref new: {exc}", file=sys.stderr)
        return 2
    print(f"new project in {_shown(dest)}; next: cd {_shown(dest)} && git init && git add -A")
    print("  && git commit -m 'from the mlref template', then its README's two commands")
    return 0


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlref",
        description="Reference fraud-detection system: data -> Feast -> XGBoost -> ONNX -> "
        "MLflow -> FastAPI, enforced by mlgates.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(
        name: str, handler: Handler, help_: str, needs: tuple[str, ...] = ()
    ) -> argparse.ArgumentParser:
        """``needs``: what the command reads from the workdir (see :func:`_require`)."""
        p = sub.add_parser(name, help=help_, description=help_)
        p.add_argument(
            "--workdir",
            default=None,
            help=f"where every artefact goes (default: $MLREF_HOME or ./{DEFAULT_WORKDIR})",
        )
        p.set_defaults(handler=handler, needs=needs)
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
    demo.add_argument(
        "--fresh",
        action="store_true",
        help="delete the previous run in the workdir first (without it a re-run refuses)",
    )
    gen = add("generate", _generate, "generate seeded synthetic transactions")
    data_knobs(gen)
    gen.add_argument(
        "--scale", type=_positive_float, default=1.0, help="multiply n_users (benchmarks)"
    )
    data_knobs(
        add("features", _features, "validate, build and materialise the Feast store", ("data",))
    )
    data_knobs(
        add(
            "train",
            _train,
            "train, export to ONNX and register a challenger",
            ("data", "features"),
        )
    )
    promote = add(
        "promote",
        _promote,
        "gate the challenger against the champion; promote",
        ("data", "features", "registry"),
    )
    data_knobs(promote)
    promote.add_argument("--dry-run", action="store_true", help="decide without moving the alias")
    add("rollback", _rollback, "move champion back to the previous version", ("registry",))
    from mlref.canary.cli import add_arguments as canary_arguments

    canary_arguments(
        add("canary", _canary, "canary rollout of the challenger: start / status / stop")
    )
    serve = add("serve", _serve, "serve the champion on 127.0.0.1 (FastAPI + ONNX Runtime)")
    serve.add_argument("--port", type=_positive_int, default=None)
    # the prediction log's durability and retention (docs/prediction-log.md)
    serve.add_argument(
        "--log-sync",
        action="store_true",
        default=None,
        help="commit each request's log rows before answering (SIGKILL loses no answered row)",
    )
    serve.add_argument(
        "--log-max-rows",
        type=_positive_int,
        default=None,
        help="keep at most this many log rows, deleting the oldest (default 2000000, ~1 GB)",
    )
    serve.add_argument(
        "--log-max-age-s",
        type=_positive_float,
        default=None,
        help="delete log rows older than this many seconds (default: no age cap)",
    )
    serve.add_argument(
        "--log-max-file-bytes",
        type=_positive_int,
        default=None,
        help="hard cap on the log file; rows past it are dropped and counted (disk_full)",
    )
    monitor = add(
        "monitor",
        _monitor,
        "drift and latency alerts over the prediction log",
        ("champion", "predictions"),
    )
    monitor.add_argument("--start", default=None, help="window start (ISO time, inclusive)")
    monitor.add_argument("--end", default=None, help="window end (ISO time, exclusive)")
    explain = add(
        "explain",
        _explain,
        "one served prediction step by step: request, inputs and their sources, "
        "per-feature contributions, threshold and decision",
        ("predictions", "registry"),
    )
    explain.add_argument("transaction_id", help="a transaction_id from the prediction log")
    explain.add_argument("--json", action="store_true", help="print the explanation as JSON")
    explain.add_argument(
        "--no-online",
        dest="no_online",
        action="store_true",
        help="skip reading the user's current online-store row (no Feast import)",
    )
    data_knobs(
        add(
            "shadow-report",
            _shadow_report,
            "champion vs shadow over the prediction log",
            ("predictions",),
        )
    )
    batch = add(
        "score-batch",
        _score_batch,
        "score every active user as of a time",
        ("data", "champion"),
    )
    data_knobs(batch)
    batch.add_argument("--as-of", dest="as_of", required=True, help="ISO time with zone")
    batch.add_argument("--now", default=None, help="check staleness at this time (default now)")
    batch.add_argument("--max-age-hours", dest="max_age_hours", type=_positive_float, default=12)
    data_knobs(
        add("retrain", _retrain, "retrain with reviewed labels, gate and promote", ("data",))
    )
    load = add("load", _load, "Locust load against a local server (see nox -s load)", ("champion",))
    load.add_argument(
        "locust_args",
        nargs=argparse.REMAINDER,
        help="options for the runner after --, e.g. `mlref load -- -u 4 -t 10s`",
    )
    # no --workdir: it writes a project, not artefacts
    new_help = "a new project from the mlref copier template (docs/template.md)"
    new = sub.add_parser("new", help=new_help, description=new_help)
    new.set_defaults(handler=_new, needs=(), workdir=None)
    new.add_argument("destination", help="directory of the new project")
    new.add_argument(
        "-d",
        "--data",
        action="append",
        default=[],
        type=_answer,
        metavar="KEY=VALUE",
        help="answer a question (package_name, port, ...); repeatable",
    )
    new.add_argument("--defaults", action="store_true", help="ask nothing: defaults for the rest")
    new.add_argument("--template", default=None, help="template path or git URL (default: here)")
    new.add_argument("--vcs-ref", dest="vcs_ref", default=None, help="template git tag or commit")
    new.add_argument("--no-lock", dest="no_lock", action="store_true", help="skip `uv lock`")
    return parser


def _answer(text: str) -> tuple[str, str]:
    from mlref.new import parse_answer

    try:
        return parse_answer(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


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
    from mlref.progress import stderr_log_handler

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        # follows sys.stderr, so log lines print above a live progress line, not through it
        handlers=[
            stderr_log_handler("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
        ],
    )
    # Feast logs every registry refresh at INFO; keep the demo's progress readable
    logging.getLogger("feast").setLevel(logging.WARNING)
    # one line per request from the demo's client would drown the progress lines
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # MLflow configures its own handler from this variable when imported; its INFO lines
    # ("Creating initial MLflow database tables...") are its bookkeeping, its warnings stay
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    from mlgates.result import GateInputError

    try:
        _require(args, _settings(args), args.needs)
        return int(args.handler(args))
    except WorkdirNotReady as exc:
        print(f"mlref {args.command}: {exc}", file=sys.stderr)
        return 1
    except (GateInputError, FileNotFoundError) as exc:
        # unusable input is the user's to fix: say what, without a traceback
        print(f"mlref {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        # the registry's refusals (no champion yet, nothing to roll back) and stale data say
        # what to do; anything else is a bug and keeps its traceback. (Looked up, not
        # imported: importing the registry costs seconds, and raising it imported it.)
        refusals = (
            getattr(sys.modules.get("mlref.registry"), "RegistryError", None),
            getattr(sys.modules.get("mlref.pipeline"), "StaleData", None),
        )
        if not isinstance(exc, tuple(kind for kind in refusals if kind is not None)):
            raise
        print(f"mlref {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
