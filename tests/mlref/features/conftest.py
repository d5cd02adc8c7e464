"""Event fixtures for the feature tests: generated data plus hand-made edge cases."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import pytest

from mlref.data.columns import (
    AMOUNT,
    EVENT_TIMESTAMP,
    LABEL,
    LABEL_TIMESTAMP,
    MERCHANT_CATEGORY,
    MERCHANT_ID,
    RAW_COLUMNS,
    TRANSACTION_ID,
    USER_ID,
)

START = pd.Timestamp("2026-01-01T00:00:00Z")

# (user_id, event time, amount, category)
EventSpec = tuple[int, pd.Timestamp, float, str]


def make_events(specs: Sequence[EventSpec], prefix: str = "x") -> pd.DataFrame:
    """Raw events (RAW_COLUMNS, RAW dtypes) from (user, time, amount, category) tuples."""
    frame = pd.DataFrame(
        {
            TRANSACTION_ID: [f"{prefix}{i:06d}" for i in range(len(specs))],
            USER_ID: np.array([s[0] for s in specs], dtype=np.int64),
            MERCHANT_ID: np.arange(1, len(specs) + 1, dtype=np.int64),
            MERCHANT_CATEGORY: [s[3] for s in specs],
            AMOUNT: np.array([s[2] for s in specs], dtype=np.float64),
            EVENT_TIMESTAMP: pd.to_datetime([s[1] for s in specs], utc=True).astype(
                "datetime64[ns, UTC]"
            ),
            LABEL: np.zeros(len(specs), dtype=np.int8),
        }
    )
    frame[LABEL_TIMESTAMP] = frame[EVENT_TIMESTAMP] + pd.Timedelta(days=7)
    return frame[list(RAW_COLUMNS)]


def combine(*frames: pd.DataFrame) -> pd.DataFrame:
    """Concatenate event frames in processing order (time, then transaction id)."""
    out = pd.concat(frames, ignore_index=True)
    return out.sort_values([EVENT_TIMESTAMP, TRANSACTION_ID], kind="mergesort").reset_index(
        drop=True
    )


def random_events(
    seed: int, n: int, n_users: int, days: float, start: pd.Timestamp = START, prefix: str = "r"
) -> pd.DataFrame:
    """Uniformly scattered events with heavy-tailed amounts; some same-second collisions."""
    rng = np.random.default_rng(seed)
    seconds = np.sort(rng.integers(0, int(days * 86400), n))
    # force a few same-user same-second pairs
    users = rng.integers(1, n_users + 1, n)
    dup = rng.choice(n - 1, size=max(1, n // 50), replace=False)
    seconds[dup + 1] = seconds[dup]
    users[dup + 1] = users[dup]
    amounts = np.round(rng.lognormal(3.5, 1.4, n), 2)
    amounts[rng.choice(n, size=max(1, n // 40), replace=False)] = 0.0
    cats = rng.choice(["grocery", "gas", "online", "travel", "crypto"], n)
    specs = [
        (int(u), start + pd.Timedelta(seconds=int(s)), float(a), str(c))
        for u, s, a, c in zip(users, seconds, amounts, cats, strict=True)
    ]
    return combine(make_events(specs, prefix=prefix))


@pytest.fixture(scope="session")
def events_factory() -> Callable[..., pd.DataFrame]:
    return make_events


@pytest.fixture(scope="session")
def random_events_factory() -> Callable[..., pd.DataFrame]:
    return random_events


@pytest.fixture(scope="session")
def combine_events() -> Callable[..., pd.DataFrame]:
    return combine


def edge_case_events(day0: pd.Timestamp) -> pd.DataFrame:
    """Hand-made users around ``day0`` (the start of a 'replay' day).

    900001: one event 40 days before day0, then two in day0 (the 30 d TTL expires);
    900002: a burst 36 h before day0, then events in day0 (24 h TTL expires, 30 d does not);
    900003: two events in the same second in day0 (and a pair in the history), then one more;
    900004: an event exactly 24 h and one exactly 30 d before a day0 event (window/TTL edges);
    900005: a zero-amount history, then day0 (average 0 -> ratio NaN).
    """
    s = pd.Timedelta(seconds=1)
    h = pd.Timedelta(hours=1)
    d = pd.Timedelta(days=1)
    t4 = day0 + 2 * h
    specs: list[EventSpec] = [
        (900001, day0 - 40 * d, 120.0, "travel"),
        (900001, day0 + 1 * h, 80.0, "travel"),
        (900001, day0 + 3 * h, 15.5, "grocery"),
        (900002, day0 - 36 * h, 10.0, "gas"),
        (900002, day0 - 36 * h + 90 * s, 20.0, "gas"),
        (900002, day0 - 36 * h + 300 * s, 30.0, "online"),
        (900002, day0 + 30 * 60 * s, 40.0, "online"),
        (900002, day0 + 30 * 60 * s + 45 * s, 2500.0, "electronics"),
        (900003, day0 - 20 * h, 5.0, "grocery"),
        (900003, day0 - 20 * h, 7.0, "grocery"),
        (900003, day0 + 90 * 60 * s, 33.0, "online"),
        (900003, day0 + 90 * 60 * s, 44.0, "online"),
        (900003, day0 + 100 * 60 * s, 55.0, "online"),
        (900004, t4 - 30 * d, 1000.0, "travel"),
        (900004, t4 - 24 * h, 50.0, "grocery"),
        (900004, t4, 70.0, "grocery"),
        (900004, t4 + 24 * h - s, 10.0, "grocery"),
        (900005, day0 - 2 * h, 0.0, "grocery"),
        (900005, day0 + 4 * h, 9.0, "gas"),
    ]
    return make_events(specs, prefix="e")


@pytest.fixture(scope="session")
def edge_events() -> Callable[[pd.Timestamp], pd.DataFrame]:
    return edge_case_events
