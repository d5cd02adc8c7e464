"""Data gates: the raw history and the live window satisfy the pandera schema, and the state
the server reads is fresh on the serving clock."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import pytest

from mlref.features.definitions import VIEWS

if TYPE_CHECKING:
    from conftest import ServedLog

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
@pytest.mark.parametrize("view", [view.name for view in VIEWS])
def test_served_state_is_fresh(
    mlgates: Gates, reference_system: ReferenceSystem, served_log: ServedLog, view: str
) -> None:
    """Each feature view's ONLINE state (what the server reads) is no older than
    ``freshness_max_age`` ([tool.mlgates.settings]) on the serving clock.

    The clock is the live traffic's, not the data's: ``served_log`` scored requests stamped
    in the live window while the stream (the online path's pushes) ran through it, so when
    serving ends it is the time of the last live transaction. The state's age is that clock
    minus the newest row of the view in the online store: a feed that stopped (pushes or a
    view's materialization) leaves the newest row behind the clock however fresh the
    generated data is. Judged per view: each has its own feed in production.
    """
    from mlgates.gates import freshness
    from mlref.features.store import online_state_times

    system = reference_system
    users = {*system.events["user_id"], *system.live["user_id"]}
    row_times = online_state_times(system.store, sorted(users))[view]
    # served_log is requested for its replay: the store is read after serving, whatever
    # the test order; its requests are a sample of the live traffic, which ends here
    serving_clock = system.live["event_timestamp"].max()
    max_age = pd.Timedelta(mlgates.setting("freshness_max_age", "48h"))
    mlgates.run(freshness, row_times, serving_clock, max_age)
