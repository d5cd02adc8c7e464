"""Online feature lookup: a batch of N users in one lookup vs N lookups of one user, and the
store read the server uses vs ``FeatureStore.get_online_features``.

Both lookups go through ``mlref.features.store.online_model_features`` on the real Feast store
(SQLite online store) the server reads; the ratio is (N single lookups) / (one lookup of N):
how much the server's one-lookup-per-batch design saves. The second ratio fetches the same
stored fields and row timestamps for the same N users through ``get_online_features`` and
through ``Provider.online_read`` once per feature view (``mlref.features.store._OnlineReader``,
what the server does): what skipping Feast's response assembly saves.

    uv run python benchmarks/bench_features.py [--workdir .mlref-perf] [--sizes 16,64]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _perfutil import DEFAULT_WORKDIR, progress, small_system, time_call

SIZES = (16, 64)


def bench_features(system: Any, sizes: tuple[int, ...] = SIZES, seed: int = 0) -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    from mlref.data.generate import read_parquet
    from mlref.features.definitions import VIEWS
    from mlref.features.store import _OnlineReader, online_model_features, open_feature_store

    events = read_parquet(system.settings.raw_path)
    store = open_feature_store(system.settings)
    rng = np.random.default_rng(seed)
    users = events["user_id"].to_numpy()
    when = events["event_timestamp"].max() + pd.Timedelta(minutes=5)
    rows: list[dict[str, Any]] = []
    reader = _OnlineReader(store)
    refs = [f"{view.name}:{name}" for view in VIEWS for name in view.field_names]
    for n in sizes:
        picked = users[rng.integers(0, len(users), n)]  # popularity-weighted, like traffic
        requests = pd.DataFrame(
            {
                "user_id": picked.astype("int64"),
                "amount": rng.lognormal(3.5, 1.0, n),
                "merchant_category": "grocery",
                "event_timestamp": pd.Series([when] * n, dtype="datetime64[ns, UTC]"),
            }
        )
        singles = [requests.iloc[[i]] for i in range(n)]
        batch_s = time_call(lambda r=requests: online_model_features(store, r), min_time_s=0.3)
        single_s = time_call(
            lambda s=singles: [online_model_features(store, r) for r in s],
            min_time_s=0.3,
            repeats=3,
        )
        # same features either way
        one = online_model_features(store, requests).reset_index(drop=True)
        many = pd.concat([online_model_features(store, r) for r in singles], ignore_index=True)
        pd.testing.assert_frame_equal(one, many)
        unique = sorted({int(u) for u in picked})
        direct_s = time_call(lambda u=unique: reader.read(u), min_time_s=0.3)
        feast_s = time_call(
            lambda u=unique: store.get_online_features(
                features=refs, entity_rows={"user_id": u}
            ).to_dict(include_event_timestamps=True),
            min_time_s=0.3,
        )
        rows.append(
            {
                "users": n,
                "one_call_ms": batch_s * 1e3,
                "n_calls_ms": single_s * 1e3,
                "per_user_one_call_ms": batch_s / n * 1e3,
                "per_user_n_calls_ms": single_s / n * 1e3,
                "n_calls_over_one_call": single_s / batch_s,
                "distinct_users": len(unique),
                "online_read_ms": direct_s * 1e3,
                "get_online_features_ms": feast_s * 1e3,
                "get_online_features_over_online_read": feast_s / direct_s,
            }
        )
        progress(
            f"features {n} users: n calls / one call = {single_s / batch_s:.1f}, "
            f"get_online_features / online_read = {feast_s / direct_s:.1f}"
        )
    return {"store": "feast sqlite online store", "rows": rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    args = parser.parse_args()
    sizes = tuple(int(s) for s in args.sizes.split(","))
    print(json.dumps(bench_features(small_system(args.workdir), sizes), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
