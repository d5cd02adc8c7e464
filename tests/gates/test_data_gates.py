"""Data gates: the raw history satisfies the pandera schema, and its newest window is fresh."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from mlgates.fixture import Gates
    from mlref.pipeline import ReferenceSystem


@pytest.mark.mlgate("schema_gate")
def test_raw_history_matches_schema(mlgates: Gates, reference_system: ReferenceSystem) -> None:
    """Every generated history row (before validation) satisfies ``RAW_SCHEMA``."""
    from mlgates.gates import schema_gate
    from mlref.data.validate import RAW_SCHEMA

    mlgates.run(schema_gate, reference_system.raw, RAW_SCHEMA)


@pytest.mark.mlgate("schema_gate")
def test_live_window_matches_schema(mlgates: Gates, reference_system: ReferenceSystem) -> None:
    """The live (serving) transactions satisfy the same schema as the training history."""
    from mlgates.gates import schema_gate
    from mlref.data.validate import RAW_SCHEMA

    mlgates.run(schema_gate, reference_system.live, RAW_SCHEMA)


@pytest.mark.mlgate("freshness")
def test_history_is_fresh(mlgates: Gates, reference_system: ReferenceSystem) -> None:
    """The newest validated event is no older than ``freshness_max_age``
    ([tool.mlgates.settings]) at the time the pipeline ran (the end of the history)."""
    import pandas as pd

    from mlgates.gates import freshness

    data = reference_system.settings.data
    as_of = pd.Timestamp(data.start) + pd.Timedelta(days=data.days)
    max_age = pd.Timedelta(mlgates.setting("freshness_max_age", "48h"))
    mlgates.run(freshness, reference_system.events["event_timestamp"], as_of, max_age)
