"""Overload: open-loop bursts at 1x, 2x and 10x the measured capacity, admission on vs off.

Three scoring servers (``python -m mlref.load.server``, the benchmark's small system, the same
defaults: ``max_queue`` 1,024, p99 budget from the settings): ``admission``, the default
(admission by deadline at the batching queue, ``mlref.serve.admission``); ``in_flight``, the
same plus the HTTP layer's in-flight limit (``InFlightLimit``, refusing before the body is
read; opt-in, ``--in-flight-admission on``); ``queue_only`` (``--admission off``: the queue
alone refuses work, as before issue #21). First the capacity is measured on the queue-only server
(``mlref.load.capacity.search_capacity``: the highest throughput whose p99 held the budget with
no failed request, a ladder of open-loop rates; on the server that sheds nothing, so a shed
caused by a stall of the shared machine cannot end the ladder early). Then each factor's rate is offered to each
server in turn (interleaved, so the shared machine's drift hits both alike) by
``python -m mlref.load.loadgen`` in its own process (seeded Poisson arrivals, latency from the
scheduled send, ``--drain`` seconds for the last answers, after which a request counts as a
client timeout). Meanwhile a probe sends one request every ``PROBE_EVERY_S`` from this process
until ``PROBE_AFTER_S`` after the burst's last scheduled send: the recovery time is when the
last probe that was refused or slower than the budget completed, counted from that last send.

Goals, each marked met / not met for the default server (the other two are the comparison,
measured in the same run; their figures stand next to them):

- p99 of the answered requests <= 1.5x the budget;
- goodput (answered per second in the measured window) >= 0.9x the measured capacity;
- client timeouts: 0;
- recovery to normal latency (answered within the budget) <= 1 s after the burst.

    uv run python benchmarks/bench_overload.py [--duration 3] [--factors 1,2,10] [--connections 64]
        -> benchmarks/results/overload.json and overload.md

The machine is shared (2 cores, other jobs): absolute figures move with its load, which is
recorded at the start; compare the two servers of the same run.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _perfutil import DEFAULT_WORKDIR, ROOT, machine, progress, small_system

RESULTS = ROOT / "benchmarks" / "results"
# name -> the server's options
SERVERS = {
    "admission": [],
    "in_flight": ["--in-flight-admission", "on"],
    "queue_only": ["--admission", "off"],
}
GOAL_SERVER = "admission"
COMPARED = ("in_flight", "queue_only")
FACTORS = (1.0, 2.0, 10.0)
GOAL_P99_FACTOR = 1.5  # p99 of answered requests at most this many budgets
GOAL_GOODPUT_SHARE = 0.9  # goodput at least this share of the measured capacity
GOAL_RECOVERY_S = 1.0
PROBE_EVERY_S = 0.02
PROBE_AFTER_S = 3.0
DRAIN_S = 5.0
CONNECTIONS = 64


def _probe(port: int, body: bytes, stop: threading.Event, out: list[tuple[float, float, int]]):
    """One request every PROBE_EVERY_S until ``stop``: (wall send time, latency s, status)."""
    while not stop.is_set():
        sent = time.time()
        started = time.perf_counter()
        status = 0
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=DRAIN_S)
            conn.request("POST", "/predict", body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            status = response.status
            conn.close()
        except OSError:
            status = -1
        out.append((sent, time.perf_counter() - started, status))
        time.sleep(PROBE_EVERY_S)


def _recovery_s(probes: list[tuple[float, float, int]], burst_end: float, budget_s: float) -> float:
    """Seconds from the burst's last scheduled send until the last bad probe (refused, failed
    or slower than the budget) completed; 0 when none after the burst was bad."""
    bad_done = [
        sent + latency
        for sent, latency, status in probes
        if sent + latency > burst_end and (status != 200 or latency > budget_s)
    ]
    return max(0.0, max(bad_done) - burst_end) if bad_done else 0.0


def _shed_counts(port: int) -> dict[str, float]:
    from mlref.load.launcher import http_get

    status, text = http_get(port, "/metrics", timeout=5)
    found = re.findall(r'^mlref_requests_shed_total\{reason="(\w+)"\} (\S+)$', text, re.M)
    return {reason: float(value) for reason, value in found} if status == 200 else {}


def _wait_drained(port: int, timeout_s: float = 120.0) -> None:
    from mlref.load.launcher import http_get

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status, text = http_get(port, "/metrics", timeout=5)
        found = dict(re.findall(r"^mlref_(queue_depth|in_flight) (\S+)$", text, re.M))
        if status == 200 and sum(float(v) for v in found.values()) == 0:
            return
        time.sleep(0.2)
    raise RuntimeError(f"server on port {port} did not drain in {timeout_s:.0f} s")


def _burst(
    handle: Any,
    rate: float,
    duration_s: float,
    raw_dir: Path,
    env: dict[str, str],
    body: bytes,
    connections: int = CONNECTIONS,
) -> dict[str, Any]:
    import numpy as np

    from mlref.load.capacity import run_point
    from mlref.load.loadgen import TIMEOUT_EXCEPTION
    from mlref.load.rawlog import read_raw

    before = _shed_counts(handle.port)
    probes: list[tuple[float, float, int]] = []
    stop = threading.Event()
    prober = threading.Thread(target=_probe, args=(handle.port, body, stop, probes), daemon=True)
    prober.start()
    try:
        point = run_point(
            handle.url,
            env,
            raw_dir,
            rate=rate,
            duration_s=duration_s,
            warmup_s=0.5,
            connections=connections,
            drain_s=DRAIN_S,
        )
        raw = read_raw(raw_dir)
        burst_end = float(raw["start"].max())
        while time.time() < burst_end + PROBE_AFTER_S:
            time.sleep(0.05)
    finally:
        stop.set()
        prober.join(DRAIN_S + 5)
    after = _shed_counts(handle.port)
    status = raw["status"].to_numpy()
    ok = (status == 200) & (raw["exception"] == "").to_numpy()
    timeouts = int((raw["exception"] == TIMEOUT_EXCEPTION).sum())
    ok_ms = raw.loc[ok, "latency_ms"].to_numpy()
    shed_ms = raw.loc[status == 503, "latency_ms"].to_numpy()
    return {
        "offered_rps": rate,
        "sent": len(raw),
        "answered": int(ok.sum()),
        "shed_503": int((status == 503).sum()),
        "client_timeouts": timeouts,
        "other_errors": int(len(raw) - ok.sum() - (status == 503).sum() - timeouts),
        "p99_answered_ms": float(np.percentile(ok_ms, 99)) if ok_ms.size else None,
        "p50_answered_ms": float(np.percentile(ok_ms, 50)) if ok_ms.size else None,
        "p50_shed_ms": float(np.percentile(shed_ms, 50)) if shed_ms.size else None,
        "goodput_rps": float(point.achieved_rps),
        "generator_lag_p99_ms": float(point.generator_lag_p99_ms),
        "shed_by_reason": {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after},
        "probes_after_burst": sum(1 for sent, _, _ in probes if sent > burst_end),
        "_probes": probes,
        "_burst_end": burst_end,
    }


def in_flight_layer_cost(requests: int = 20_000, rounds: int = 3) -> dict[str, Any]:
    """The HTTP layer's own cost per admitted request: an ASGI app that answers at once, called
    directly vs through ``InFlightAdmission`` (never refusing: a limit far above one request),
    alternated in this process; median of ``rounds`` per setting."""
    import asyncio
    import statistics

    from mlref.serve.admission import InFlightLimit
    from mlref.serve.metrics import ServingMetrics
    from mlref.serve.middleware import InFlightAdmission

    async def answer(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def sink(message: Any) -> None:
        return None

    async def nothing() -> Any:
        return {"type": "http.request", "body": b"", "more_body": False}

    layer = InFlightAdmission(
        answer,
        limit=InFlightLimit(50.0, floor=16, ceiling=1024, initial=1024),
        metrics=ServingMetrics(),
        retry_after_s=1,
    )
    scope = {"type": "http", "path": "/predict", "method": "POST"}

    async def run(app: Any) -> float:
        started = time.perf_counter()
        for _ in range(requests):
            await app(scope, nothing, sink)
        return (time.perf_counter() - started) / requests * 1e6

    times: dict[str, list[float]] = {"on": [], "off": []}
    for _ in range(rounds):
        times["off"].append(asyncio.run(run(answer)))
        times["on"].append(asyncio.run(run(layer)))
    on, off = statistics.median(times["on"]), statistics.median(times["off"])
    return {"us_per_request_on": on, "us_per_request_off": off, "added_us": on - off}


def hot_path(requests: int = 20_000, rounds: int = 3) -> dict[str, Any]:
    """The batcher's cost per request when not overloaded, admission on vs off, alternated in
    this process: ``requests`` submits, 8 at a time, to a ``process`` that returns its input
    (so the batcher's own work is all that is timed). Median of ``rounds`` per setting."""
    import asyncio
    import statistics

    from mlref.serve.admission import Admission
    from mlref.serve.batching import BatchingPredictor

    def echo(items: list[int]) -> list[int]:
        return items

    async def run(admission: Admission | None) -> float:
        async with BatchingPredictor(echo, max_batch_size=64, admission=admission) as batcher:
            started = time.perf_counter()
            for i in range(0, requests, 8):
                await asyncio.gather(*(batcher.submit(j) for j in range(i, i + 8)))
            return (time.perf_counter() - started) / requests * 1e6

    times: dict[str, list[float]] = {"on": [], "off": []}
    for _ in range(rounds):
        times["off"].append(asyncio.run(run(None)))
        times["on"].append(asyncio.run(run(Admission(50.0, 64))))
    on, off = statistics.median(times["on"]), statistics.median(times["off"])
    return {"us_per_request_on": on, "us_per_request_off": off, "ratio_on_over_off": on / off}


def bench_overload(
    system: Any,
    *,
    duration_s: float,
    factors: tuple[float, ...],
    capacity_seconds: float,
    connections: int = CONNECTIONS,
) -> dict[str, Any]:
    from mlref.load.capacity import search_capacity
    from mlref.load.launcher import ServerProcess
    from mlref.load.runner import traffic_env
    from mlref.load.traffic import Traffic

    budget_ms = float(system.settings.p99_budget_ms)
    run_dir = Path(tempfile.mkdtemp(prefix="mlref-bench-overload-"))
    env = {**os.environ, **traffic_env(system.settings, run_dir)}
    os.environ.update(env)  # the probe's body comes from the same traffic
    body = json.dumps(Traffic.from_env(stream=99, prefix="probe").transaction()).encode()
    servers = {}
    for name, options in SERVERS.items():
        server = ServerProcess(
            system.settings.workdir, run_dir, model_path=system.model_path, name=name
        )
        server.cmd += options
        servers[name] = server
    result: dict[str, Any] = {
        "p99_budget_ms": budget_ms,
        "duration_s": duration_s,
        "connections": connections,
        "points": [],
    }
    try:
        for server in servers.values():
            server.start()
        handles = {name: server.wait_ready(240) for name, server in servers.items()}
        from mlref.load.capacity import run_point

        for name, handle in handles.items():  # Feast's lazy start-up out of the measurements
            run_point(handle.url, env, run_dir / f"{name}-warmup", rate=20, duration_s=1.5)
        progress("servers ready; measuring the capacity (queue-only server)")
        capacity = search_capacity(
            handles["queue_only"].url,
            env,
            run_dir / "capacity",
            p99_budget_ms=budget_ms,
            start_rps=50,
            factor=1.5,
            max_rps=6000,
            max_seconds=capacity_seconds,
            min_point_s=1.5,
        )
        progress(capacity.describe())
        cap = capacity.low_rps
        established = cap > 0
        if not established:
            # a starved machine held no rung: the highest rate completed without a failure
            # stands in, flagged (the factors are then relative to an unverified figure)
            cap = max((p.achieved_rps for p in capacity.points if not p.failed), default=0.0)
            if cap <= 0:
                raise RuntimeError(f"no capacity measured: {capacity.describe()}")
        result["capacity"] = {
            "established": established,
            "low_rps": cap,
            "high_rps": capacity.high_rps,
            "stopped": capacity.stopped,
            "ladder": [p.describe() for p in capacity.points],
        }
        for factor in factors:
            rate = min(round(factor * cap), 20_000)
            for name, handle in handles.items():
                _wait_drained(handle.port)
                point = _burst(
                    handle,
                    rate,
                    duration_s,
                    run_dir / f"{name}-{factor:g}x",
                    env,
                    body,
                    connections,
                )
                probes, end = point.pop("_probes"), point.pop("_burst_end")
                point["recovery_s"] = _recovery_s(probes, end, budget_ms / 1000.0)
                point.update(server=name, factor=factor)
                result["points"].append(point)
                progress(
                    f"{name:>10} {factor:g}x ({rate} req/s): answered {point['answered']}, "
                    f"503 {point['shed_503']}, timeouts {point['client_timeouts']}, "
                    f"p99 answered {point['p99_answered_ms']}, goodput "
                    f"{point['goodput_rps']:.0f}/s, recovery {point['recovery_s']:.2f} s"
                )
    except BaseException:
        progress(f"overload benchmark failed; server logs and raw records kept in {run_dir}")
        raise
    else:
        shutil.rmtree(run_dir, ignore_errors=True)
    finally:
        for server in servers.values():
            server.stop()
    result["goals"] = _goals(result, budget_ms)
    return result


def _goals(result: dict[str, Any], budget_ms: float) -> list[dict[str, Any]]:
    cap = result["capacity"]["low_rps"]
    compared = {
        name: {p["factor"]: p for p in result["points"] if p["server"] == name} for name in COMPARED
    }
    goals = []
    for p in result["points"]:
        if p["server"] != GOAL_SERVER:
            continue
        others = {name: by_factor.get(p["factor"], {}) for name, by_factor in compared.items()}
        p99 = p["p99_answered_ms"]
        for goal, measured, target, met, key in (
            (
                "p99 of answered <= 1.5x budget (ms)",
                p99,
                GOAL_P99_FACTOR * budget_ms,
                p99 is not None and p99 <= GOAL_P99_FACTOR * budget_ms,
                "p99_answered_ms",
            ),
            (
                "goodput >= 0.9x capacity (req/s)",
                p["goodput_rps"],
                GOAL_GOODPUT_SHARE * cap,
                p["goodput_rps"] >= GOAL_GOODPUT_SHARE * cap,
                "goodput_rps",
            ),
            (
                "client timeouts = 0",
                p["client_timeouts"],
                0,
                p["client_timeouts"] == 0,
                "client_timeouts",
            ),
            (
                "recovery <= 1 s after the burst (s)",
                p["recovery_s"],
                GOAL_RECOVERY_S,
                p["recovery_s"] <= GOAL_RECOVERY_S,
                "recovery_s",
            ),
        ):
            goals.append(
                {
                    "factor": p["factor"],
                    "goal": goal,
                    "measured": measured,
                    "target": target,
                    "met": bool(met),
                    **{name: other.get(key) for name, other in others.items()},
                }
            )
    return goals


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def write_markdown(result: dict[str, Any], path: Path) -> None:
    m = result["machine"]
    cap = result["capacity"]
    above = (
        f"no rung broke before the ladder stopped ({cap['stopped']}): a lower bound"
        if cap["high_rps"] is None
        else f"the next rung, {cap['high_rps']:g} req/s, broke; stopped: {cap['stopped']}"
    )
    caveat = (
        ""
        if cap.get("established", True)
        else " NOT ESTABLISHED: the machine starved the load generator at every rung, so this "
        "is the highest rate completed without a failure, p99 unverified"
    )
    lines = [
        "# Overload (latest `nox -s overload`)",
        "",
        f"{result['date']}, {m['cpus']} CPUs, load average {m['load_average_1m']:.2f} at the "
        "start (the machine was shared with other jobs: absolute figures move with its load; "
        "the three servers were measured interleaved in the same run). p99 budget "
        f"{result['p99_budget_ms']:g} ms, {result['duration_s']:g} s per burst after 0.5 s of "
        f"warm-up, {result.get('connections', CONNECTIONS)} client connections, {DRAIN_S:g} s "
        "drain (a request unanswered "
        "by then is a client timeout).",
        "",
        f"Measured capacity (queue-only server, p99 within the budget, no failed request): "
        f"{cap['low_rps']:.0f} req/s ({above}){caveat}.",
        "",
        f"## Goals (server `{GOAL_SERVER}`, the default: deadline admission; the last two "
        "columns: the same burst against `in_flight` (plus the HTTP layer's in-flight limit, "
        "opt-in) and `queue_only` (no admission))",
        "",
        "| load | goal | measured | target | met | in_flight | queue_only |",
        "|---:|---|---:|---:|---|---:|---:|",
    ]
    for g in result["goals"]:
        lines.append(
            f"| {g['factor']:g}x | {g['goal']} | {_fmt(g['measured'])} | {_fmt(g['target'])} "
            f"| {'met' if g['met'] else 'NOT MET'} | {_fmt(g.get('in_flight'))} "
            f"| {_fmt(g.get('queue_only'))} |"
        )
    lines += [
        "",
        "## Every burst",
        "",
        "| server | load | offered req/s | sent | answered | 503 | timeouts | other errors "
        "| p50 / p99 answered ms | p50 503 ms | goodput req/s | recovery s | generator lag p99 ms "
        "| shed by reason |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---|",
    ]
    for p in result["points"]:
        reasons = ", ".join(f"{k} {v:.0f}" for k, v in p["shed_by_reason"].items() if v) or "-"
        lines.append(
            f"| {p['server']} | {p['factor']:g}x | {p['offered_rps']} | {p['sent']} "
            f"| {p['answered']} | {p['shed_503']} | {p['client_timeouts']} | {p['other_errors']} "
            f"| {_fmt(p['p50_answered_ms'])} / {_fmt(p['p99_answered_ms'])} "
            f"| {_fmt(p['p50_shed_ms'])} | {_fmt(p['goodput_rps'])} | {_fmt(p['recovery_s'])} "
            f"| {_fmt(p['generator_lag_p99_ms'])} | {reasons} |"
        )
    hp = result.get("hot_path")
    if hp:
        lines += [
            "",
            "## The hot path when not overloaded",
            "",
            "The batcher alone (a `process` that returns its input, 8 concurrent submits, "
            "medians of 3 alternated rounds in this process): "
            f"{hp['us_per_request_on']:.1f} µs per request with admission, "
            f"{hp['us_per_request_off']:.1f} µs without: ratio "
            f"**{hp['ratio_on_over_off']:.3f}** (a scored request costs the server ~1 ms; on "
            "this shared machine the ratio moves by +-15% from run to run).",
        ]
    layer = result.get("in_flight_layer")
    if layer:
        lines += [
            "",
            "The in-flight layer alone (an ASGI app that answers at once, called directly and "
            "through `InFlightAdmission`, medians of 3 alternated rounds in this process): "
            f"{layer['us_per_request_on']:.1f} vs {layer['us_per_request_off']:.1f} µs per "
            f"request, **{layer['added_us']:.1f} µs added** per admitted request.",
        ]
    lines += ["", "Capacity ladder: " + "; ".join(cap["ladder"]), ""]
    path.write_text("\n".join(lines))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    p.add_argument("--duration", type=float, default=3.0, help="seconds per burst")
    p.add_argument("--factors", default="1,2,10", help="multiples of the measured capacity")
    p.add_argument("--capacity-seconds", type=float, default=120.0)
    p.add_argument(
        "--connections",
        type=int,
        default=CONNECTIONS,
        help="the generator's connections in the bursts (the capacity ladder keeps its own)",
    )
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args()
    factors = tuple(float(f) for f in args.factors.split(","))
    if not (0 < args.duration <= 30 and factors and all(0 < f <= 50 for f in factors)):
        p.error("duration must be in (0, 30] s and factors in (0, 50]")
    if not 1 <= args.connections <= 2048:
        p.error("connections must be in [1, 2048]")
    info = machine()
    system = small_system(args.workdir)
    result = bench_overload(
        system,
        duration_s=args.duration,
        factors=factors,
        capacity_seconds=args.capacity_seconds,
        connections=args.connections,
    )
    result["machine"] = info
    result["hot_path"] = hot_path()
    progress(f"hot path (not overloaded): {result['hot_path']}")
    result["in_flight_layer"] = in_flight_layer_cost()
    progress(f"the in-flight layer's cost: {result['in_flight_layer']}")
    result["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "overload.json").write_text(json.dumps(result, indent=2) + "\n")
    write_markdown(result, args.out / "overload.md")
    progress(f"wrote {args.out / 'overload.json'} and overload.md")
    met = sum(g["met"] for g in result["goals"])
    progress(f"goals met: {met} of {len(result['goals'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
