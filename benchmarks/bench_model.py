"""ONNX Runtime vs native XGBoost (``inplace_predict``): time per row at batch 1, 8, 64, 1024.

Both score the same production-size model (the training defaults: up to 400 trees of depth 5,
fitted here without early stopping on the system's features) on the same float32 rows, one
thread each. The ratio is native time / ONNX time: above 1, ONNX Runtime is faster.

    uv run python benchmarks/bench_model.py [--workdir .mlref-perf] [--batches 1,8,64,1024]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _perfutil import DEFAULT_WORKDIR, progress, small_system, time_call

BATCHES = (1, 8, 64, 1024)


def bench_model(system: Any, batches: tuple[int, ...] = BATCHES, seed: int = 0) -> dict[str, Any]:
    import numpy as np
    import onnxruntime as ort
    import xgboost as xgb

    from mlref.data.generate import read_parquet
    from mlref.export import to_onnx
    from mlref.features.definitions import MODEL_FEATURES
    from mlref.features.offline import batch_model_features
    from mlref.train.config import DEFAULT_HYPERPARAMS

    events = read_parquet(system.settings.raw_path)
    frame = batch_model_features(events, events)
    params = {
        k: v
        for k, v in DEFAULT_HYPERPARAMS.items()
        if k not in ("early_stopping_rounds", "scale_pos_weight", "eval_metric")
    }
    model = xgb.XGBClassifier(**params, random_state=seed, n_jobs=1, tree_method="hist")
    started = time.perf_counter()
    model.fit(frame[MODEL_FEATURES], events["is_fraud"].to_numpy())
    fit_seconds = time.perf_counter() - started
    booster = model.get_booster()
    booster.set_param({"nthread": 1})
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        to_onnx(model, MODEL_FEATURES).SerializeToString(),
        options,
        providers=["CPUExecutionProvider"],
    )
    input_name = session.get_inputs()[0].name
    x_all = np.ascontiguousarray(frame[MODEL_FEATURES].to_numpy(dtype=np.float32))
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    for b in batches:
        x = np.ascontiguousarray(x_all[rng.integers(0, len(x_all), b)])
        onnx_s = time_call(lambda x=x: session.run(None, {input_name: x}))
        native_s = time_call(lambda x=x: booster.inplace_predict(x, validate_features=False))
        # the same scores, or the comparison would be meaningless
        onnx_p = session.run(None, {input_name: x})[-1]
        onnx_p = onnx_p[:, 1] if onnx_p.ndim == 2 else onnx_p
        native_p = booster.inplace_predict(x, validate_features=False)
        max_diff = float(np.max(np.abs(np.asarray(onnx_p) - native_p)))
        rows.append(
            {
                "batch": b,
                "onnx_us_per_row": onnx_s / b * 1e6,
                "native_us_per_row": native_s / b * 1e6,
                "native_over_onnx": native_s / onnx_s,
                "max_abs_score_diff": max_diff,
            }
        )
        progress(f"model batch {b}: native/onnx = {native_s / onnx_s:.2f}")
    return {
        "n_trees": int(booster.num_boosted_rounds()),
        "max_depth": int(params["max_depth"]),
        "threads": 1,
        "fit_rows": len(frame),
        "fit_seconds": fit_seconds,
        "fit_rows_per_s": len(frame) / fit_seconds,
        "rows": rows,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    parser.add_argument("--batches", default=",".join(map(str, BATCHES)))
    args = parser.parse_args()
    batches = tuple(int(b) for b in args.batches.split(","))
    print(json.dumps(bench_model(small_system(args.workdir), batches), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
