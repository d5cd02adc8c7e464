"""The sensitive attribute for group_parity: an age band per user, derived from the user's
spending habit plus its own random stream, so that nothing else the generator makes changed."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from mlref.data.columns import AGE_BAND, AGE_BANDS, AMOUNT, LABEL, RAW_COLUMNS, USER_ID
from mlref.data.generate import generate_transactions, user_age_bands
from mlref.settings import DataConfig

# the label delay pinned: a project made from the template may answer another default
CONFIG = replace(DataConfig(), n_users=300, days=40, seed=7, label_delay_days=7)
#: sha256 of the event log of CONFIG by the generator BEFORE the age band existed (commit
#: f2d931c); other tests' figures (and the reference model) depend on these rows
EVENTS_SHA256 = "289f957d8e9ab1a1598dd291f6749871f43d3076d34735209e2b07e0602dc39a"


def _sha(frame: pd.DataFrame) -> str:
    return hashlib.sha256(
        pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes()
    ).hexdigest()


def test_the_event_log_is_unchanged_by_the_attribute() -> None:
    events = generate_transactions(CONFIG)
    assert list(events.columns) == list(RAW_COLUMNS)
    assert AGE_BAND not in events.columns
    assert _sha(events) == EVENTS_SHA256


def test_one_band_per_user_seeded_and_not_a_model_input() -> None:
    from mlref.features.definitions import MODEL_FEATURES

    bands = user_age_bands(CONFIG)
    assert bands[USER_ID].tolist() == list(range(1, CONFIG.n_users + 1))
    assert set(bands[AGE_BAND]) <= set(AGE_BANDS)
    assert bands.equals(user_age_bands(CONFIG))
    assert AGE_BAND not in MODEL_FEATURES
    shares = bands[AGE_BAND].value_counts(normalize=True)
    assert all(0.1 < shares[b] < 0.45 for b in AGE_BANDS), shares


def test_older_bands_spend_more() -> None:
    """A realistic correlation with spending: rank of the band against each user's median
    legitimate purchase (latent correlation 0.4, diluted by the purchase noise)."""
    events = generate_transactions(CONFIG)
    spend = events.loc[events[LABEL] == 0].groupby(USER_ID)[AMOUNT].median()
    bands = user_age_bands(CONFIG).set_index(USER_ID)[AGE_BAND]
    rank = bands.loc[spend.index].map({b: i for i, b in enumerate(AGE_BANDS)})
    rho = spearmanr(rank.to_numpy(), spend.to_numpy()).statistic
    assert 0.2 < rho < 0.6, rho
    assert not np.isnan(rho)
