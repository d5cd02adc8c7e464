"""The reference system stage by stage, as `mlref demo` and the gate suite run it.

Each stage is a small function over explicit inputs; :func:`build_reference_system` chains
the offline half (data -> validation -> Feast -> training -> ONNX -> registry -> promotion)
and :func:`run_demo` adds the online half (server on 127.0.0.1 -> traffic -> monitoring ->
flywheel -> retrain -> promotion decision).

Live traffic: the generator draws ``days + live_days`` days; the first ``days`` are history
(feature store, training), the rest are "tomorrow's" transactions replayed against the
server. With ``drift_live`` the generator's drift switch turns on half-way through the live
days, so monitoring has something real to find. Rows before ``drift_from`` are identical with
and without the switch (the generator draws the same numbers either way).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from mlref.data.columns import EVENT_TIMESTAMP, TRANSACTION_ID, USER_ID

if TYPE_CHECKING:
    from feast import FeatureStore

    from mlref.data.validate import ValidationResult
    from mlref.promote import PromotionDecision
    from mlref.settings import Settings
    from mlref.train.pipeline import TrainingRun

log = logging.getLogger(__name__)


@dataclass
class Timings:
    """Wall time per stage, printed in the demo summary."""

    stages: dict[str, float] = field(default_factory=dict)

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        from mlref.progress import stage as progress_stage

        log.info("== %s ...", name)
        started = time.perf_counter()
        try:
            with progress_stage(name):
                yield
        finally:
            self.stages[name] = time.perf_counter() - started
            log.info("== %s done in %.1fs", name, self.stages[name])

    def table(self) -> str:
        width = max((len(k) for k in self.stages), default=5)
        rows = [f"  {k:<{width}}  {v:7.1f}s" for k, v in self.stages.items()]
        rows.append(f"  {'total':<{width}}  {sum(self.stages.values()):7.1f}s")
        return "\n".join(rows)


@dataclass
class ReferenceSystem:
    """Everything the offline half produced, for the server, the gates and the demo."""

    settings: Settings
    raw: pd.DataFrame  # history as generated (before validation)
    validation: ValidationResult
    events: pd.DataFrame  # validated history
    live: pd.DataFrame  # the transactions after the history, for replay against the server
    store: FeatureStore
    frame: pd.DataFrame  # training rows from Feast get_historical_features
    run: TrainingRun
    decision: PromotionDecision
    timings: Timings
    # when the generator's drift switch turned on in the live traffic (None: no drift)
    drift_from: str | None = None

    @property
    def history_end(self) -> pd.Timestamp:
        return pd.Timestamp(self.events[EVENT_TIMESTAMP].max())


def history_and_live(settings: Settings, *, live_days: int = 2, drift_live: bool = False):
    """Generate ``days + live_days`` days; split at ``days`` into history and live traffic."""
    from mlref.data.generate import generate_transactions
    from mlref.data.privacy import drop_personal_data

    cfg = settings.data
    start = pd.Timestamp(cfg.start)
    cut = start + pd.Timedelta(days=cfg.days)
    drift_from = None
    if drift_live:
        drift_from = (cut + pd.Timedelta(days=live_days / 2)).isoformat()
    full = generate_transactions(
        replace(cfg, days=cfg.days + live_days, drift_from=drift_from), pii=True
    )
    is_history = full[EVENT_TIMESTAMP] < cut
    # the history keeps its personal data (raw events as they land; validate_events drops
    # it); the live stream stands for requests after the edge's privacy step
    history = full.loc[is_history].reset_index(drop=True)
    live = drop_personal_data(full.loc[~is_history].reset_index(drop=True))
    return history, live, drift_from


def validate_events(settings: Settings, raw: pd.DataFrame) -> ValidationResult:
    """Personal data dropped (mlref.data.privacy), pandera validation with quarantine, then
    the freshness check against the data's end."""
    from mlref.data.privacy import drop_personal_data
    from mlref.data.validate import check_freshness, validate

    result = validate(
        drop_personal_data(raw),
        settings.max_quarantine_rate,
        quarantine_path=settings.quarantine_path,
    )
    log.info("%s", result.summary())
    as_of = pd.Timestamp(settings.data.start) + pd.Timedelta(days=settings.data.days)
    fresh = check_freshness(result.valid, as_of, pd.Timedelta(hours=settings.max_data_age_hours))
    if not fresh.passed:
        raise StaleData(f"stale data: {fresh.message}")
    return result


MIN_TRAIN_DAYS = 7


class StaleData(RuntimeError):
    """The stored events do not end where their configuration says (a RuntimeError, as
    before it had a name)."""


def burn_in(frame: pd.DataFrame) -> dict[str, Any]:
    """``train_start`` after the longest feature window has filled, when the data allows.

    In the first ``window`` days of the log every user looks new (30-day averages over a
    few days, missing state): features serving never sees. Training (and the drift bins
    frozen on the training window) should start after that; with too little data for
    ``MIN_TRAIN_DAYS`` of training after the burn-in, the whole span is used (logged).
    """
    from mlref.features.definitions import STORED_FEATURES
    from mlref.train.config import TrainConfig

    window = max(f.window for f in STORED_FEATURES if f.window is not None)
    start = (pd.Timestamp(frame[EVENT_TIMESTAMP].min()) + pd.Timedelta(window)).ceil("D")
    train_end = TrainConfig.from_dates(frame).train_end
    if train_end - start < pd.Timedelta(days=MIN_TRAIN_DAYS):
        log.warning(
            "training includes the %s feature burn-in: the data leaves only %s of training "
            "after it (need %d days); generate more days",
            window,
            train_end - start,
            MIN_TRAIN_DAYS,
        )
        return {}
    return {"train_start": start}


def build_reference_system(
    settings: Settings, *, live_days: int = 2, drift_live: bool = False
) -> ReferenceSystem:
    """Data -> validation -> Feast -> training -> ONNX -> registry -> promotion."""
    from mlref.data.generate import write_parquet
    from mlref.features.store import build_feature_store, training_frame
    from mlref.promote import promote
    from mlref.settings import save_data_config
    from mlref.train.pipeline import run_training

    settings.ensure_dirs()
    timings = Timings()
    with timings.stage("generate"):
        raw, live, drift_from = history_and_live(
            settings, live_days=live_days, drift_live=drift_live
        )
        write_parquet(raw, settings.raw_path)
        save_data_config(settings)
        log.info(
            "%d history rows (%d users, %.2f%% fraud), %d live rows%s -> %s",
            len(raw),
            raw["user_id"].nunique(),
            100 * raw["is_fraud"].mean(),
            len(live),
            f" (drift from {drift_from})" if drift_from else "",
            settings.raw_path,
        )
    with timings.stage("validate"):
        validation = validate_events(settings, raw)
        events = validation.valid.reset_index(drop=True)
    with timings.stage("features (Feast apply + materialize)"):
        store = build_feature_store(settings, events)
    with timings.stage("training rows (Feast historical)"):
        frame = training_frame(store, events)
    with timings.stage("train + export + register"):
        run = run_training(settings, frame, **burn_in(frame))
        log.info("\n%s", run.describe())
    with timings.stage("promote"):
        decision = promote(settings, frame)
    # promote() logs one status line; the verdict itself is printed once, here
    print(decision.explain())
    return ReferenceSystem(
        settings=settings,
        raw=raw,
        validation=validation,
        events=events,
        live=live,
        store=store,
        frame=frame,
        run=run,
        decision=decision,
        timings=timings,
        drift_from=drift_from,
    )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running_server(settings: Settings, *, ready_timeout_s: float = 120.0) -> Iterator[str]:
    """The scoring app under uvicorn in a background thread on 127.0.0.1; yields its URL.

    Stopped (graceful drain) on exit. Loopback only, whatever ``settings.host`` says.
    """
    from mlref.serve.app import create_app

    port = free_port()
    app = create_app(settings.with_(host="127.0.0.1", port=port))
    with serving_in_thread(app, port=port, ready_timeout_s=ready_timeout_s) as url:
        yield url


@contextlib.contextmanager
def serving_in_thread(
    app: Any, *, port: int | None = None, ready_timeout_s: float = 120.0
) -> Iterator[str]:
    """Any ASGI ``app`` under uvicorn in a background thread on 127.0.0.1, once its
    ``/readyz`` answers 200; yields its URL and drains it gracefully on exit."""
    import httpx
    import uvicorn

    port = port or free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, lifespan="on", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="mlref-uvicorn", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + ready_timeout_s
    try:
        while True:
            if not thread.is_alive():
                raise RuntimeError("the server stopped during start-up; see the log above")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/readyz", timeout=2.0).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(f"server at {url} not ready after {ready_timeout_s:.0f}s")
            time.sleep(0.1)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=60)


def transaction_payloads(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Raw transactions as the server's request bodies."""
    return [
        {
            "transaction_id": str(row.transaction_id),
            "user_id": int(row.user_id),
            "amount": float(row.amount),
            "merchant_category": str(row.merchant_category),
            "event_timestamp": pd.Timestamp(row.event_timestamp).isoformat(),
        }
        for row in frame.itertuples(index=False)
    ]


def send_traffic(
    url: str,
    frame: pd.DataFrame,
    *,
    concurrency: int = 16,
    timeout_s: float = 30.0,
) -> list[dict[str, Any]]:
    """POST each transaction to /predict with bounded concurrency; returns the responses.

    Bounded in count (the frame) and time (per-request timeout); loopback only.
    """
    import asyncio

    import httpx

    if not url.startswith(("http://127.0.0.1", "http://localhost")):
        raise ValueError(f"traffic goes to loopback only, not {url}")
    payloads = transaction_payloads(frame)

    async def _run() -> list[dict[str, Any]]:
        sem = asyncio.Semaphore(concurrency)
        limits = httpx.Limits(max_connections=concurrency)
        async with httpx.AsyncClient(base_url=url, timeout=timeout_s, limits=limits) as client:

            async def one(body: dict[str, Any]) -> dict[str, Any]:
                async with sem:
                    response = await client.post("/predict", json=body)
                    out: dict[str, Any] = {"status": response.status_code}
                    if response.headers.get("content-type", "").startswith("application/json"):
                        out.update(response.json())
                    return out

            return list(await asyncio.gather(*(one(p) for p in payloads)))

    return asyncio.run(_run())


def replay_chunks(
    sample: pd.DataFrame, live: pd.DataFrame, *, max_chunk: int = 8
) -> list[tuple[int, pd.DataFrame]]:
    """Cut time-ordered requests into chunks that can be sent concurrently on exact state.

    Returns ``(upto, chunk)`` pairs: push ``live.iloc[:upto]`` (the live events older than
    the chunk's first request), then send the chunk. A request joins the open chunk only
    if no live event of ITS user falls between the chunk's first request and its own time
    (such an event would not be in the online store yet); otherwise, or at ``max_chunk``
    requests, a new chunk starts. Every model input is per user or from the request itself,
    so other users' events in between change nothing: concurrency is kept wherever exactness
    allows, and one Feast push per chunk keeps the replay cheap.

    ``sample`` and ``live`` need ``user_id`` and ``event_timestamp`` and must be in time
    order (``live`` is indexed by position). Requests that are also live events count as
    events: a user's second request waits until the first one's event is pushed.
    """
    import numpy as np

    if max_chunk < 1:
        raise ValueError(f"max_chunk must be >= 1 (got {max_chunk})")
    live_ns = live[EVENT_TIMESTAMP].to_numpy("datetime64[ns]").view(np.int64)
    req_ns = sample[EVENT_TIMESTAMP].to_numpy("datetime64[ns]").view(np.int64)
    for name, ns in (("live", live_ns), ("sample", req_ns)):
        if (np.diff(ns) < 0).any():
            raise ValueError(
                f"replay_chunks: {name} must be in time order (sort by {EVENT_TIMESTAMP})"
            )
    by_user = {int(u): live_ns[idx] for u, idx in live.groupby(USER_ID, sort=False).indices.items()}
    no_events = np.empty(0, np.int64)
    bounds = [0]
    for i, (user, t) in enumerate(zip(sample[USER_ID].to_numpy(np.int64), req_ns, strict=True)):
        first = bounds[-1]
        if i == first:
            continue
        mine = by_user.get(int(user), no_events)
        t0 = req_ns[first]
        between = int(np.searchsorted(mine, t, "left") - np.searchsorted(mine, t0, "left"))
        if between > 0 or i - first >= max_chunk:
            bounds.append(i)
    bounds.append(len(sample))
    return [
        (int(np.searchsorted(live_ns, req_ns[a], "left")), sample.iloc[a:b])
        for a, b in itertools.pairwise(bounds)
        if b > a
    ]


def replay_live(
    system: ReferenceSystem,
    url: str,
    n_requests: int,
    *,
    seed: int = 0,
    concurrency: int = 4,
    max_chunk: int = 8,
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Score ``n_requests`` of the live transactions against the server, in time order.

    Every live transaction (scored or not) goes through the online path as the stream
    processor would push it (``OnlineAggregator`` warm-started on the history ->
    ``push_events``): before each request, every live event of its user older than the
    request is in the online store, so the server scores on the features training computes
    offline (``batch_model_features`` over history + live). Requests go in concurrent chunks
    of up to ``max_chunk`` cut by :func:`replay_chunks`; the rest of the stream is pushed at
    the end, leaving the online store at the end of the live window.
    """
    from mlref.features.online import warm_started
    from mlref.features.store import push_events

    live = system.live.sort_values([EVENT_TIMESTAMP, TRANSACTION_ID], kind="mergesort")
    live = live.reset_index(drop=True)
    if live.empty:
        raise ValueError("no live transactions to replay; use live_days >= 1")
    n = min(n_requests, len(live))
    sample = live.sample(n=n, random_state=seed).sort_values(
        [EVENT_TIMESTAMP, TRANSACTION_ID], kind="mergesort"
    )
    # the stream starts after the history; its first rows' prev_* state needs window + TTL
    aggregator = warm_started(system.events)
    responses: list[dict[str, Any]] = []
    pushed_until = 0  # live rows [0, pushed_until) are in the online store
    chunks = replay_chunks(sample, live, max_chunk=max_chunk)
    log.info("replaying %d live transactions in %d chunks", n, len(chunks))
    for upto, chunk in chunks:
        if upto > pushed_until:
            push_events(system.store, live.iloc[pushed_until:upto], aggregator=aggregator)
            pushed_until = upto
        before = len(responses)
        responses.extend(send_traffic(url, chunk, concurrency=concurrency))
        if len(responses) // 100 > before // 100:
            log.info("replayed %d/%d live transactions", len(responses), n)
    if pushed_until < len(live):
        push_events(system.store, live.iloc[pushed_until:], aggregator=aggregator)
    return sample, responses


def run_demo(settings: Settings, *, serve_requests: int = 400) -> int:
    """The whole reference system end to end; prints where every artefact went."""
    from mlref.features.store import build_feature_store, training_frame
    from mlref.flywheel import (
        ReviewQueue,
        SimulatedReviewer,
        feedback_use,
        labelled_feedback,
        merge_feedback,
    )
    from mlref.flywheel.mining import mine_hard_examples
    from mlref.monitor.drift import run_monitor
    from mlref.monitor.log import read_log
    from mlref.promote import promote
    from mlref.registry import CHAMPION, Registry
    from mlref.train.pipeline import run_training

    system = build_reference_system(settings, drift_live=True)
    timings = system.timings
    registry = Registry(settings)
    champion = registry.load(CHAMPION)

    # the server logs that it has no challenger to shadow; in the demo that is expected
    log.info(
        "serving champion version %s alone: it is the only registered model, so there is no "
        "challenger to shadow yet (the retrain below registers one)",
        champion.version,
    )
    with timings.stage("serve + live traffic"), running_server(settings) as url:
        _sample, responses = replay_live(system, url, serve_requests)
    ok = sum(1 for r in responses if r["status"] == 200)
    flagged = sum(1 for r in responses if r.get("decision"))

    reports = settings.reports_dir
    # completes the monitor's note "drift was injected on purpose (...)"
    injected = (
        f"by the demo, into the live traffic from {system.drift_from}: amounts scaled up "
        "and a new merchant category"
    )
    with timings.stage("monitor"):
        # the summary and the report both say the drift alerts are expected
        monitor_code = run_monitor(
            settings.prediction_log,
            champion.bins_path,
            champion.reference_scores_path,
            settings.p99_budget_ms,
            json_path=reports / "monitor.json",
            html_path=reports / "monitor.html",
            injected_drift=injected,
        )

    queue_path = settings.workdir / "flywheel" / "review_queue.sqlite"
    with timings.stage("flywheel (mine -> review -> retrain -> gates)"):
        hard = mine_hard_examples(read_log(settings.prediction_log), k=100)
        queue = ReviewQueue(queue_path)
        queue.enqueue(hard)
        truth = pd.concat([system.events, system.live], ignore_index=True)
        reviewed_at = pd.Timestamp(system.live[EVENT_TIMESTAMP].max())
        outcome = SimulatedReviewer(truth).review(queue, now=reviewed_at)
        feedback = labelled_feedback(queue_path)
        # retrain on history + the live days (labels as known at review time + reviews)
        events = merge_feedback(truth, feedback)
        retrain_settings = settings.with_(workdir=settings.workdir / "retrain")
        retrain_settings.ensure_dirs()
        store = build_feature_store(retrain_settings, events)
        frame = training_frame(store, events)
        run = run_training(settings, frame, **burn_in(frame))
        used = feedback_use(feedback, events, run.result.split, run.result.config.test_end)
        # the offline gates decide whether the retrained model may face traffic; the
        # canary below decides whether it replaces the champion
        decision = promote(settings, frame, apply=False)
    print(decision.explain())
    canary = None
    if decision.promoted:
        with timings.stage("canary (shadow + 50% of users -> decision)"):
            canary = demo_canary(system)
        print(canary.summary())
    else:
        registry.mark_refused(decision)

    # the state as it is now, read back, not as the first half left it
    final = registry.load(CHAMPION)
    status = {0: "ok", 2: "CRITICAL alerts (expected: the drift injected on purpose)"}.get(
        monitor_code, f"alerts of an unexpected kind (monitor exit code {monitor_code})"
    )
    print()
    print("mlref demo: done")
    print(f"  data         {settings.raw_path} ({len(system.raw)} rows)")
    print(f"  quarantine   {settings.quarantine_path} ({system.validation.n_quarantined} rows)")
    print(f"  features     {settings.feature_repo} (Feast: parquet offline, SQLite online)")
    print(f"  first model  version {system.run.version}: {_first_line(system.decision)}")
    print(
        f"  served       {ok}/{len(responses)} OK by version {champion.version}, "
        f"{flagged} flagged for review"
    )
    print(f"  predictions  {settings.prediction_log}")
    print(f"  monitoring   {status}: {reports / 'monitor.html'}")
    print(f"  review queue {queue_path} ({outcome.labelled} labelled)")
    print(f"  reviews used {used.explain()}")
    print(f"  retrained    version {run.version}: {_first_line(decision)}")
    if canary is not None:
        print(
            f"  canary       {canary.action.upper()} after {canary.gate.details['n_canary']} "
            f"labelled canary requests: {settings.workdir / 'canary'}"
        )
    print(f"  champion     version {final.version}: {final.onnx_path}")
    print(f"  registry     {settings.registry_uri}")
    print("timings:")
    print(timings.table())
    print(next_steps(settings, reports / "monitor.html", system.live))
    (reports / "demo.json").write_text(
        json.dumps(
            {
                "rows": len(system.raw),
                "quarantined": system.validation.n_quarantined,
                "served": len(responses),
                "served_ok": ok,
                "monitor_exit_code": monitor_code,
                "champion": system.decision.to_dict(),
                "retrain": decision.to_dict(),
                "canary": None if canary is None else canary.to_dict(),
                "reviews_used": used.to_dict(),
                "timings_s": timings.stages,
            },
            indent=2,
            default=str,
        )
    )
    return 0 if ok == len(responses) else 1


# the canary stage of the demo: labelled days no model trained on, replayed at half the users
DEMO_CANARY_SHARE = 0.5
DEMO_CANARY_ROWS = 12_000


def demo_canary(system: ReferenceSystem) -> Any:
    """Shadow -> canary -> decision for the registry's challenger: half of the users get it
    (the other half the champion, with the challenger scoring in shadow), on the labelled
    days after both models' validation windows replayed through a real server; the gate's
    decision is carried out (promote: ``champion`` moves; rollback: it stays)."""
    from mlref.canary.decide import act
    from mlref.canary.replay import run_rollout

    settings = system.settings
    drill = run_rollout(
        settings,
        system.frame,
        system.events,
        share=DEMO_CANARY_SHARE,
        max_rows=DEMO_CANARY_ROWS,
        salt=f"demo-{settings.data.seed}",
        shadow=True,
    )
    bad = [s for s in drill.statuses if s != 200]
    if bad:
        raise RuntimeError(f"{len(bad)} of {len(drill.statuses)} canary requests failed")
    log.info("canary replay: %d requests in %.1f s", len(drill.window), drill.replay_s)
    act(settings, drill.judged)
    return drill.judged


def _first_line(decision: PromotionDecision) -> str:
    return decision.explain().splitlines()[0]


def next_steps(settings: Settings, report: os.PathLike[str] | str, live: pd.DataFrame) -> str:
    """The demo's last words: what to open and run next, with this workdir and a request
    body the demo's server scores (the newest live transaction, a user the store knows)."""
    from mlref.settings import DEFAULT_WORKDIR

    default = settings.workdir == Path(DEFAULT_WORKDIR).resolve()
    where = "" if default else f" --workdir {settings.workdir}"
    body = json.dumps(transaction_payloads(live.tail(1))[0])
    return "\n".join(
        [
            "Next:",
            f"  open the monitoring report   {report}",
            f"  serve the champion           uv run mlref serve{where}",
            "  score one transaction        curl -s http://127.0.0.1:"
            f"{settings.port}/predict -H 'content-type: application/json' -d '{body}'",
            "  run the tests and the gates  uv run pytest --mlgates",
            "  load-test the server         uv run nox -s load",
            f"  start over                   uv run mlref demo --fresh{where}",
        ]
    )
