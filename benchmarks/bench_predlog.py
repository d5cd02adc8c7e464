"""The prediction log's sync mode: what writing before answering costs, as ratios sync/async.

Two measurements, each pairing the modes in the same run (rounds in ABBA order, so drift of
the shared machine hits both alike):

* ``server``: the scoring server (real Feast online store, ONNX Runtime, uvicorn on
  127.0.0.1, ``--model-path`` of the perf system) under a closed loop of ``concurrency``
  connections for ``duration_s`` per round (the client is this process, not the server's). Per mode:
  completed requests/s, p50/p99 latency, the server process's CPU per request (``/proc``:
  much steadier than req/s when other jobs share the cores), the log's written/dropped counts
  (written + dropped + pending must equal the requests answered); and the ratios
  ``throughput_ratio_sync_over_async``, ``p99_ratio_sync_over_async``,
  ``cpu_per_request_ratio_sync_over_async``.
* ``writer``: ``PredictionLog`` alone, ``threads`` producers each handing 1-row groups:
  ``append`` (async) vs ``submit(...).result()`` (sync, group commit); rows/s and the ratio.

The servers write the perf workdir's prediction log (deleted before each round: the log of
the perf system is scratch). Each round starts its own server process.

    uv run python benchmarks/bench_predlog.py [--workdir .mlref-perf] [--duration 3]
    uv run python benchmarks/bench_predlog.py full-disk --mode async   # root: a 2 MB tmpfs
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _perfutil import DEFAULT_WORKDIR, machine, progress, small_system

SERVER = textwrap.dedent(
    """
    import socket, sys
    from pathlib import Path
    import uvicorn
    from mlref.serve.app import ServeConfig, create_app
    from mlref.settings import make_settings

    workdir, model_path, port_file, mode = sys.argv[1:5]
    settings = make_settings(workdir, n_users=300, days=30, fraud_rate=0.03, seed=11)
    config = ServeConfig.from_settings(
        settings, model_path=Path(model_path), shadow_alias=None, gc_freeze=True,
        log_sync=mode == "sync",
    )
    app = create_app(settings, config=config)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    Path(port_file + ".tmp").write_text(str(sock.getsockname()[1]))
    Path(port_file + ".tmp").replace(port_file)
    uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False)).run(sockets=[sock])
    """
)


def _bodies(n: int, n_users: int, seed: int) -> list[dict[str, Any]]:
    from mlref.data.columns import CATEGORIES

    rng = random.Random(seed)
    return [
        {
            "transaction_id": f"b{seed}-{i}",
            "user_id": rng.randint(1, n_users),
            "amount": round(rng.lognormvariate(3.5, 1.0), 2),
            "merchant_category": rng.choice(list(CATEGORIES)),
            "event_timestamp": "2026-03-01T12:00:00+00:00",
        }
        for i in range(n)
    ]


def _cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` (Linux /proc), None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _closed_loop(
    url: str, duration_s: float, concurrency: int, seed: int, pid: int
) -> dict[str, Any]:
    import httpx

    bodies = _bodies(4096, 300, seed)
    latencies: list[float] = []
    errors = 0
    async with httpx.AsyncClient(
        base_url=url, timeout=30, limits=httpx.Limits(max_connections=concurrency)
    ) as client:
        for body in bodies[:100]:  # warm-up, not counted
            await client.post("/predict", json=body)
        stop_at = time.perf_counter() + duration_s

        async def worker(k: int) -> None:
            nonlocal errors
            i = k
            while time.perf_counter() < stop_at:
                t0 = time.perf_counter()
                response = await client.post("/predict", json=bodies[i % len(bodies)])
                if response.status_code == 200:
                    latencies.append(time.perf_counter() - t0)
                else:
                    errors += 1
                i += concurrency

        started, cpu0 = time.perf_counter(), _cpu_s(pid)
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        elapsed, cpu1 = time.perf_counter() - started, _cpu_s(pid)
        metrics = (await client.get("/metrics")).text
    from mlref.serve.metrics import parse_metrics

    parsed = parse_metrics(metrics)
    dropped = sum(v for k, v in parsed.items() if k.startswith("mlref_prediction_log_rows_dr"))
    latencies.sort()
    return {
        "answered": len(latencies) + 100,
        "rps": len(latencies) / elapsed,
        # the server's CPU per answered request: far steadier than req/s on a shared machine
        "server_cpu_ms_per_request": (
            1000 * (cpu1 - cpu0) / len(latencies)
            if cpu0 is not None and cpu1 is not None and latencies
            else None
        ),
        "p50_ms": 1000 * latencies[len(latencies) // 2] if latencies else None,
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)] if latencies else None,
        "errors": errors,
        "log_written": parsed.get("mlref_prediction_log_rows_written_total"),
        "log_dropped": dropped,
        "log_pending": parsed.get("mlref_prediction_log_pending"),
    }


def _one_round(system: Any, mode: str, duration_s: float, concurrency: int, seed: int) -> Any:
    settings = system.settings
    for suffix in ("", "-wal", "-shm"):
        Path(str(settings.prediction_log) + suffix).unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "server.py"
        script.write_text(SERVER)
        port_file = Path(tmp) / "port"
        # a file, not a pipe nobody reads: a chatty server would block on a full pipe
        stderr = (Path(tmp) / "stderr").open("w+b")
        proc = subprocess.Popen(
            [
                sys.executable,
                str(script),
                str(settings.workdir),
                str(system.model_path),
                str(port_file),
                mode,
            ],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        try:
            url = _wait_ready(proc, port_file, stderr)
            result = asyncio.run(_closed_loop(url, duration_s, concurrency, seed, proc.pid))
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(30)
            stderr.close()
    result["mode"] = mode
    return result


def _wait_ready(
    proc: subprocess.Popen[bytes], port_file: Path, stderr: Any, timeout_s: float = 300
) -> str:
    """The server's URL once /readyz answers 200 (start-up imports Feast: minutes on a
    loaded machine)."""
    import httpx

    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            stderr.seek(0)
            raise RuntimeError(f"server exited: {stderr.read().decode()[-2000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"server not ready in {timeout_s:.0f} s")
        if port_file.exists():
            url = f"http://127.0.0.1:{port_file.read_text()}"
            try:
                if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                    return url
            except httpx.HTTPError:
                pass
        time.sleep(0.1)


def bench_server_modes(
    system: Any,
    *,
    duration_s: float = 3.0,
    concurrency: int = 16,
    rounds: int = 2,
    first: str = "sync",
) -> dict[str, Any]:
    other = "async" if first == "sync" else "sync"
    order = [first, other, other, first] * (rounds // 2) + [first, other] * (rounds % 2)
    runs = []
    for k, mode in enumerate(order):
        progress(f"predlog server round {k + 1}/{len(order)}: {mode}")
        runs.append(_one_round(system, mode, duration_s, concurrency, seed=k))
        last = runs[-1]
        progress(
            f"  {last['rps']:.0f} req/s, p99 {last['p99_ms']:.0f} ms, "
            f"{last['server_cpu_ms_per_request']} CPU ms/request"
        )
    by = {m: [r for r in runs if r["mode"] == m] for m in ("sync", "async")}
    rps = {m: statistics.median(r["rps"] for r in rs) for m, rs in by.items()}
    p99 = {m: statistics.median(r["p99_ms"] for r in rs) for m, rs in by.items()}
    cpu = {
        m: statistics.median(r["server_cpu_ms_per_request"] or float("nan") for r in rs)
        for m, rs in by.items()
    }
    return {
        "duration_s": duration_s,
        "concurrency": concurrency,
        "runs": runs,
        "rps_median": rps,
        "p99_ms_median": p99,
        "throughput_ratio_sync_over_async": rps["sync"] / rps["async"],
        "p99_ratio_sync_over_async": p99["sync"] / p99["async"],
        "server_cpu_ms_per_request_median": cpu,
        "cpu_per_request_ratio_sync_over_async": cpu["sync"] / cpu["async"],
        # written + dropped == answered: with the async log the last rows may still be
        # pending at the scrape, so pending counts too
        "every_row_accounted": all(
            r["log_written"] + r["log_dropped"] + (r["log_pending"] or 0) == r["answered"]
            for r in runs
        ),
    }


def bench_writer_modes(rows: int = 20_000, threads: int = 8) -> dict[str, Any]:
    from mlref.serve.predlog import PredictionLog, PredictionRecord, features_json

    names = [f"f{k}" for k in range(8)]

    def record(i: int) -> PredictionRecord:
        now = time.time()
        feats = features_json(names, [i * 0.001] * 8)
        return PredictionRecord(
            f"r{i}", now, now, f"t{i}", i % 300, feats, 0.1, 0, 0.3, "1", 1.0, None, None, 0
        )

    out: dict[str, Any] = {"rows": rows, "threads": threads, "runs": []}
    for mode in ("sync", "async", "async", "sync"):
        with tempfile.TemporaryDirectory() as tmp:
            log = PredictionLog(Path(tmp) / "p.sqlite")
            log.start()

            def produce(
                k: int, log: PredictionLog = log, mode: str = mode, per: int = rows // threads
            ) -> None:
                for i in range(k * per, (k + 1) * per):
                    if mode == "sync":
                        log.submit([record(i)]).result()
                    else:
                        log.append([record(i)])

            workers = [threading.Thread(target=produce, args=(k,)) for k in range(threads)]
            t0 = time.perf_counter()
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            log.close(60.0)  # the async rows are on disk only after the last flush
            elapsed = time.perf_counter() - t0
            out["runs"].append(
                {"mode": mode, "rows_per_s": log.written / elapsed, "written": log.written}
            )
    med = {
        m: statistics.median(r["rows_per_s"] for r in out["runs"] if r["mode"] == m)
        for m in ("sync", "async")
    }
    out["rows_per_s_median"] = med
    out["throughput_ratio_sync_over_async"] = med["sync"] / med["async"]
    return out


def bench_predlog(system: Any, *, duration_s: float = 3.0, first: str = "sync") -> dict[str, Any]:
    """Both measurements; the ``predlog`` section of ``run_perf.py``."""
    return {
        "server": bench_server_modes(system, duration_s=duration_s, first=first),
        "writer": bench_writer_modes(),
    }


def markdown(result: dict[str, Any]) -> str:
    s, w = result["server"], result["writer"]
    lines = [
        "# Prediction log: sync vs async",
        "",
        f"Load average at start: {result['machine']['load_average_1m']:.1f} "
        f"on {result['machine']['cpus']} CPUs (a shared machine: the ratios are the result).",
        "",
        "| measurement | async | sync | sync / async |",
        "|---|---|---|---|",
        f"| server req/s (closed loop, {s['concurrency']} connections, median of rounds) "
        f"| {s['rps_median']['async']:.0f} | {s['rps_median']['sync']:.0f} "
        f"| {s['throughput_ratio_sync_over_async']:.2f} |",
        f"| server p99 ms | {s['p99_ms_median']['async']:.1f} | {s['p99_ms_median']['sync']:.1f} "
        f"| {s['p99_ratio_sync_over_async']:.2f} |",
        f"| server CPU ms per request | {s['server_cpu_ms_per_request_median']['async']:.2f} "
        f"| {s['server_cpu_ms_per_request_median']['sync']:.2f} "
        f"| {s['cpu_per_request_ratio_sync_over_async']:.2f} |",
        f"| writer rows/s ({w['threads']} threads, 1-row groups) "
        f"| {w['rows_per_s_median']['async']:.0f} | {w['rows_per_s_median']['sync']:.0f} "
        f"| {w['throughput_ratio_sync_over_async']:.2f} |",
        "",
        f"Every row accounted for (written + dropped + pending == answered): "
        f"{s['every_row_accounted']}.",
        "",
    ]
    return "\n".join(lines)


def full_disk(system: Any, mode: str, *, duration_s: float = 20.0) -> dict[str, Any]:
    """The issue's outside measurement: the server's log on a 2 MB tmpfs (mounted over the
    perf workdir's ``logs/`` in a private mount namespace, ``unshare -m``: needs root), 8
    connections sending 50-transaction batches for ``duration_s``; then SIGTERM. Returns the
    rows answered, written and dropped by reason, the peak backlog, RSS and shutdown time."""
    settings = system.settings
    logs = settings.prediction_log.parent
    logs.mkdir(parents=True, exist_ok=True)
    here = Path(__file__).resolve()
    inner = (
        f"mount -t tmpfs -o size=2m tmpfs {logs} || exit 77; "
        f"exec {sys.executable} {here} _full_disk_inner --mode {mode} "
        f"--workdir {settings.workdir} --duration {duration_s}"
    )
    done = subprocess.run(
        ["unshare", "-m", "sh", "-c", inner], capture_output=True, text=True, timeout=900
    )
    if done.returncode != 0:
        raise RuntimeError(f"full-disk run failed ({done.returncode}): {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _full_disk_inner(system: Any, mode: str, duration_s: float) -> dict[str, Any]:
    import httpx

    from mlref.serve.metrics import parse_metrics

    with tempfile.TemporaryDirectory() as tmp:
        script, port_file = Path(tmp) / "server.py", Path(tmp) / "port"
        script.write_text(SERVER)
        stderr = (Path(tmp) / "stderr").open("w+b")
        args = [str(system.settings.workdir), str(system.model_path), str(port_file), mode]
        proc = subprocess.Popen(
            [sys.executable, str(script), *args], stdout=subprocess.DEVNULL, stderr=stderr
        )
        try:
            url = _wait_ready(proc, port_file, stderr)
            bodies = _bodies(4000, 300, 1)
            answered = 0
            peak = 0.0

            async def drive() -> dict[str, float]:
                nonlocal answered, peak
                async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                    stop = time.monotonic() + duration_s

                    async def worker(k: int) -> None:
                        nonlocal answered
                        i = k
                        while time.monotonic() < stop:
                            batch = [
                                dict(bodies[(i * 50 + j) % 4000], transaction_id=f"x{k}-{i}-{j}")
                                for j in range(50)
                            ]
                            response = await client.post(
                                "/predict/batch", json={"transactions": batch}
                            )
                            if response.status_code == 200:
                                answered += 50
                            i += 8

                    async def watch() -> None:
                        nonlocal peak
                        while time.monotonic() < stop:
                            m = parse_metrics((await client.get("/metrics")).text)
                            peak = max(peak, m["mlref_prediction_log_pending"])
                            await asyncio.sleep(0.5)

                    await asyncio.gather(*(worker(k) for k in range(8)), watch())
                    await asyncio.sleep(1.0)  # the last flush window
                    return parse_metrics((await client.get("/metrics")).text)

            metrics = asyncio.run(drive())
            status = Path(f"/proc/{proc.pid}/status").read_text()
            rss_kb = int(next(x for x in status.splitlines() if x.startswith("VmRSS")).split()[1])
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            proc.wait(120)
            shutdown_s = time.monotonic() - started
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(30)
            stderr.close()
    prefix = "mlref_prediction_log_rows_dropped_total"
    return {
        "mode": mode,
        "answered_rows": answered,
        "written": metrics["mlref_prediction_log_rows_written_total"],
        "dropped": {k.split('"')[1]: v for k, v in metrics.items() if k.startswith(prefix)},
        "pending_at_end": metrics["mlref_prediction_log_pending"],
        "peak_pending_rows": peak,
        "rss_mb": rss_kb / 1024,
        "shutdown_s": shutdown_s,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    parser.add_argument("--duration", type=float, default=3.0, help="s per server round")
    parser.add_argument("--first", choices=("sync", "async"), default="sync", help="ABBA's A")
    parser.add_argument(
        "command",
        nargs="?",
        default="ratios",
        choices=("ratios", "full-disk", "_full_disk_inner"),
        help="ratios (default): sync/async; full-disk: the log on a 2 MB tmpfs (root)",
    )
    parser.add_argument("--mode", choices=("sync", "async"), default="async")
    args = parser.parse_args(argv)
    system = small_system(args.workdir)
    if args.command != "ratios":
        if args.command == "full-disk":
            out = full_disk(system, args.mode, duration_s=max(args.duration, 20.0))
        else:
            out = _full_disk_inner(system, args.mode, args.duration)
        print(json.dumps(out))
        return 0
    result: dict[str, Any] = {"machine": machine()}
    result.update(bench_predlog(system, duration_s=args.duration, first=args.first))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "predlog.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "predlog.md").write_text(markdown(result))
    print(markdown(result))
    return 0 if result["server"]["every_row_accounted"] else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main())
