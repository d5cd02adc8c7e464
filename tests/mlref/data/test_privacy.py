"""Personal data in raw events: the generator adds it without changing anything else, the
validator refuses it, and the pipeline's privacy step drops it before validation."""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest

from mlgates.gates.policy import luhn_valid
from mlref.data.columns import CARD_NUMBER, EMAIL, IP_ADDRESS, PII_COLUMNS, RAW_COLUMNS
from mlref.data.generate import generate_transactions
from mlref.data.privacy import drop_personal_data
from mlref.data.validate import RAW_SCHEMA, RawFrameError, validate
from mlref.settings import DataConfig

CFG = DataConfig(n_users=60, days=12, seed=11)


@pytest.fixture(scope="module")
def with_pii() -> pd.DataFrame:
    return generate_transactions(CFG, pii=True)


def _digest(frame: pd.DataFrame) -> str:
    hashed = pd.util.hash_pandas_object(frame, index=True).to_numpy()
    return hashlib.sha256(hashed.tobytes()).hexdigest()


def test_personal_data_changes_no_existing_column_or_row(with_pii: pd.DataFrame) -> None:
    without = generate_transactions(CFG)
    assert tuple(with_pii.columns) == (*RAW_COLUMNS, *PII_COLUMNS)
    assert _digest(with_pii[list(RAW_COLUMNS)]) == _digest(without)
    # and with the drift switch on (the live week's path)
    drifted = DataConfig(n_users=60, days=12, seed=11, drift_from="2026-01-07")
    assert _digest(generate_transactions(drifted, pii=True)[list(RAW_COLUMNS)]) == _digest(
        generate_transactions(drifted)
    )


def test_personal_data_is_realistic_and_seeded(with_pii: pd.DataFrame) -> None:
    assert luhn_valid(with_pii[CARD_NUMBER]).all()
    assert with_pii[CARD_NUMBER].str.fullmatch(r"4539\d{12}").all()
    assert with_pii[EMAIL].str.fullmatch(r"[a-z]+\.[a-z]+\d+@[a-z.]+").all()
    octets = with_pii[IP_ADDRESS].str.split(".", expand=True).astype(int)
    assert octets.shape[1] == 4
    assert octets.le(255).all().all()
    assert (octets[0] != 127).all()
    per_user = with_pii.groupby("user_id")[[CARD_NUMBER, EMAIL]].nunique()
    assert (per_user == 1).all().all()  # one card, one address per user
    home = with_pii.groupby("user_id")[IP_ADDRESS].agg(lambda s: s.value_counts().iloc[0] / len(s))
    assert 0.7 < float(home.mean()) < 0.95  # mostly the user's usual address
    again = generate_transactions(CFG, pii=True)
    assert _digest(again) == _digest(with_pii)
    other = generate_transactions(DataConfig(n_users=60, days=12, seed=12), pii=True)
    assert set(other[EMAIL]) != set(with_pii[EMAIL])


def test_the_raw_schema_declares_it_and_validation_refuses_it(with_pii: pd.DataFrame) -> None:
    RAW_SCHEMA.validate(with_pii)  # raw events as they land, personal data included
    with pytest.raises(RawFrameError, match=r"unexpected columns.*card_number"):
        validate(with_pii)  # the privacy step is not optional


def test_the_privacy_step_drops_it(with_pii: pd.DataFrame) -> None:
    dropped = drop_personal_data(with_pii)
    assert tuple(dropped.columns) == RAW_COLUMNS
    assert set(PII_COLUMNS) <= set(with_pii.columns)  # the input is left as it was
    assert validate(dropped).n_valid == len(with_pii)
    assert drop_personal_data(dropped) is dropped


def test_pipeline_history_keeps_it_raw_and_validated_events_do_not(tmp_path) -> None:
    from mlref.pipeline import history_and_live, validate_events
    from mlref.settings import make_settings

    settings = make_settings(tmp_path / "w", n_users=40, days=40, seed=5)
    settings.ensure_dirs()
    history, live, _ = history_and_live(settings, live_days=1)
    assert set(PII_COLUMNS) <= set(history.columns)
    assert not set(PII_COLUMNS) & set(live.columns)
    events = validate_events(settings, history).valid
    assert not set(PII_COLUMNS) & set(events.columns)
    assert len(events) == len(history)
