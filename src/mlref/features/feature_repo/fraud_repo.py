"""Feast definitions of the fraud model's features, in dependency order:

Entity ``user`` -> FileSource (parquet of stored rows) + PushSource (online path)
-> FeatureViews (one per TTL) -> OnDemandFeatureView (request-time transforms, python mode,
calling the shared :func:`mlref.features.transforms.request_features`)
-> versioned FeatureService ``fraud_model_v1`` (what training and serving name).

Each view's schema also carries its state-time audit field (``last_txn_ts``, see
*State time* in :mod:`mlref.features.definitions`); the service leaves it out, since it is
not a model input. Everything is derived from :mod:`mlref.features.definitions`. The objects are built by
:func:`feast_objects` (the parquet path differs per workdir), so importing this module only
costs the Feast import; nothing is created at import time.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from types import FunctionType
from typing import Any, cast

from feast import (
    Entity,
    FeatureService,
    FeatureView,
    Field,
    FileSource,
    OnDemandFeatureView,
    PushSource,
    RequestSource,
    ValueType,
)
from feast import types as feast_types
from feast.data_format import ParquetFormat

from mlref.data.columns import EVENT_TIMESTAMP, USER_ID
from mlref.features import definitions as d


def model_inputs_udf(inputs: dict) -> dict:
    """Python-mode ODFV body: columns (lists) in, MODEL_FEATURES (lists) out.

    Feast re-creates this function from its source text (with only pandas/numpy in scope),
    so it imports what it needs itself.
    """
    import pandas as pd

    from mlref.features.transforms import TRANSFORM_INPUTS, request_features

    frame = request_features(pd.DataFrame({name: inputs[name] for name in TRANSFORM_INPUTS}))
    return {name: frame[name].tolist() for name in frame.columns}


@dataclass(frozen=True)
class FeastObjects:
    entity: Entity
    batch_source: FileSource
    push_source: PushSource
    views: tuple[FeatureView, ...]
    request_source: RequestSource
    model_inputs: OnDemandFeatureView
    service: FeatureService

    def all(self) -> list[Any]:
        """Everything to ``store.apply``, in dependency order."""
        return [
            self.entity,
            self.batch_source,
            self.push_source,
            *self.views,
            self.request_source,
            self.model_inputs,
            self.service,
        ]


def feast_objects(
    parquet_path: str, features: Sequence[d.StoredFeature] = d.STORED_FEATURES
) -> FeastObjects:
    """Build the Feast objects over the stored-rows parquet at ``parquet_path`` (absolute).

    The views (name, TTL, schema) are derived from ``features`` (default: the stored
    features; :func:`mlref.features.definitions.build_views`)."""
    d.check_supported(features, "feast objects")
    specs = d.build_views(features)
    state_time_dtype = next(f.dtype for f in features if f.name == d.LAST_TXN_TS)
    user = Entity(
        name=d.ENTITY,
        join_keys=[USER_ID],
        value_type=ValueType.INT64,
        description="card holder",
    )
    batch_source = FileSource(
        name=d.BATCH_SOURCE,
        path=parquet_path,
        file_format=ParquetFormat(),
        timestamp_field=EVENT_TIMESTAMP,
        description="stored per-user rows computed by mlref.features.offline.stored_rows",
    )
    push_source = PushSource(
        name=d.PUSH_SOURCE,
        batch_source=batch_source,
        description="stored rows emitted by mlref.features.online.OnlineAggregator",
    )
    views = []
    for spec in specs:
        dtypes = {f.name: f.dtype for f in spec.features}
        dtypes.update({f.prev_name: f.dtype for f in spec.features})
        # the audit field (definitions: "State time"): in the view, not in the service
        dtypes.setdefault(spec.state_time_field, state_time_dtype)
        views.append(
            FeatureView(
                name=spec.name,
                entities=[user],
                ttl=spec.ttl,
                schema=[
                    Field(name=USER_ID, dtype=feast_types.Int64),
                    *(
                        Field(name=name, dtype=getattr(feast_types, dtype))
                        for name, dtype in dtypes.items()
                    ),
                ],
                source=push_source,
                online=True,
                owner=d.FEATURE_OWNER,
                description="; ".join(f"{f.name}: {f.description}" for f in spec.features),
            )
        )
    served = [view[list(spec.served_fields)] for view, spec in zip(views, specs, strict=True)]
    request_source = RequestSource(
        name=d.REQUEST_SOURCE,
        schema=[
            Field(name=d.REQUEST_AMOUNT, dtype=feast_types.Float64),
            Field(name=d.REQUEST_TS, dtype=feast_types.Float64),
            Field(name=d.REQUEST_CATEGORY, dtype=feast_types.String),
        ],
    )
    model_inputs = OnDemandFeatureView(
        name=d.ODFV,
        sources=[*served, request_source],
        schema=[Field(name=name, dtype=feast_types.Float64) for name in d.MODEL_FEATURES],
        mode="python",
        udf=cast(FunctionType, model_inputs_udf),
        udf_string=inspect.getsource(model_inputs_udf),
        description="request-time transforms: mlref.features.transforms.request_features",
        owner=d.FEATURE_OWNER,
    )
    service = FeatureService(
        name=d.FEATURE_SERVICE,
        features=[*served, model_inputs],
        description="inputs of the fraud model, version 1 (training and serving name it)",
        tags={"model_features": ",".join(d.MODEL_FEATURES), **d.model_feature_tags()},
    )
    return FeastObjects(
        entity=user,
        batch_source=batch_source,
        push_source=push_source,
        views=tuple(views),
        request_source=request_source,
        model_inputs=model_inputs,
        service=service,
    )
