"""``run_scale(out_dir)``: everything of the scale-out on this machine, measured in one run.

1. Spark batch scoring vs the single-process batch scorer on the same offline parquet and the
   same as-of time: parity (max |diff|) and users scored per second (Spark timed warm: the
   second run, after the session and its Python workers are up).
2. Feast online lookups on Redis vs SQLite: the same events materialised into both; wall
   time of ``online_model_features`` for a batch of users (one online read + transforms).
3. Server replicas: a ``ReplicaSet`` (one port each, health per replica, per-process metrics
   summed) and a ``WorkerPool`` (``uvicorn --workers``) driven by Locust with ``--processes``
   (master + workers on this machine) through ``mlref.load.runner.run_load``.

Writes ``scale.json`` and ``scale.md`` into ``out_dir``. Everything is bounded (sizes, repeats,
run times) and loopback only; redis-server is started and stopped here.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def _train_tiny_model(events: Any, folder: Path, *, seed: int = 0) -> Path:
    import xgboost as xgb

    from mlref.export import to_onnx
    from mlref.features.definitions import MODEL_FEATURES
    from mlref.features.offline import batch_model_features

    sample = events.sample(n=min(len(events), 20_000), random_state=seed)
    x = batch_model_features(events, sample)
    model = xgb.XGBClassifier(
        n_estimators=50, max_depth=4, learning_rate=0.2, random_state=seed, n_jobs=1
    )
    model.fit(x, sample["is_fraud"].to_numpy())
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.onnx"
    path.write_bytes(to_onnx(model, MODEL_FEATURES).SerializeToString())
    card = {"feature_names": MODEL_FEATURES, "decision": {"threshold": 0.5}, "version": "scale-1"}
    path.with_suffix(".card.json").write_text(json.dumps(card))
    return path


def measure_spark_batch(
    out: Path, *, n_users: int, days: int, seed: int, partitions: int
) -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    from mlref.data.generate import generate_transactions
    from mlref.features.offline import stored_rows, write_offline_parquet
    from mlref.scale.spark_batch import local_spark, score_batch_local, score_batch_spark
    from mlref.settings import DataConfig

    events = generate_transactions(DataConfig(n_users=n_users, days=days, seed=seed))
    rows = stored_rows(events)
    parquet = write_offline_parquet(rows, out / "spark" / "user_state.parquet")
    model = _train_tiny_model(events, out / "spark" / "model")
    as_of = pd.Timestamp(events["event_timestamp"].max()).floor("D")
    made = pd.Timestamp.now(tz="UTC")

    started = time.perf_counter()
    local = score_batch_local(pd.read_parquet(parquet), as_of, model, "scale-1", generated_at=made)
    local_s = time.perf_counter() - started

    with local_spark("mlref-scale", cores=2, shuffle_partitions=partitions) as spark:
        started = time.perf_counter()
        score_batch_spark(spark, parquet, as_of, model, "scale-1", generated_at=made)
        cold_s = time.perf_counter() - started
        started = time.perf_counter()
        remote = score_batch_spark(spark, parquet, as_of, model, "scale-1", generated_at=made)
        warm_s = time.perf_counter() - started
    same_users = remote["user_id"].tolist() == local["user_id"].tolist()
    max_diff = (
        float(np.max(np.abs(remote["score"].to_numpy() - local["score"].to_numpy())))
        if same_users and len(local)
        else float("inf")
    )
    users = len(local)
    return {
        "events": len(events),
        "stored_rows": len(rows),
        "users_scored": users,
        "as_of": as_of.isoformat(),
        "partitions": partitions,
        "single_process_s": local_s,
        "spark_cold_s": cold_s,
        "spark_warm_s": warm_s,
        "single_process_rows_per_s": users / local_s,
        "spark_rows_per_s": users / warm_s,
        "spark_vs_single_ratio": (users / warm_s) / (users / local_s),
        "parity_max_abs_diff": max_diff,
        "parity_ok": bool(same_users and max_diff <= 1e-6),
    }


def measure_online_lookup(
    out: Path, redis_url: str, *, n_users: int, days: int, seed: int, batch: int, repeats: int
) -> tuple[dict[str, Any], Any]:
    import numpy as np
    import pandas as pd

    from mlgates import stats
    from mlref.data.generate import generate_transactions
    from mlref.features.store import build_feature_store
    from mlref.scale.redis_store import lookup_latency_ms, redis_settings
    from mlref.settings import DataConfig, make_settings

    events = generate_transactions(DataConfig(n_users=n_users, days=days, seed=seed))
    rng = np.random.default_rng(seed)
    users = rng.choice(events["user_id"].unique(), size=min(batch, events["user_id"].nunique()))
    t = pd.Timestamp(events["event_timestamp"].max()) + pd.Timedelta(minutes=5)
    requests = pd.DataFrame(
        {
            "user_id": users.astype("int64"),
            "amount": rng.lognormal(3.5, 1.0, len(users)),
            "merchant_category": "grocery",
            "event_timestamp": pd.Series([t] * len(users)).astype("datetime64[ns, UTC]"),
        }
    )
    result: dict[str, Any] = {"events": len(events), "batch": len(users), "repeats": repeats}
    sqlite_settings = None
    for backend in ("sqlite", "redis"):
        settings = make_settings(out / f"store_{backend}", n_users=n_users, days=days, seed=seed)
        if backend == "redis":
            settings = redis_settings(settings, redis_url)
        else:
            sqlite_settings = settings
        settings.ensure_dirs()
        timings: dict[str, float] = {}
        store = build_feature_store(settings, events, timings=timings)
        samples = lookup_latency_ms(store, requests, repeats=repeats)
        pct = stats.percentiles(np.asarray(samples), (50, 95))
        result[backend] = {
            "materialize_s": timings.get("materialize"),
            "p50_ms": pct["p50"],
            "p95_ms": pct["p95"],
            "mean_ms": float(np.mean(samples)),
        }
    result["redis_vs_sqlite_p50_ratio"] = result["redis"]["p50_ms"] / result["sqlite"]["p50_ms"]
    # the raw data beside the sqlite store, for the load test's users file
    events.to_parquet(_raw_path(sqlite_settings), index=False)
    return result, sqlite_settings


def _raw_path(settings: Any) -> Path:
    path = Path(settings.raw_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def measure_replicas(
    out: Path, settings: Any, model: Path, *, replicas: int, requests: int
) -> dict[str, Any]:
    import pandas as pd

    from mlref.pipeline import transaction_payloads
    from mlref.scale.replicas import ReplicaSet, requests_total, send_to_each

    events = pd.read_parquet(settings.raw_path)
    sample = events.tail(requests).copy()
    sample["event_timestamp"] = pd.Timestamp(events["event_timestamp"].max()) + pd.Timedelta(
        minutes=5
    )
    with ReplicaSet(settings, replicas, model_path=model, run_dir=out / "replicas") as rs:
        health = [h.__dict__ for h in rs.health()]
        before = [requests_total(m) for m in rs.metrics()]
        sent = send_to_each(rs.urls, transaction_payloads(sample))
        after = [requests_total(m) for m in rs.metrics()]
    counted = [a - b for a, b in zip(after, before, strict=True)]
    return {
        "replicas": replicas,
        "health": health,
        "answered_200_per_replica": sent,
        "metrics_count_per_replica": counted,
        "metrics_sum_equals_sent": sum(counted) == sum(sent) == len(sample),
    }


def measure_distributed_load(
    out: Path,
    settings: Any,
    model: Path,
    *,
    workers: int,
    locust_processes: int,
    users: int,
    run_time_s: int,
) -> dict[str, Any]:
    from mlref.load.runner import run_load
    from mlref.scale.replicas import WorkerPool

    with WorkerPool(settings, workers, model_path=model, log_path=out / "pool.log") as pool:
        summary = run_load(
            settings,
            users=users,
            spawn_rate=float(users),
            run_time=run_time_s,
            out_dir=out / "locust",
            host=pool.url,
            processes=locust_processes,
            p99_budget_ms=1000.0,
        )
    return {
        "uvicorn_workers": workers,
        "locust_processes": locust_processes,
        "users": users,
        "run_time_s": run_time_s,
        "requests": summary.requests,
        "throughput_rps": summary.throughput_rps,
        "p50_ms": summary.p50_ms,
        "p99_ms": summary.p99_ms,
        "error_rate": summary.error_rate,
        "passed": summary.passed,
    }


def run_scale(
    out_dir: str | os.PathLike[str],
    *,
    spark_users: int = 20_000,
    spark_days: int = 30,
    lookup_users: int = 2_000,
    lookup_days: int = 10,
    lookup_batch: int = 64,
    lookup_repeats: int = 30,
    replicas: int = 2,
    replica_requests: int = 40,
    locust_processes: int = 2,
    locust_users: int = 20,
    locust_run_time_s: int = 15,
    seed: int = 1,
    parts: tuple[str, ...] = ("spark", "lookup", "replicas", "load"),
) -> dict[str, Any]:
    """Run the scale-out parts and write ``scale.json`` + ``scale.md`` into ``out_dir``."""
    from mlref.scale.redis_store import redis_server

    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_avg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        }
    }
    started = time.perf_counter()
    if "spark" in parts:
        logger.info("spark batch vs single process (%d users, %d days)", spark_users, spark_days)
        report["spark_batch"] = measure_spark_batch(
            out, n_users=spark_users, days=spark_days, seed=seed, partitions=4
        )
    if {"lookup", "replicas", "load"} & set(parts):
        with redis_server() as redis:
            lookup, settings = measure_online_lookup(
                out,
                redis.url,
                n_users=lookup_users,
                days=lookup_days,
                seed=seed,
                batch=lookup_batch,
                repeats=lookup_repeats,
            )
        report["online_lookup"] = lookup
        if {"replicas", "load"} & set(parts):
            import pandas as pd

            model = _train_tiny_model(pd.read_parquet(settings.raw_path), out / "model")
            if "replicas" in parts:
                report["replicas"] = measure_replicas(
                    out, settings, model, replicas=replicas, requests=replica_requests
                )
            if "load" in parts:
                report["distributed_load"] = measure_distributed_load(
                    out,
                    settings,
                    model,
                    workers=replicas,
                    locust_processes=locust_processes,
                    users=locust_users,
                    run_time_s=locust_run_time_s,
                )
    report["wall_time_s"] = time.perf_counter() - started
    (out / "scale.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    (out / "scale.md").write_text(markdown(report))
    logger.info("scale report: %s", out / "scale.md")
    return report


def markdown(report: dict[str, Any]) -> str:
    """The figures as a README-ready markdown section."""
    m = report["machine"]
    lines = [
        "## Scaling figures (measured)",
        "",
        f"Machine: {m['cpus']} CPUs, Python {m['python']}, 1-min load average "
        f"{m['load_avg_1m']:.1f} at the start (shared machine: read ratios, not absolutes).",
        "",
    ]
    sb = report.get("spark_batch")
    if sb:
        lines += [
            "| batch scoring | users scored | wall time | users/s |",
            "|---|---:|---:|---:|",
            f"| single process (pandas + ONNX Runtime) | {sb['users_scored']} | "
            f"{sb['single_process_s']:.2f} s | {sb['single_process_rows_per_s']:.0f} |",
            f"| Spark local[2], {sb['partitions']} partitions (warm) | {sb['users_scored']} | "
            f"{sb['spark_warm_s']:.2f} s | {sb['spark_rows_per_s']:.0f} |",
            "",
            f"Spark / single process throughput: {sb['spark_vs_single_ratio']:.2f}x "
            f"(cold first run {sb['spark_cold_s']:.1f} s incl. Python worker start-up); "
            f"{sb['stored_rows']} stored rows from {sb['events']} events; parity max |diff| "
            f"{sb['parity_max_abs_diff']:.2g} ({'ok' if sb['parity_ok'] else 'FAILED'}).",
            "",
        ]
    ol = report.get("online_lookup")
    if ol:
        lines += [
            f"| Feast online lookup, batch of {ol['batch']} users | p50 | p95 |",
            "|---|---:|---:|",
            f"| SQLite | {ol['sqlite']['p50_ms']:.2f} ms | {ol['sqlite']['p95_ms']:.2f} ms |",
            f"| Redis (127.0.0.1) | {ol['redis']['p50_ms']:.2f} ms | "
            f"{ol['redis']['p95_ms']:.2f} ms |",
            "",
            f"Redis / SQLite p50: {ol['redis_vs_sqlite_p50_ratio']:.2f}x ({ol['repeats']} "
            "repeats each, same events, same run).",
            "",
        ]
    rp = report.get("replicas")
    if rp:
        lines += [
            f"Replicas: {rp['replicas']} processes on {rp['replicas']} ports, all healthy: "
            f"{all(h['ready'] for h in rp['health'])}; requests answered per replica "
            f"{rp['answered_200_per_replica']}, counted by each /metrics "
            f"{rp['metrics_count_per_replica']} (sum matches: {rp['metrics_sum_equals_sent']}).",
            "",
        ]
    dl = report.get("distributed_load")
    if dl:
        p99 = "-" if dl["p99_ms"] is None else f"{dl['p99_ms']:.1f} ms"
        lines += [
            f"Locust master + {dl['locust_processes']} worker processes, {dl['users']} users "
            f"for {dl['run_time_s']} s against uvicorn --workers {dl['uvicorn_workers']}: "
            f"{dl['requests']} requests, {dl['throughput_rps']:.1f} req/s, p99 {p99}, "
            f"errors {dl['error_rate']:.2%}.",
            "",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m mlref.scale", description=__doc__)
    parser.add_argument("--out", default=".mlref-scale", help="output folder")
    parser.add_argument(
        "--parts", default="spark,lookup,replicas,load", help="comma list of parts to run"
    )
    parser.add_argument("--spark-users", type=int, default=20_000)
    parser.add_argument("--locust-run-time", type=int, default=15)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    parts = tuple(p.strip() for p in args.parts.split(",") if p.strip())
    report = run_scale(
        args.out,
        spark_users=args.spark_users,
        locust_run_time_s=args.locust_run_time,
        parts=parts,
    )
    print(markdown(report))
    found = problems(report)
    for problem in found:
        logger.error("scale-out check failed: %s", problem)
    return 1 if found else 0


# the load gate's default error budget (mlref.load): more failed requests than this in the
# distributed run means the worker pool or Locust's --processes mode is broken
MAX_LOAD_ERROR_RATE = 0.01


def problems(report: dict[str, Any]) -> list[str]:
    """What in a :func:`run_scale` report says an engine is broken (empty when all is well).

    Throughput and latency are not judged: on a shared machine they are figures, not
    verdicts. Parity, per-replica accounting and failed requests are.
    """
    found = []
    sb = report.get("spark_batch")
    if sb is not None and not sb["parity_ok"]:
        found.append(
            f"Spark scores differ from the single process by {sb['parity_max_abs_diff']:.3g}"
        )
    rp = report.get("replicas")
    if rp is not None:
        if not rp["metrics_sum_equals_sent"]:
            found.append(
                f"replica /metrics counted {rp['metrics_count_per_replica']}, sent "
                f"{rp['answered_200_per_replica']}"
            )
        if not all(h["ready"] for h in rp["health"]):
            found.append(f"a replica was not ready: {rp['health']}")
    dl = report.get("distributed_load")
    if dl is not None:
        if not dl["requests"]:
            found.append("distributed Locust sent no requests")
        elif dl["error_rate"] > MAX_LOAD_ERROR_RATE:
            found.append(
                f"distributed Locust: {dl['error_rate']:.2%} of requests failed "
                f"(budget {MAX_LOAD_ERROR_RATE:.0%}); see the locust folder in the output"
            )
    return found
