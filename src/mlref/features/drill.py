"""The new-feature drill (ML Test Score data-6): the steps of adding ONE stored feature
definition to a temporary copy of the feature set, each built only from that definition.

:func:`drill_steps` returns the ordered steps ``mlgates.gates.new_feature_drill`` runs:

1. ``offline rows``: :func:`mlref.features.offline.stored_rows` over the extended set;
2. ``online aggregator``: :class:`mlref.features.online.OnlineAggregator` over the same
   events, compared row by row with the offline rows (``feature_parity``);
3. ``feast apply + materialize``: a Feast repo in ``workdir`` (SQLite registry and online
   store, parquet offline store) built by :func:`mlref.features.store.build_feature_store`
   with the extended set;
4. ``feast online vs offline``: the Feast online store's value of the new feature (and its
   prev_* companion) for every user against the offline rows' latest per user;
5. ``feast point-in-time``: Feast ``get_historical_features`` of the new feature at seeded
   lookup times against the pure-pandas point-in-time join of the offline rows.

Nothing else is edited: the extended set lives in this process only (the checkout's
``STORED_FEATURES`` are untouched), so a step that needs hand code for the new feature
raises or fails its parity and the gate names it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlref.data.columns import EVENT_TIMESTAMP, USER_ID
from mlref.features.definitions import STORED_FEATURES, StoredFeature, lookup_time

KEYS = [USER_ID, EVENT_TIMESTAMP]


def drill_steps(
    definition: StoredFeature,
    events: pd.DataFrame,
    workdir: str | Path,
    *,
    base: Sequence[StoredFeature] = STORED_FEATURES,
    n_lookups: int = 400,
    seed: int = 0,
) -> dict[str, Callable[[], Any]]:
    """The drill's steps for adding ``definition`` to ``base``, over ``events`` (validated
    raw transactions), with the Feast repo under ``workdir``. Steps share what earlier ones
    built; run them in order (``new_feature_drill`` does)."""
    from mlgates.gates import feature_parity

    features = (*base, definition)
    name, prev = definition.name, definition.prev_name
    built: dict[str, Any] = {}

    def offline_rows() -> None:
        from mlref.features.offline import stored_rows

        rows = stored_rows(events, features)
        if name not in rows or prev not in rows:
            raise KeyError(f"the offline rows lack {name!r} / {prev!r}")
        built["rows"] = rows

    def online_aggregator() -> Any:
        from mlref.features.online import OnlineAggregator

        online = OnlineAggregator(features).process(events)
        return feature_parity(built["rows"], online, keys=KEYS, features=[name, prev])

    def feast_build() -> None:
        from mlref.features.store import build_feature_store
        from mlref.settings import make_settings

        settings = make_settings(Path(workdir), online_store="sqlite")
        built["store"] = build_feature_store(settings, events, features=features)

    def feast_online() -> Any:
        from mlref.features.online import latest_per_user

        latest = latest_per_user(built["rows"]).reset_index(drop=True)
        users = latest[USER_ID].tolist()
        refs = [f"{definition.view}:{name}", f"{definition.view}:{prev}"]
        online = (
            built["store"]
            .get_online_features(features=refs, entity_rows=[{USER_ID: u} for u in users])
            .to_df()
        )
        expected = latest[[USER_ID, name, prev]].astype({name: float, prev: float})
        return feature_parity(
            expected, online.astype({name: float, prev: float}), keys=USER_ID, features=[name, prev]
        )

    def feast_point_in_time() -> Any:
        from mlref.features.offline import point_in_time_features

        rng = np.random.default_rng(seed)
        pick = rng.choice(len(events), size=min(n_lookups, len(events)), replace=False)
        sample = events.iloc[np.sort(pick)]
        entity = pd.DataFrame(
            {
                USER_ID: sample[USER_ID].to_numpy(dtype=np.int64),
                EVENT_TIMESTAMP: lookup_time(sample[EVENT_TIMESTAMP]).to_numpy(),
                "row": np.arange(len(sample)),
            }
        )
        feast = (
            built["store"]
            .get_historical_features(
                entity_df=entity, features=[f"{definition.view}:{name}"], full_feature_names=False
            )
            .to_df()
        )
        reference = point_in_time_features(
            None, entity[[USER_ID, EVENT_TIMESTAMP]], rows=built["rows"], features=features
        )
        expected = pd.DataFrame({"row": entity["row"], name: reference[name].to_numpy()})
        # Feast returns no defaults: a missing or expired row is NaN/None; apply the same rule
        got = feast[["row", name]].astype({name: float})
        got[name] = got[name].fillna(definition.default)
        return feature_parity(expected, got, keys="row", features=[name])

    return {
        "offline rows": offline_rows,
        "online aggregator": online_aggregator,
        "feast apply + materialize": feast_build,
        "feast online vs offline": feast_online,
        "feast point-in-time": feast_point_in_time,
    }
