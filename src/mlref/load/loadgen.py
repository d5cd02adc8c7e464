"""An open-loop HTTP load generator for benchmarks: a fixed offered rate, exact latencies.

``python -m mlref.load.loadgen --url http://127.0.0.1:PORT --rate 200 --duration 5 --out DIR``

Requests are scheduled at seeded Poisson arrival times for the offered rate, whatever the
server does (open loop: a slow server does not slow the sender down, so its queueing shows up
in the latency instead of hiding as a lower request rate). Each request's latency runs from its
*scheduled* time to its last response byte, so time spent waiting for a free connection counts
(no coordinated omission). HTTP/1.1 keep-alive over at most ``--connections`` sockets, raw
asyncio streams: far less CPU per request than a full client, which matters when the generator
and the server share two cores.

Why this is kept beside Locust (which ``mlref.load.runner`` drives for the realistic mix of
single, batch and invalid requests): Locust is closed loop. Each simulated user sends its next
request only after the previous answer, so when the server stalls, Locust stops sending: the
requests that would have arrived during the stall are never sent and the stall shows in one
latency per user instead of in every request it delays (coordinated omission). It cannot hold
a schedule, and the latency gate and the capacity search need one. Measured on this 2-core
machine (shared with other jobs) against a toy keep-alive server that answers in ~2 ms but
holds every request for one second once: this generator at 40 req/s for 10 s sent all 400
requests and read p99 835 ms; Locust with 2 users paced at 20 req/s each (``constant_pacing``,
the same 40 req/s offered) recorded 520 requests with p99 24 ms, the stall visible only in its
max (992 ms), because the ~38 requests due during that second were never sent.

Records go to ``DIR/requests-<pid>.csv`` (``mlref.load.rawlog`` format), one line for every
measured request sent, answered or not; a JSON line on stdout summarises the point (offered and
achieved rate, percentiles, errors, and the generator's own lag behind schedule, which flags a
saturated generator). Loopback only; bounded by duration plus a drain timeout.

Requests without an answer: after the last send the generator waits ``drain_s`` (``--drain``)
for the requests still in flight, then cancels them. A cancelled request is recorded like any
other, with status 0, exception ``TIMEOUT_EXCEPTION`` and its *censored* latency: from its
scheduled time to the cancellation, which is at least ``drain_s`` (its true latency is longer,
or infinite). The summary's fields, for the measured requests only (warm-up ones are counted
apart in ``warmup_timed_out``):

- ``sent`` = ``completed_ok`` + ``errors`` + ``timed_out``; ``errors`` are requests that ended
  without a 200 (an HTTP error status, a refused or broken connection) and do NOT include
  ``timed_out``; ``failed`` = ``errors`` + ``timed_out`` and ``error_share`` = ``failed / sent``
  are the totals to judge a point by.
- ``p50_ms`` / ``p99_ms`` are taken over the successful requests AND the timed-out ones at their
  censored latency, so requests left without an answer are never dropped from the tail (the
  slowest requests are exactly the ones that time out; leaving them out would make p99 read low
  under overload). When any request timed out, ``latency_censored`` is true and a percentile at
  or above the timed-out share's rank is only a lower bound (at least ``drain_s``).
  ``p99_ok_ms`` is the p99 of the successful requests alone, for reference.

To recompute these percentiles from the raw records, keep the rows with
``(status == 200 and exception == "") or exception == TIMEOUT_EXCEPTION``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections.abc import Sequence
from urllib.parse import urlsplit

from mlref.load.rawlog import RawWriter
from mlref.load.traffic import Traffic

NAME = "/predict"
TIMEOUT_EXCEPTION = "timeout: no response before the drain deadline"


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.used = False  # has carried a request before (a keep-alive reuse)

    def close(self) -> None:
        self.writer.close()


class _Pool:
    """At most ``limit`` connections; a request waits for a free one (and that wait counts)."""

    def __init__(self, host: str, port: int, limit: int) -> None:
        self.host = host
        self.port = port
        self.slots = asyncio.Semaphore(limit)
        self.idle: list[_Conn] = []
        self.opened = 0

    async def get(self) -> _Conn:
        await self.slots.acquire()
        if self.idle:
            return self.idle.pop()
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port)
        except BaseException:
            self.slots.release()
            raise
        self.opened += 1
        return _Conn(reader, writer)

    def put(self, conn: _Conn | None) -> None:
        """Give the slot back; ``conn`` None means the connection was closed."""
        if conn is not None:
            self.idle.append(conn)
        self.slots.release()

    def close(self) -> None:
        for conn in self.idle:
            conn.close()
        self.idle.clear()


async def _roundtrip(conn: _Conn, head: bytes, body: bytes) -> tuple[int, bool]:
    """Send one request, read one response; returns (status, keep_alive)."""
    conn.writer.write(head + body)
    await conn.writer.drain()
    header = await conn.reader.readuntil(b"\r\n\r\n")
    lines = header.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = None
    keep = True
    for line in lines[1:]:
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key == "content-length":
            length = int(value.strip())
        elif key == "connection" and value.strip().lower() == "close":
            keep = False
        elif key == "transfer-encoding":
            raise ValueError("chunked responses are not supported by this generator")
    if length is None:
        raise ValueError("response without content-length")
    await conn.reader.readexactly(length)
    return status, keep


def _head(host: str, port: int, path: str, length: int) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


async def run(
    url: str,
    rate: float,
    duration_s: float,
    out_dir: str,
    *,
    connections: int = 64,
    seed: int = 0,
    warmup_s: float = 1.0,
    drain_s: float = 5.0,
) -> dict[str, object]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    if host not in ("127.0.0.1", "localhost"):
        raise ValueError(f"loadgen only targets 127.0.0.1, got {host}")
    if not (0 < drain_s <= 120):
        raise ValueError(f"drain_s must be in (0, 120] seconds, got {drain_s}")
    traffic = Traffic.from_env(stream=seed, prefix="bench")
    n = max(1, round(rate * duration_s))
    n_warm = round(rate * warmup_s)
    rng = random.Random(seed)
    bodies = [json.dumps(traffic.transaction()).encode() for _ in range(n_warm + n)]
    gaps = [rng.expovariate(rate) for _ in range(n_warm + n)]
    pool = _Pool(host, port, connections)
    writer = RawWriter(out_dir)
    lags: list[float] = []
    done: list[tuple[int, float, str]] = []  # status, latency, error of measured requests
    recorded: set[int] = set()  # indices of the measured requests already written
    finishes: list[float] = []  # when each successful request finished, warm-up ones too

    def record_row(i: int, status: int, latency_ms: float, error: str) -> None:
        wall = time.time() - latency_ms / 1000.0
        writer.add(NAME, status, latency_ms, error, wall, 1)
        done.append((status, latency_ms, error))
        recorded.add(i)

    async def one(i: int, scheduled: float, record: bool) -> None:
        body = bodies[i]
        status, error = 0, ""
        try:
            conn = await pool.get()
        except OSError as exc:
            error = f"{type(exc).__name__}: {exc}"[:200]
        else:
            keep = False
            head = _head(host, port, NAME, len(body))
            try:
                try:
                    status, keep = await _roundtrip(conn, head, body)
                except asyncio.IncompleteReadError as exc:
                    # the server closed an idle keep-alive connection as we reused it (the
                    # keep-alive race): nothing was answered, so retry once on a fresh
                    # connection, as HTTP clients do for a stale pooled connection
                    if not (conn.used and not exc.partial):
                        raise
                    conn.close()
                    conn = _Conn(*await asyncio.open_connection(host, port))
                    pool.opened += 1
                    status, keep = await _roundtrip(conn, head, body)
                conn.used = True
            except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
                error = f"{type(exc).__name__}: {exc}"[:200]
            finally:
                if not keep:
                    conn.close()
                pool.put(conn if keep else None)
        finished = time.perf_counter()
        latency_ms = (finished - scheduled) * 1000.0
        if status == 200 and not error:
            finishes.append(finished)
        if record:
            ok = status == 200 and not error
            record_row(i, status, latency_ms, "" if ok else (error or f"HTTP {status}"))

    tasks: list[asyncio.Task[None]] = []
    scheduled_at: list[float] = []
    t0 = time.perf_counter() + 0.05
    at = t0
    measure_start = measure_end = 0.0
    for i in range(n_warm + n):
        at += gaps[i]
        if i == n_warm:
            measure_start = at
        delay = at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        lag = time.perf_counter() - at
        if i >= n_warm:
            lags.append(lag)
        tasks.append(asyncio.create_task(one(i, at, i >= n_warm)))
        scheduled_at.append(at)
    measure_end = at
    drain_from = time.perf_counter()
    finished_tasks, pending = await asyncio.wait(tasks, timeout=drain_s)
    broken = [t.exception() for t in finished_tasks if not t.cancelled() and t.exception()]
    if broken:  # a bug in the generator, not a server error: never report a partial run
        raise RuntimeError(f"{len(broken)} load tasks crashed") from broken[0]
    # (the max guards against a timer firing a hair early: censored latencies >= drain_s)
    cancelled_at = max(time.perf_counter(), drain_from + drain_s)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=2)
    # every measured request still without a record was cut off at the drain deadline: record
    # it (status 0, censored latency >= drain_s) rather than drop it. Done here, not inside
    # ``one``, so a task cancelled before its first step is recorded too.
    timed_out = 0
    for i in range(n_warm, n_warm + n):
        if i not in recorded:
            timed_out += 1
            record_row(i, 0, (cancelled_at - scheduled_at[i]) * 1000.0, TIMEOUT_EXCEPTION)
    pool.close()
    writer.flush()
    window = max(measure_end - measure_start, 1e-9)
    ok_lat = sorted(lat for status, lat, err in done if status == 200 and not err)
    censored = [lat for _, lat, err in done if err == TIMEOUT_EXCEPTION]
    tail = sorted(ok_lat + censored)  # successes and timed-out requests at censored latency
    # throughput = successful completions inside the measured window, whichever request they
    # belong to (an overloaded server is still working off warm-up requests in the window)
    in_window = sum(1 for fin in finishes if measure_start <= fin <= measure_end)
    lags.sort()

    def pct(values: list[float], q: float) -> float | None:
        if not values:
            return None
        k = (len(values) - 1) * q
        lo = int(k)
        hi = min(lo + 1, len(values) - 1)
        return values[lo] + (values[hi] - values[lo]) * (k - lo)

    errors = sum(1 for s, _, e in done if not (s == 200 and not e)) - timed_out
    return {
        "offered_rps": rate,
        "sent": n,
        "completed_ok": len(ok_lat),
        "errors": errors,  # without the timed-out requests
        "timed_out": timed_out,  # measured requests cut off at the drain deadline
        "warmup_timed_out": len(pending & set(tasks[:n_warm])),
        "failed": errors + timed_out,
        "error_share": (errors + timed_out) / n,
        "achieved_rps": in_window / window,
        "p50_ms": pct(tail, 0.50),
        "p99_ms": pct(tail, 0.99),
        "p99_ok_ms": pct(ok_lat, 0.99),
        "latency_censored": timed_out > 0,
        "drain_s": drain_s,
        "generator_lag_p99_ms": (pct(lags, 0.99) or 0.0) * 1000.0,
        "connections_opened": pool.opened,
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mlref.load.loadgen", description=__doc__)
    p.add_argument("--url", required=True)
    p.add_argument("--rate", type=float, required=True, help="offered requests per second")
    p.add_argument("--duration", type=float, default=5.0, help="measured seconds")
    p.add_argument("--warmup", type=float, default=1.0, help="unrecorded seconds first")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--drain", type=float, default=5.0, help="seconds to wait for answers after the last send"
    )
    p.add_argument("--out", required=True, help="folder for the raw records")
    args = p.parse_args(argv)
    if not (0 < args.rate <= 20_000 and 0 < args.duration <= 120):
        p.error("rate must be in (0, 20000] and duration in (0, 120] s")
    if not 0 < args.drain <= 120:
        p.error("drain must be in (0, 120] s")
    result = asyncio.run(
        run(
            args.url,
            args.rate,
            args.duration,
            args.out,
            connections=args.connections,
            seed=args.seed,
            warmup_s=args.warmup,
            drain_s=args.drain,
        )
    )
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
