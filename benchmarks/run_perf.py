"""One performance run: model, features, server, gates and the cost model, as ratios.

    uv run python benchmarks/run_perf.py [--workdir .mlref-perf] [--out benchmarks/results]

Builds (or reuses) a small reference system in ``--workdir`` (generated data -> Feast store ->
XGBoost -> ONNX), then runs ``bench_model``, ``bench_hotpath``, ``bench_features``, ``bench_server`` (mlref's
configs, the floors, and the LitServe and BentoML peers of ``benchmarks/peers``) and
``bench_gates.py`` (in its own process) and ``bench_evidently.py`` (with Evidently added
for that run only), prints the seed's cost formulas with the measured
figures, and writes ``OUT/perf.json`` and ``OUT/perf.md``. Every figure is measured next to
its comparison in the same run; the ratios are the result, absolute times move with the
machine's load (recorded as ``machine.load_average_1m``). About 15-20 minutes on 2 cores with the LitServe and BentoML peers (``--loads`` shortens the
server ladder).
Exit code 1 when a section failed (its error is in the JSON), 0 otherwise: the goals are
reported, never enforced here.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _perfutil import DEFAULT_WORKDIR, ROOT, machine, progress, small_system
from bench_canary import bench_canary
from bench_canary import markdown_section as canary_markdown
from bench_features import bench_features
from bench_hotpath import bench_hotpath
from bench_model import bench_model
from bench_predlog import bench_predlog
from bench_server import bench_server

SECTIONS = ("model", "hotpath", "features", "server", "gates", "evidently", "predlog", "canary")


def run_gates_bench(timeout_s: float = 300.0) -> dict[str, Any]:
    script = Path(__file__).resolve().parent / "bench_gates.py"
    if not script.exists():
        return {"skipped": "benchmarks/bench_gates.py not present"}
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench_gates.py exited {done.returncode}: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def run_evidently_bench(timeout_s: float = 900.0) -> dict[str, Any]:
    """``bench_evidently.py`` with Evidently in an ephemeral overlay (``uv run --with``): the
    project never depends on it. Skipped, with the reason, when it does not install/import."""
    import shutil

    script = Path(__file__).resolve().parent / "bench_evidently.py"
    uv = shutil.which("uv")
    if uv is None:
        return {"skipped": "uv not found on PATH (needed to add Evidently for this run only)"}
    done = subprocess.run(
        [uv, "run", "--locked", "--with", "evidently", "python", str(script)],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
        cwd=ROOT,
    )
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"skipped": f"Evidently did not install or run cleanly: {reason[:300]}"}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _costs(results: dict[str, Any], hourly_usd: float) -> dict[str, Any]:
    from mlref.costs import cost_report

    model = results.get("model", {})
    features = results.get("features", {})
    server = results.get("server", {})
    configs = server.get("configs", {})
    scoring = {k: v for k, v in configs.items() if k not in ("floor", "framework_floor")}
    if not (model.get("rows") and features.get("rows") and scoring):
        return {"skipped": "needs the model, features and server sections"}
    basis = server.get("goals", {}).get("basis", "max_completed_rps")
    best = max(scoring, key=lambda k: scoring[k][basis])
    throughput = scoring[best][basis]
    # the seed's "latency" is the busy time of one full batch: one Feast lookup of N users
    # plus one ONNX call on N rows (N = the largest size both benchmarks measured)
    sizes = {r["users"] for r in features["rows"]} & {r["batch"] for r in model["rows"]}
    n = max(sizes) if sizes else None
    if n is None or not throughput:
        return {"skipped": "no common batch size or no measured throughput"}
    lookup_s = next(r["one_call_ms"] for r in features["rows"] if r["users"] == n) / 1e3
    onnx_s = next(r["onnx_us_per_row"] for r in model["rows"] if r["batch"] == n) * n / 1e6
    report = cost_report(
        train_rows_per_s=model["fit_rows_per_s"],
        serve_throughput_rps=throughput,
        serve_latency_s=lookup_s + onnx_s,
        serve_batch_size=n,
        hourly_usd=hourly_usd,
    )
    report["inputs"] = {
        "server_config": best,
        "throughput_basis": basis,
        "batch_busy_s": lookup_s + onnx_s,
        "batch_size": n,
        "train_rows_per_s": model["fit_rows_per_s"],
    }
    return report


def _f(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return f"{value:.{digits}g}"
    return str(value)


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    out = [
        "# Performance (latest `nox -s perf`)",
        "",
        f"{time.strftime('%Y-%m-%d', time.gmtime(results['started']))}, {m['cpus']} CPUs, "
        f"load average {_f(m['load_average_1m'])} at the start, Python {m['python']}. "
        "Each ratio compares two things measured side by side in this run; absolute times "
        "move with the machine's load.",
        "",
    ]
    if results.get("updated_sections"):
        kept = results.get("kept_from") or {}
        when = kept.get("started")
        load = (kept.get("machine") or {}).get("load_average_1m")
        out += [
            f"Sections re-run here: {', '.join(results['updated_sections'])}; the others are "
            f"kept from the run started "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(when)) if when else '-'}"
            f" (load average {_f(load)} at its start).",
            "",
        ]
    if results.get("note"):
        out += [str(results["note"]), ""]
    model = results.get("model", {})
    if model.get("rows"):
        out += [
            f"## Model: ONNX Runtime vs native XGBoost (`inplace_predict`), "
            f"{model['n_trees']} trees of depth {model['max_depth']}, 1 thread",
            "",
            "| batch | ONNX µs/row | native µs/row | native / ONNX | native / ONNX 2 threads "
            "| large-batch model (path) | native / large-batch model |",
            "|---:|---:|---:|---:|---:|---:|---:|",
            *(
                f"| {r['batch']} | {_f(r['onnx_us_per_row'])} | {_f(r['native_us_per_row'])} | "
                f"**{_f(r['native_over_onnx'])}** | {_f(r.get('native_over_onnx_2threads'))} "
                f"| {_f(r.get('served_us_per_row'))} ({r.get('served_path', '-')}) "
                f"| **{_f(r.get('native_over_served'))}** |"
                for r in model["rows"]
            ),
            "",
        ]
        if "crossover_rows" in model:
            out += [
                f"Crossover in this run: native is faster per row from "
                f"{_f(model['crossover_rows'])} rows; the large-batch paths (score-batch, "
                f"`large_batch_model`) switch to native at {model['native_from_rows']} rows. "
                f"Large-batch goal (no slower than native per row at 1024+ rows, ratio >= 0.9): "
                f"{'met' if model['large_batch_goal_met'] else 'NOT met'}.",
                "",
            ]
    if model.get("paths"):
        sizes = sorted({r["batch"] for p in model["paths"].values() for r in p["rows"]})
        out += [
            "Large-batch paths: native time / the path's model step per row, timed in "
            "alternation with native in this run (>= 1: the path is at least as fast; goal "
            ">= 0.9 at 1024+ rows, the noise of two timings of the same code; "
            "`bench_model.bench_paths`):",
            "",
            "| path | " + " | ".join(f"{n} rows" for n in sizes) + " |",
            "|---|" + "---:|" * len(sizes),
            *(
                f"| {name} | "
                + " | ".join(
                    f"**{_f(r['native_over_path'])}**"
                    for r in sorted(p["rows"], key=lambda r: r["batch"])
                )
                + " |"
                for name, p in model["paths"].items()
            ),
            "",
            f"Paths goal: {'met' if model.get('paths_goal_met') else 'NOT met'} "
            "(`predict_batch_chunks_64`, the route before the crossover, and "
            "`spark_partition_cold`, a worker's first task, are for comparison, not held to it).",
            "",
        ]
    server = results.get("server", {})
    if server.get("configs"):
        configs = server["configs"]
        loads = sorted({float(k) for c in configs.values() for k in c["p99_by_offered"]})
        out += [
            f"## Server: p99 budget {_f(server['p99_budget_ms'])} ms, open-loop load "
            f"({server['point_duration_s']:g} s per point, at least "
            f"{server.get('min_requests_per_point', 0)} requests; p99 CIs from order "
            "statistics)",
            "",
            "| server | CPU ms/request (less idle) | req/s at p99 budget | max req/s | vs floor (at budget / max) "
            "| vs framework floor (at budget / max) | vs batching off (at budget / max) |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for name, c in configs.items():
            out.append(
                f"| {name} | {_f(c.get('cpu_ms_per_request'))} "
                f"({_f(c.get('cpu_busy_ms_per_request'))}) "
                f"| {_f(c['throughput_at_budget_rps'])} | {_f(c['max_completed_rps'])} "
                f"| {_f(c.get('at_budget_vs_floor'))} / {_f(c.get('max_vs_floor'))} "
                f"| {_f(c.get('at_budget_vs_framework_floor'))} / "
                f"{_f(c.get('max_vs_framework_floor'))} "
                f"| {_f(c.get('at_budget_vs_batching_off'))} / "
                f"{_f(c.get('max_vs_batching_off'))} |"
            )
        out += [
            "",
            "p99 (ms) by offered load (req/s); `-`: not measured (the server had saturated):",
            "",
            "| server | " + " | ".join(f"{x:g}" for x in loads) + " |",
            "|---|" + "---:|" * len(loads),
        ]
        for name, c in configs.items():
            cells = [_f(c["p99_by_offered"].get(f"{x:g}")) for x in loads]
            out.append(f"| {name} | " + " | ".join(cells) + " |")
        out += [
            "",
            "p50 (ms) by offered load (req/s):",
            "",
            "| server | " + " | ".join(f"{x:g}" for x in loads) + " |",
            "|---|" + "---:|" * len(loads),
        ]
        for name, c in configs.items():
            cells = [_f(c.get("p50_by_offered", {}).get(f"{x:g}")) for x in loads]
            out.append(f"| {name} | " + " | ".join(cells) + " |")
        if server.get("cpu_rate_rps"):
            out += [
                "",
                f"CPU ms/request: the server's process tree (psutil: user + system, children "
                f"included) over a {_f(server['cpu_rate_rps'])} req/s point / requests answered; "
                "idle CPU (ms per s with no traffic, included in the figure): "
                + ", ".join(
                    f"{n} {_f((c.get('cpu') or {}).get('idle_cpu_ms_per_s'))}"
                    for n, c in configs.items()
                )
                + ".",
            ]
        if server.get("peer_configs"):
            out += ["", "Peer settings (each framework's own batching):", ""]
            out += [
                f"- {n}: {o['peer']}, max_batch_size {o['max_batch_size']}, "
                + ("batch_timeout" if o["peer"] == "litserve" else "max_latency_ms")
                + f" {_f(o['wait_ms'])} ms"
                for n, o in server["peer_configs"].items()
            ]
        elif server.get("peers_skipped"):
            out += ["", f"Peers skipped: {server['peers_skipped']}"]
        variants = server.get("loop_variants", {})
        if "asyncio_h11_over_uvloop_httptools" in variants:
            cpu = variants["cpu"]
            out += [
                "",
                "uvicorn loop and parser (the scoring server, batching_wait_0ms, CPU ms/request at "
                f"the same rate): asyncio + h11 {_f(cpu['loop_asyncio_h11']['cpu_ms_per_request'])}"
                f", uvloop + httptools {_f(cpu['loop_uvloop_httptools']['cpu_ms_per_request'])}: "
                f"ratio **{_f(variants['asyncio_h11_over_uvloop_httptools'])}**.",
            ]
        goals = server.get("goals", {})
        out += ["", f"Goals (judged on `{goals.get('basis')}`):", ""]
        for key, goal in goals.items():
            if key in ("basis", "peer_wins"):
                continue
            figure = goal.get("value", goal.get("throughput_ratio"))
            out.append(f"- {key}: {_f(figure)} -> met: {_f(goal['met'])}")
            if goal.get("loads_with_p99_clearly_above_off"):
                loads = ", ".join(goal["loads_with_p99_clearly_above_off"])
                out.append(f"  (p99 CI wholly above batching off's at {loads} req/s)")
            if goal.get("loads_not_comparable"):
                loads = ", ".join(goal["loads_not_comparable"])
                out.append(f"  (p99 not comparable at {loads} req/s: too few requests)")
            if goal.get("floor_limited_by_generator") or goal.get(
                "floor_unsaturated_at_ladder_top"
            ):
                why = (
                    "the load generator fell behind its schedule"
                    if goal.get("floor_limited_by_generator")
                    else "the ladder ended"
                )
                out.append(
                    f"  (the floor was still keeping up when {why}: its throughput is a lower "
                    "bound, so this share is an upper bound)"
                )
            if "peer_config" in goal:
                out.append(f"  ({goal['mlref_config']} vs {goal['peer_config']})")
            if "busy_value" in goal:
                out.append(
                    f"  (less each server's idle CPU: {_f(goal['busy_value'])} -> met: "
                    f"{_f(goal['busy_met'])})"
                )
        if goals.get("peer_wins"):
            out += ["", "Where a peer beats mlref in this run:", ""]
            out += [f"- {w}" for w in goals["peer_wins"]]
        split = server.get("cost_split")
        if split:
            ms = split["ms_per_request"]
            out += [
                "",
                f"Where the time goes ({split['best_config']}, 1 / `{split['basis']}` = "
                "server time per request at that rate):",
                "",
                "| part | ms per request | share |",
                "|---|---:|---:|",
                f"| uvicorn, JSON (the floor) | {_f(ms['floor'])} | "
                f"{_f(ms['floor'] / ms['server'])} |",
                f"| FastAPI, validation (framework floor - floor) | "
                f"{_f(ms['framework_and_validation'])} | "
                f"{_f(ms['framework_and_validation'] / ms['server'])} |",
                f"| features, model, batching, log (server - framework floor) | "
                f"{_f(ms['features_model_batching_log'])} | "
                f"{_f(ms['features_model_batching_log'] / ms['server'])} |",
                "",
                f"The framework floor itself reaches {_f(split['framework_floor_share_of_floor'])}"
                f" of the floor; the server reaches {_f(split['server_share_of_framework_floor'])}"
                " of the framework floor.",
            ]
        out.append("")
    hot = results.get("hotpath", {})
    if hot.get("rows"):
        out += [
            f"## Hot path: pydantic-core + json (mlref) vs msgspec {hot['msgspec_version']} "
            "(`benchmarks/bench_hotpath.py`)",
            "",
            "| what | mlref µs | msgspec µs | mlref / msgspec |",
            "|---|---:|---:|---:|",
            *(
                f"| {r['what']} | {_f(r['mlref_us'])} | {_f(r['msgspec_us'])} | "
                f"**{_f(r['mlref_over_msgspec'])}** |"
                for r in hot["rows"]
            ),
            "",
            f"Saving per /predict request (decode + encode): {_f(hot['saving_us_per_request'])} µs.",
            "",
        ]
    features = results.get("features", {})
    if features.get("rows"):
        out += [
            "## Online features: one lookup for N users vs N lookups; the store read",
            "",
            "| users | one lookup ms | N lookups ms | N lookups / one lookup |",
            "|---:|---:|---:|---:|",
            *(
                f"| {r['users']} | {_f(r['one_call_ms'])} | {_f(r['n_calls_ms'])} | "
                f"**{_f(r['n_calls_over_one_call'])}** |"
                for r in features["rows"]
            ),
            "",
            "The same stored fields and row timestamps for the batch's distinct users: "
            "`FeatureStore.get_online_features` vs `Provider.online_read` once per feature view "
            "(what the server does):",
            "",
            "| distinct users | online_read ms | get_online_features ms | ratio |",
            "|---:|---:|---:|---:|",
            *(
                f"| {r['distinct_users']} | {_f(r['online_read_ms'])} | "
                f"{_f(r['get_online_features_ms'])} | "
                f"**{_f(r['get_online_features_over_online_read'])}** |"
                for r in features["rows"]
                if "online_read_ms" in r
            ),
            "",
        ]
    gates = results.get("gates", {})
    if "psi" in gates:
        psi, boot = gates["psi"], gates.get("bootstrap", {})
        out += [
            "## Gates: vectorised vs straightforward references (`benchmarks/bench_gates.py`)",
            "",
            "| what | mlgates s | reference s | reference / mlgates |",
            "|---|---:|---:|---:|",
            f"| PSI {psi['rows']:,} x {psi['features']} (per-bin masks) | "
            f"{_f(psi['psi_drift_fit_bins_s'])} | {_f(psi['reference_per_bin_masks_s'])} | "
            f"**{_f(psi['speedup_vs_masks'])}** |",
            f"| PSI {psi['rows']:,} x {psi['features']} (Python loop, extrapolated) | "
            f"{_f(psi['psi_drift_fit_bins_s'])} | "
            f"{_f(psi['reference_python_loop_s_extrapolated'])} | "
            f"**{_f(psi['reference_python_loop_s_extrapolated'] / psi['psi_drift_fit_bins_s'])}**"
            " |",
        ]
        if "speedup_frozen_vs_masks" in psi:
            out.append(
                f"| PSI {psi['rows']:,} x {psi['features']} with frozen bins (per-bin masks) | "
                f"{_f(psi['psi_drift_frozen_bins_s'])} | {_f(psi['reference_per_bin_masks_s'])} "
                f"| **{_f(psi['speedup_frozen_vs_masks'])}** |"
            )
        if boot:
            out.append(
                f"| paired bootstrap ROC AUC {boot['rows']:,} x {boot['resamples']} "
                f"({boot.get('reference_loop', 'loop')}, extrapolated) | "
                f"{_f(boot['paired_bootstrap_roc_auc_s'])} | "
                f"{_f(boot['reference_loop_roc_auc_s_extrapolated'])} | "
                f"**{_f(boot['speedup_vs_loop'])}** |"
            )
        goals = [
            f"{name} >= {goal:g}: {'met' if part['goals_met'][name] else 'NOT met'}"
            for part in (psi, boot)
            for name, goal in part.get("goals", {}).items()
        ]
        if goals:
            out += ["", "Issue 18 goals in this run: " + "; ".join(goals) + "."]
        out.append("")
    evidently = results.get("evidently", {})
    if "evidently_psi_s" in evidently:
        first = evidently["first_feature_psi"]
        out += [
            f"## Drift: mlgates `psi_drift` vs Evidently {evidently['evidently_version']} PSI "
            "(`benchmarks/bench_evidently.py`, Evidently added for this run only)",
            "",
            "| what | mlgates s | Evidently s | Evidently / mlgates |",
            "|---|---:|---:|---:|",
            f"| PSI per column, {evidently['rows']:,} x {evidently['features']}, bins fitted "
            f"in the call | {_f(evidently['mlgates_psi_drift_s'])} | "
            f"{_f(evidently['evidently_psi_s'])} | **{_f(evidently['evidently_over_mlgates'])}** |",
            *(
                [
                    f"| PSI per column, bins frozen from the reference beforehand | "
                    f"{_f(evidently['mlgates_psi_drift_frozen_bins_s'])} | "
                    f"{_f(evidently['evidently_psi_s'])} | "
                    f"**{_f(evidently['evidently_over_mlgates_frozen_bins'])}** |",
                    "",
                    "Issue 18 goals in this run: "
                    + "; ".join(
                        f"{name} >= {goal:g}: "
                        f"{'met' if evidently['goals_met'][name] else 'NOT met'}"
                        for name, goal in evidently["goals"].items()
                    )
                    + ".",
                    "",
                ]
                if "goals" in evidently
                else [""]
            ),
            f"Same data, different binning (mlgates 10 reference-quantile bins, Evidently its "
            f"default): first column PSI {_f(first['mlgates_10_quantile_bins'])} vs "
            f"{_f(first['evidently_default_bins'])}; drift flagged: mlgates "
            f"{evidently['drift_flagged']['mlgates']}, Evidently "
            f"{evidently['drift_flagged']['evidently']}.",
            "",
        ]
    elif "skipped" in evidently:
        out += ["## Drift: Evidently comparison", "", f"Skipped: {evidently['skipped']}", ""]
    costs = results.get("costs", {})
    if "text" in costs:
        out += ["## Cost model (the design seed's formulas, measured inputs)", "", "```"]
        out += [costs["text"], "```", ""]
    if results.get("errors"):
        out += ["## Failed sections", ""]
        out += [f"- {k}: {v.splitlines()[-1]}" for k, v in results["errors"].items()]
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the system under test")
    parser.add_argument("--only", default=",".join(SECTIONS), help="sections to run")
    parser.add_argument("--duration", type=float, default=3.0, help="s per server load point")
    parser.add_argument(
        "--loads", default=None, help="comma-separated offered loads (req/s) for the server ladder"
    )
    parser.add_argument("--hourly-usd", type=float, default=None, help="instance price")
    parser.add_argument(
        "--update",
        action="store_true",
        help="keep the sections of OUT/perf.json that this run does not re-run (with --only)",
    )
    args = parser.parse_args(argv)
    from mlref.costs import DEFAULT_CPU_HOURLY_USD

    hourly = args.hourly_usd if args.hourly_usd is not None else DEFAULT_CPU_HOURLY_USD
    wanted = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(wanted) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown sections {unknown}; choose from {list(SECTIONS)}")
    server_loads: dict[str, Any] = {}
    if args.loads:
        server_loads["loads"] = tuple(int(x) for x in args.loads.split(","))
    started = time.time()
    results: dict[str, Any] = {"started": started, "machine": machine(), "errors": {}}
    progress(f"system under test in {args.workdir}")
    system = small_system(args.workdir, rebuild=args.rebuild)
    results["system"] = {
        "workdir": str(args.workdir),
        "events": system.n_events,
        "users": system.n_users,
    }
    runs: dict[str, Callable[[], dict[str, Any]]] = {
        "model": lambda: bench_model(system),
        "hotpath": bench_hotpath,
        "features": lambda: bench_features(system),
        "server": lambda: bench_server(system, duration_s=args.duration, **server_loads),
        "gates": run_gates_bench,
        "evidently": run_evidently_bench,
        "predlog": lambda: bench_predlog(system, duration_s=args.duration),
        "canary": lambda: bench_canary(system, duration_s=args.duration),
    }
    for name in wanted:
        progress(f"{name} ...")
        t0 = time.perf_counter()
        try:
            results[name] = runs[name]()
        except Exception:
            results["errors"][name] = traceback.format_exc()
            progress(f"{name} FAILED:\n{results['errors'][name]}")
        progress(f"{name} done in {time.perf_counter() - t0:.0f} s")
    # read at the end, so a run of other sections that finishes meanwhile is kept
    previous = args.out / "perf.json"
    if args.update and previous.exists():
        kept = json.loads(previous.read_text())
        for name in SECTIONS:
            if name not in wanted and name in kept:
                results[name] = kept[name]
                if name in kept.get("errors", {}):
                    results["errors"][name] = kept["errors"][name]
        results["updated_sections"] = wanted
        results["kept_from"] = {"started": kept.get("started"), "machine": kept.get("machine")}
    results["costs"] = _costs(results, hourly)
    if "text" in results["costs"]:
        print(results["costs"]["text"])
    results["wall_s"] = time.time() - started
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "perf.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    report = markdown(results)
    if "canary" in results:  # its own section (benchmarks/bench_canary.py)
        report += "\n" + canary_markdown(results["canary"])
    (args.out / "perf.md").write_text(report)
    progress(
        f"wrote {args.out / 'perf.json'} and {args.out / 'perf.md'} in {results['wall_s']:.0f} s"
    )
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
