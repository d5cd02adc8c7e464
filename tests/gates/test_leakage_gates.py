"""Leakage gates on the reference system's training run.

Split rules of this system (a time split, mlref.train.split): windows are ordered in time
with an embargo of at least the label delay between them; a transaction lives in exactly
one window, so no ``transaction_id`` (and no duplicated row) may appear in both train and
test. The SAME users appear before and after the cut on purpose (the model scores known
customers' next transactions), so user overlap is allowed and not gated here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from mlgates.fixture import Gates
    from mlref.pipeline import ReferenceSystem


@pytest.mark.mlgate("time_split")
def test_training_split_is_time_ordered_with_embargo(
    mlgates: Gates, reference_system: ReferenceSystem
) -> None:
    """train -> validation -> test follow each other in time, each gap >= the run's embargo."""
    from mlgates.gates import time_split

    result = reference_system.run.result
    split = result.split
    mlgates.run(
        time_split,
        split.train,
        split.test,
        "event_timestamp",
        val=split.val,
        embargo=result.config.embargo,
    )


@pytest.mark.mlgate("point_in_time")
def test_training_rows_use_only_past_state(
    mlgates: Gates, reference_system: ReferenceSystem
) -> None:
    """Audit of every training row and EVERY feature view: the stored state each view's
    point-in-time join picked is from strictly before the row's event (its state time at or
    before event time - 1 ms; state times are whole seconds).

    The state time is the row's own: each view's schema carries ``last_txn_ts`` (the newest
    event its stored state includes), and ``point_in_time_audit`` returns it per view over the
    same entity rows as the training retrieval (missing where the view had no row or it had
    expired). A view whose state counted the current or a later event shows a state time
    after the bar, under that view's column.
    """
    import pandas as pd

    from mlgates.gates import point_in_time
    from mlref.features.definitions import VIEWS
    from mlref.features.store import point_in_time_audit, state_time_column

    system = reference_system
    audit = point_in_time_audit(system.store, system.events)
    # The bar is the contract, written here, not the code under audit's lookup_time: a join
    # moved to the event time (LOOKUP_OFFSET 0) would move that column with it.
    audit["before_event"] = audit["event_timestamp"] - pd.Timedelta(milliseconds=1)
    columns = [state_time_column(view.name) for view in VIEWS]
    mlgates.run(point_in_time, audit, "before_event", columns)


@pytest.mark.mlgate("feature_parity")
def test_training_rows_match_reference_point_in_time_join(
    mlgates: Gates, reference_system: ReferenceSystem
) -> None:
    """Feast's historical join (training rows) equals the independent pure-pandas
    point-in-time join (``merge_asof`` backward + TTL) over the same validated events."""
    from mlgates.gates import feature_parity
    from mlref.features.definitions import MODEL_FEATURES
    from mlref.features.offline import batch_model_features

    system = reference_system
    names = list(MODEL_FEATURES)
    feast_rows = system.frame[["transaction_id", *names]]
    reference = batch_model_features(system.events, system.events)
    reference.insert(0, "transaction_id", system.events["transaction_id"].to_numpy())
    mlgates.run(feature_parity, reference, feast_rows, "transaction_id", features=names)


@pytest.mark.mlgate("entity_overlap")
def test_no_transaction_in_both_train_and_test(
    mlgates: Gates, reference_system: ReferenceSystem
) -> None:
    """No transaction_id (and no duplicated row) is in both the training and the test window.
    Users do overlap, by design of a time split (see the module docstring)."""
    from mlgates.gates import entity_overlap

    split = reference_system.run.result.split
    mlgates.run(entity_overlap, split.train, split.test, "transaction_id")


@pytest.mark.mlgate("target_leak")
def test_no_single_feature_predicts_the_label(
    mlgates: Gates, reference_system: ReferenceSystem
) -> None:
    """No model input alone separates fraud from legitimate rows in the training window
    (single-feature AUC below ``max_auc``): a near-perfect one is a label leak."""
    from mlgates.gates import target_leak
    from mlref.features.definitions import MODEL_FEATURES

    train = reference_system.run.result.split.train
    mlgates.run(target_leak, train, "is_fraud", list(MODEL_FEATURES))
