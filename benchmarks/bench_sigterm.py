"""SIGTERM under overload: what happens to requests on connections the server has not accepted.

Starts the scoring server (``python -m mlref.load.server``, the benchmark's small system, the
defaults), then opens ``--connections`` fresh connections within ``--spread`` seconds, each
sending one ``POST /predict`` and reading its answer, and sends SIGTERM to the server
``--term-after`` seconds into that burst. Every request ends in one of: an HTTP status, a
connection reset or closed without an answer (``no_answer``), a refused connection
(``refused``: the listening socket was already closed), or no answer within ``--timeout``.
Loopback only, bounded in count and time.

    uv run python benchmarks/bench_sigterm.py [--connections 600] [--spread 0.3]
        [--term-after 0.15] -> printed, and benchmarks/results/sigterm.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _perfutil import DEFAULT_WORKDIR, ROOT, machine, progress, small_system

RESULTS = ROOT / "benchmarks" / "results"


async def _one(port: int, body: bytes, delay: float, timeout: float) -> str:
    await asyncio.sleep(delay)
    head = (
        f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(head + body)
                await writer.drain()
                line = await reader.readline()
                if not line:
                    return "no_answer"
                return line.decode("latin-1").split(" ", 2)[1]
            finally:
                writer.close()
    except ConnectionRefusedError:
        return "refused"
    except (ConnectionResetError, BrokenPipeError, asyncio.IncompleteReadError):
        return "no_answer"
    except TimeoutError:
        return "timeout"


async def _burst(
    port: int,
    pid: int | None,
    body: bytes,
    n: int,
    spread: float,
    term_after: float,
    timeout: float,
) -> list[str]:
    """``n`` requests on fresh connections over ``spread`` s; SIGTERM to ``pid`` (only when
    one is given, and only that process) ``term_after`` s in."""
    if pid is not None:
        if pid <= 1:
            raise ValueError(f"refusing to signal pid {pid}")
        asyncio.get_running_loop().call_later(term_after, os.kill, pid, signal.SIGTERM)
    delays = [spread * i / n for i in range(n)]
    return list(await asyncio.gather(*(_one(port, body, d, timeout) for d in delays)))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    p.add_argument("--connections", type=int, default=600)
    p.add_argument("--spread", type=float, default=0.3)
    p.add_argument("--term-after", type=float, default=0.15)
    p.add_argument("--timeout", type=float, default=15.0)
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args()
    if not (1 <= args.connections <= 2000 and 0 < args.spread <= 5 and args.timeout <= 60):
        p.error("connections in [1, 2000], spread in (0, 5] s, timeout <= 60 s")
    from mlref.load.launcher import ServerProcess
    from mlref.load.runner import traffic_env
    from mlref.load.traffic import Traffic

    info = machine()
    system = small_system(args.workdir)
    run_dir = Path(tempfile.mkdtemp(prefix="mlref-bench-sigterm-"))
    os.environ.update(traffic_env(system.settings, run_dir))
    body = json.dumps(Traffic.from_env(stream=7, prefix="term").transaction()).encode()
    server = ServerProcess(
        system.settings.workdir, run_dir, model_path=system.model_path, name="sigterm"
    )
    server.start()
    try:
        handle = server.wait_ready(240)
        warm = asyncio.run(_burst(handle.port, None, body, 20, 0.5, 0.0, args.timeout))
        progress(f"warm-up: {Counter(warm)}")
        started = time.monotonic()
        outcomes = asyncio.run(
            _burst(
                handle.port,
                handle.pid,
                body,
                args.connections,
                args.spread,
                args.term_after,
                args.timeout,
            )
        )
        took = time.monotonic() - started
    finally:
        code = server.stop()
    counts = dict(Counter(outcomes))
    result: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": info,
        "connections": args.connections,
        "spread_s": args.spread,
        "term_after_s": args.term_after,
        "outcomes": counts,
        "burst_took_s": took,
        "server_exit_code": code,
        "server_log_tail": (run_dir / "sigterm.log").read_text(errors="replace")[-2000:],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "sigterm.json").write_text(json.dumps(result, indent=2) + "\n")
    progress(f"outcomes: {counts} in {took:.1f} s; server exit code {code}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
