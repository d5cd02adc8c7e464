"""Drift gates: the latest serving window (from the prediction log) against the training
window, binned by the PSI bins frozen at training time (registered beside the champion).

The serving window is ``served_log``: clean live traffic (the generator's drift switch off),
so these gates must stay quiet; the mutation proofs turn the switch on
(``tests/mutations/test_serving.py`` for the features, ``tests/mutations/test_served_scores.py``
for the scores).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import ServedLog

    from mlgates.fixture import Gates
    from mlref.registry import LoadedModel


@pytest.mark.mlgate("psi_drift")
def test_no_feature_drift_in_serving_window(
    mlgates: Gates, served_log: ServedLog, champion: LoadedModel
) -> None:
    """PSI of every monitored model input (the features in the frozen bins) between the
    training window (stored reference counts) and the logged serving features."""
    from mlgates.gates import psi_drift

    mlgates.run(psi_drift, None, served_log.log, bins=champion.bins_path)


@pytest.mark.mlgate("prediction_drift")
def test_no_prediction_drift_in_serving_window(
    mlgates: Gates, served_log: ServedLog, champion: LoadedModel
) -> None:
    """The served score distribution against the reference scores frozen at training
    (the champion's test-window scores): PSI and relative mean shift."""
    import numpy as np

    from mlgates.gates import prediction_drift

    reference = np.load(champion.reference_scores_path)
    mlgates.run(prediction_drift, reference, served_log.log["score"].to_numpy())
