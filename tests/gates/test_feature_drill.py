"""data-6 (new features can be added quickly): the new-feature drill on mlref.

One definition is added through the public API, ``StoredFeature`` (the maximum amount of a
user's events over 7 days, in a new view ``user_amount_7d``), to a copy of the feature set
held in this process: the checkout is not edited. ``mlref.features.drill.drill_steps``
builds the offline rows, the online aggregator, the Feast objects (apply + materialize into
a temporary SQLite repo) from the extended set, and compares the new feature offline vs
online (aggregator and the Feast online store) and Feast's point-in-time join vs the
pandas reference; ``new_feature_drill`` passes only when every step succeeds with nothing
but the definition. tests/mutations/test_feature_drill.py shows a definition of a kind the
derivation does not support, and an online path that hard-codes its aggregations, failing
it, each naming the step.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import pandas as pd

    from mlgates.fixture import Gates

pytestmark = [
    pytest.mark.filterwarnings("ignore:fetch_arrow_table\\(\\) is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:On demand feature view is an experimental:RuntimeWarning"),
]

NEW_FEATURE = "max_amount_7d"


def drill_events() -> pd.DataFrame:
    """A small generated log (seeded), validated like the pipeline's input."""
    from mlref.data.generate import generate_transactions
    from mlref.data.validate import validate
    from mlref.settings import DataConfig

    raw = generate_transactions(DataConfig(n_users=60, days=12, seed=11))
    return validate(raw, max_quarantine_rate=0.2).valid.reset_index(drop=True)


def max_amount_7d() -> object:
    """The new feature: its ONE definition."""
    from mlref.data.columns import AMOUNT
    from mlref.features.definitions import StoredFeature

    return StoredFeature(
        name=NEW_FEATURE,
        view="user_amount_7d",
        aggregation="max",
        column=AMOUNT,
        window=timedelta(days=7),
        default=float("nan"),
        dtype="Float64",
        description="largest amount of the user's events in (t - 7d, t]",
    )


@pytest.mark.mlgate("new_feature_drill")
def test_a_new_feature_is_one_definition(mlgates: Gates, tmp_path: Path) -> None:
    from mlgates.gates import new_feature_drill
    from mlref.features.definitions import STORED_FEATURES
    from mlref.features.drill import drill_steps

    before = STORED_FEATURES
    steps = drill_steps(max_amount_7d(), drill_events(), tmp_path / "drill")  # type: ignore[arg-type]
    result = mlgates.run(new_feature_drill, steps, feature=NEW_FEATURE)
    assert result.details["passed_steps"] == list(steps)
    # three parity checks compared rows of the new feature (not an empty agreement)
    assert len(result.details["checks"]) == 3
    assert all(" 0 matched" not in c for c in result.details["checks"].values())
    # the drill added the feature to its copy only
    assert STORED_FEATURES is before
    assert NEW_FEATURE not in {f.name for f in STORED_FEATURES}
