"""A seeded generator of card transactions with realistic fraud, delayed labels and drift.

Everything is drawn from one ``numpy.random.Generator(cfg.seed)`` with vectorised
operations, in a fixed order, so the same ``DataConfig`` gives byte-identical output.

The world it simulates:

* users join at the start (most) or during the span (some: new users appear late), each
  with an activity rate (gamma distributed), preferred categories (Dirichlet around a
  population mix), favourite merchants per category and a habitual amount scale
  (lognormal across users, lognormal per purchase: a heavy right tail);
* purchases follow a diurnal pattern (few at night);
* fraud comes in episodes on a victim's card: a burst of several transactions minutes
  apart, often at night, at merchants the user never used, in electronics/online/travel,
  for amounts far above the user's habit. About ``fraud_rate`` of all rows are fraud;
* a label becomes known ``label_delay_days`` after the event (+- half a day); fraud a
  little later (chargebacks take time);
* drift switch: from ``drift_from`` on, amounts are multiplied by ``drift_amount_factor``
  and a share of purchases goes to a new category, ``DRIFT_CATEGORY``. Rows before
  ``drift_from`` are identical with and without the switch.

A project made from the mlref template (docs/template.md) REPLACES this module and its drift
switch: they only make sense for the synthetic data. A replacement loads real events that
meet the data contract, ``RAW_SCHEMA`` in ``mlref.data.validate`` (columns and dtypes in
``mlref.data.columns``); the drift gates then need real drifted windows, not the switch.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mlref.data.columns import (
    AGE_BAND,
    AGE_BANDS,
    AMOUNT,
    CARD_NUMBER,
    CATEGORIES,
    DRIFT_CATEGORY,
    EMAIL,
    EVENT_TIMESTAMP,
    IP_ADDRESS,
    LABEL,
    LABEL_TIMESTAMP,
    MERCHANT_CATEGORY,
    MERCHANT_ID,
    RAW_COLUMNS,
    TRANSACTION_ID,
    USER_ID,
)
from mlref.settings import DataConfig

if TYPE_CHECKING:
    import os

    import pandas as pd

__all__ = [
    "DRIFT_CATEGORY_SHARE",
    "MAX_AMOUNT",
    "RAW_DTYPES",
    "generate_transactions",
    "read_parquet",
    "write_parquet",
]

logger = logging.getLogger(__name__)

DAY_S = 86_400
HOUR_S = 3_600
MAX_AMOUNT = 1_000_000.0  # the validation bound; the generator clips to it after drift
CARD_LIMIT = 50_000.0  # no single purchase above this before drift scaling
DRIFT_CATEGORY_SHARE = 0.10  # share of purchases moved to DRIFT_CATEGORY once drift starts

# Column dtypes of a raw frame (what the generator writes and validation returns).
RAW_DTYPES: dict[str, str] = {
    TRANSACTION_ID: "object",
    USER_ID: "int64",
    MERCHANT_ID: "int64",
    MERCHANT_CATEGORY: "object",
    AMOUNT: "float64",
    EVENT_TIMESTAMP: "datetime64[ns, UTC]",
    LABEL: "int8",
    LABEL_TIMESTAMP: "datetime64[ns, UTC]",
}

# Population mix of categories, price level relative to the user's habit, merchant pool size
# (per 1000 users).
_CATEGORY_WEIGHT = {
    "grocery": 0.30,
    "restaurant": 0.20,
    "gas": 0.14,
    "online": 0.12,
    "travel": 0.03,
    "electronics": 0.03,
    "entertainment": 0.10,
    "health": 0.08,
}
_CATEGORY_PRICE = {
    "grocery": 1.0,
    "restaurant": 0.8,
    "gas": 1.1,
    "online": 1.4,
    "travel": 6.0,
    "electronics": 4.0,
    "entertainment": 0.9,
    "health": 1.5,
}
_MERCHANTS_PER_1000_USERS = {
    "grocery": 40,
    "restaurant": 80,
    "gas": 25,
    "online": 30,
    "travel": 15,
    "electronics": 15,
    "entertainment": 30,
    "health": 20,
}
_DRIFT_PRICE = 3.0
_DRIFT_MERCHANTS_PER_1000_USERS = 10
_MIN_MERCHANTS = 5

# Fraud: where stolen cards are used, how often at night, how far above habit.
_FRAUD_CATEGORY_WEIGHT = {"electronics": 0.35, "online": 0.35, "travel": 0.2, "entertainment": 0.1}
_FRAUD_NIGHT_SHARE = 0.55  # else the normal diurnal pattern
_FRAUD_AMOUNT_LOG_MEAN = np.log(5.0)  # x5 the user's habit (times the category's price level)
_FRAUD_AMOUNT_LOG_SD = 0.5
_FRAUD_GAP_MEAN_S = 90.0  # mean gap between transactions of one burst
_FRAUD_EXTRA_TXNS_MEAN = 3.0  # episode size = 1 + Poisson(3)

# Users
_ACTIVITY_MEAN_PER_DAY = 1.3
_ACTIVITY_SHAPE = 1.5
_LATE_JOINER_SHARE = 0.2
_HABIT_MEDIAN = 30.0
_HABIT_LOG_SD = 0.7  # across users
_PURCHASE_LOG_SD = 0.6  # within a user, per purchase
_PREFERENCE_CONCENTRATION = 4.0  # Dirichlet concentration around the population mix
_FAVOURITE_MERCHANTS = 3
_FAVOURITE_WEIGHTS = np.array([0.5, 0.3, 0.2])
_FAVOURITE_SHARE = 0.75  # share of purchases at one of the user's favourite merchants

# Relative activity per hour of day (UTC): few at night, peaks at lunch and evening.
_HOURLY = np.array(
    [
        *(0.5, 0.3, 0.2, 0.2, 0.3, 0.6, 1.5, 3.0, 4.0, 4.5, 5.0, 5.5),  # 00-11
        *(6.0, 5.5, 5.0, 5.0, 5.5, 6.0, 6.5, 6.0, 5.0, 4.0, 2.5, 1.2),  # 12-23
    ]
)
_NIGHT_HOURS = 6  # 00:00-05:59

_ID_WIDTH = 9

# Personal data (pii=True): drawn from its own stream, seeded by (seed, _PII_STREAM), after
# everything else, so turning it on changes no existing column, row or model.
_PII_STREAM = 0x5049  # "PI"
_CARD_BIN = "4539"  # a Visa-style issuer prefix; 11 random digits and a Luhn check follow
_HOME_IP_SHARE = 0.8  # purchases from the user's usual address; the rest from anywhere
_FIRST_NAMES = np.array(["anna", "ben", "chloe", "david", "emma", "felix", "grace", "hugo"])
_LAST_NAMES = np.array(["martin", "smith", "garcia", "muller", "rossi", "novak", "silva"])
_MAIL_DOMAINS = np.array(["gmail.com", "outlook.com", "yahoo.com", "web.de", "proton.me"])


def _check_config(cfg: DataConfig) -> None:
    problems = []
    if cfg.n_users < 1:
        problems.append(f"n_users must be >= 1 (got {cfg.n_users})")
    if cfg.days < 1:
        problems.append(f"days must be >= 1 (got {cfg.days})")
    if not 0.0 <= cfg.fraud_rate < 0.5:
        problems.append(f"fraud_rate must be in [0, 0.5) (got {cfg.fraud_rate})")
    if not (cfg.drift_amount_factor > 0 and np.isfinite(cfg.drift_amount_factor)):
        problems.append(f"drift_amount_factor must be > 0 (got {cfg.drift_amount_factor})")
    if cfg.label_delay_days < 0:
        problems.append(f"label_delay_days must be >= 0 (got {cfg.label_delay_days})")
    if problems:
        raise ValueError("invalid DataConfig: " + "; ".join(problems))


def _utc_ns(value: str, what: str) -> int:
    """An ISO date/time as UTC nanoseconds; a value without a zone is taken as UTC."""
    import pandas as pd

    try:
        ts = pd.Timestamp(value)
    except ValueError as exc:
        raise ValueError(f"{what}={value!r} is not an ISO-8601 date/time") from exc
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return int(ts.value)


def _categorical_per_row(
    rng: np.random.Generator, probs: np.ndarray, owner: np.ndarray
) -> np.ndarray:
    """Draw one category per row from its owner's probability vector, in O(rows) memory.

    ``probs`` is (n_owners, k). Each owner's CDF is shifted by the owner's index, the rows'
    uniforms by theirs, and one ``searchsorted`` over the flat array finds the category.
    """
    n_owners, k = probs.shape
    cdf = np.cumsum(probs, axis=1)
    cdf[:, -1] = 1.0
    flat = (cdf + np.arange(n_owners)[:, None]).ravel()
    u = rng.random(owner.size)
    pos = np.searchsorted(flat, owner + u, side="right")
    return (pos - owner * k).astype(np.int64)


def _popular_index(rng: np.random.Generator, pool: np.ndarray) -> np.ndarray:
    """An index into each pool, skewed to low indices (a few popular merchants)."""
    u = rng.random(pool.shape)
    return np.minimum((pool * u**2).astype(np.int64), pool - 1)


def _transaction_ids(n: int) -> np.ndarray:
    """``"t"`` + zero-padded 0..n-1 (same width, so they sort as numbers), built digit-wise."""
    width = max(_ID_WIDTH, len(str(max(n - 1, 0))))
    chars = np.empty((n, width + 1), dtype=np.uint8)
    chars[:, 0] = ord("t")
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    chars[:, 1:] = np.arange(n, dtype=np.int64)[:, None] // powers % 10 + ord("0")
    return chars.view(f"S{width + 1}").ravel().astype(f"U{width + 1}").astype(object)


def _utc_timestamps(nanos: np.ndarray) -> pd.DatetimeIndex:
    import pandas as pd

    return pd.DatetimeIndex(nanos.astype(np.int64).view("datetime64[ns]")).tz_localize("UTC")


def _user_draws(
    rng: np.random.Generator, cfg: DataConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each user's activity (purchases per day), join day and spending habit: the first
    draws of the generator's stream (``user_age_bands`` replays them)."""
    n_users = cfg.n_users
    activity = rng.gamma(_ACTIVITY_SHAPE, _ACTIVITY_MEAN_PER_DAY / _ACTIVITY_SHAPE, n_users)
    late = rng.random(n_users) < _LATE_JOINER_SHARE
    join_day = np.where(late, rng.integers(0, cfg.days, n_users), 0)
    habit = np.exp(rng.normal(np.log(_HABIT_MEDIAN), _HABIT_LOG_SD, n_users))
    return activity, join_day, habit


def _scaled(cfg: DataConfig | None, scale: float) -> DataConfig:
    cfg = cfg or DataConfig()
    if scale != 1.0:
        if not (scale > 0 and np.isfinite(scale)):
            raise ValueError(f"scale must be > 0 (got {scale})")
        cfg = replace(cfg, n_users=max(1, round(cfg.n_users * scale)))
    _check_config(cfg)
    return cfg


def _luhn_completed(payload: np.ndarray) -> np.ndarray:
    """Append the Luhn check digit to each row of ``payload`` (digits, shape (n, k))."""
    doubled = np.zeros(payload.shape[1], bool)
    doubled[::-1][::2] = True  # the payload's last digit is second from the right once completed
    vals = np.where(doubled, payload * 2, payload)
    vals = np.where(vals > 9, vals - 9, vals)
    check = (10 - vals.sum(axis=1) % 10) % 10
    return np.concatenate([payload, check[:, None]], axis=1)


def _digits_to_str(digits: np.ndarray) -> np.ndarray:
    chars = (digits + ord("0")).astype(np.uint8)
    return chars.view(f"S{digits.shape[1]}").ravel().astype(f"U{digits.shape[1]}").astype(object)


def _random_ips(rng: np.random.Generator, n: int) -> np.ndarray:
    """Public-looking IPv4 addresses (first octet 11..223, never 127)."""
    octets = rng.integers(0, 256, (n, 4))
    octets[:, 0] = rng.integers(11, 224, n)
    octets[octets[:, 0] == 127, 0] = 128
    return np.array([".".join(map(str, row)) for row in octets.tolist()], dtype=object)


def _personal_data(seed: int, n_users: int, user_ids: np.ndarray) -> dict[str, np.ndarray]:
    """Card number, e-mail and IP per row, from the PII stream (see ``_PII_STREAM``)."""
    rng = np.random.default_rng([seed, _PII_STREAM])
    bin_digits = np.array([int(c) for c in _CARD_BIN])
    payload = np.concatenate(
        [
            np.broadcast_to(bin_digits, (n_users, len(bin_digits))),
            rng.integers(0, 10, (n_users, 11)),
        ],
        axis=1,
    )
    cards = _digits_to_str(_luhn_completed(payload))
    first = rng.choice(_FIRST_NAMES, n_users)
    last = rng.choice(_LAST_NAMES, n_users)
    number = rng.integers(1, 1000, n_users).astype(str)
    domain = rng.choice(_MAIL_DOMAINS, n_users)
    emails = np.array(
        [f"{f}.{la}{k}@{d}" for f, la, k, d in zip(first, last, number, domain, strict=True)],
        dtype=object,
    )
    home_ip = _random_ips(rng, n_users)
    row = user_ids - 1
    elsewhere = rng.random(row.size) >= _HOME_IP_SHARE
    ips = home_ip[row].copy()
    ips[elsewhere] = _random_ips(rng, int(elsewhere.sum()))
    return {CARD_NUMBER: cards[row], EMAIL: emails[row], IP_ADDRESS: ips}


def generate_transactions(
    cfg: DataConfig | None = None, *, scale: float = 1.0, pii: bool = False
) -> pd.DataFrame:
    """Generate the raw transaction log for ``cfg`` (default ``DataConfig()``).

    ``scale`` multiplies ``n_users`` (benchmarks: ``scale=20`` gives ~4 million rows).
    Returns exactly ``RAW_COLUMNS`` with ``RAW_DTYPES``, sorted by event time then
    transaction id; ids are ``"t"`` + zero-padded position, so they sort like the rows.

    ``pii=True`` appends the personal data a real event carries (``PII_COLUMNS``: the
    user's card number, Luhn-valid; their e-mail; the IP address of the purchase, usually
    the user's own), from a separate seeded stream: every other column is identical to
    ``pii=False``. ``mlref.data.privacy.drop_personal_data`` removes them before anything
    downstream sees the events.
    """
    import pandas as pd

    cfg = _scaled(cfg, scale)
    started = time.perf_counter()
    rng = np.random.default_rng(cfg.seed)
    start_ns = _utc_ns(cfg.start, "start")
    span_s = cfg.days * DAY_S
    n_users, n_cat = cfg.n_users, len(CATEGORIES)

    # --- merchants: one id block per category, then the drift category's block
    pool = np.array(
        [
            max(_MIN_MERCHANTS, round(_MERCHANTS_PER_1000_USERS[c] * n_users / 1000))
            for c in CATEGORIES
        ],
        dtype=np.int64,
    )
    offset = np.concatenate([[1], 1 + np.cumsum(pool)])
    drift_pool = max(_MIN_MERCHANTS, round(_DRIFT_MERCHANTS_PER_1000_USERS * n_users / 1000))
    drift_offset = int(offset[-1])

    # --- users
    activity, join_day, habit = _user_draws(rng, cfg)
    base_mix = np.array([_CATEGORY_WEIGHT[c] for c in CATEGORIES])
    preference = rng.dirichlet(base_mix * _PREFERENCE_CONCENTRATION, n_users)
    favourite = offset[:-1][None, :, None] + _popular_index(
        rng, np.broadcast_to(pool[None, :, None], (n_users, n_cat, _FAVOURITE_MERCHANTS))
    )

    # --- legitimate purchases
    active_days = cfg.days - join_day
    counts = rng.poisson(activity * active_days)
    user = np.repeat(np.arange(n_users, dtype=np.int64), counts)
    n_legit = int(user.size)
    day = join_day[user] + (rng.random(n_legit) * active_days[user]).astype(np.int64)
    hour = rng.choice(24, size=n_legit, p=_HOURLY / _HOURLY.sum())
    second = day * DAY_S + hour * HOUR_S + rng.integers(0, HOUR_S, n_legit)
    cat = _categorical_per_row(rng, preference, user)
    fav_pick = rng.choice(_FAVOURITE_MERCHANTS, size=n_legit, p=_FAVOURITE_WEIGHTS)
    at_favourite = rng.random(n_legit) < _FAVOURITE_SHARE
    merchant = np.where(
        at_favourite,
        favourite[user, cat, fav_pick],
        offset[cat] + _popular_index(rng, pool[cat]),
    )
    price = np.array([_CATEGORY_PRICE[c] for c in CATEGORIES])
    amount = habit[user] * price[cat] * np.exp(rng.normal(0.0, _PURCHASE_LOG_SD, n_legit))

    # --- fraud episodes: a burst of transactions on a victim's card
    n_fraud = round(cfg.fraud_rate * n_legit / (1.0 - cfg.fraud_rate))
    if n_fraud > 0:
        n_draw = n_fraud  # every size is >= 1, so the draws always cover n_fraud rows
        sizes = 1 + rng.poisson(_FRAUD_EXTRA_TXNS_MEAN, n_draw)
        ends = np.cumsum(sizes)
        n_episodes = int(np.searchsorted(ends, n_fraud) + 1)
        sizes = sizes[:n_episodes]
        sizes[-1] -= int(ends[n_episodes - 1] - n_fraud)  # exactly n_fraud rows
    else:
        n_episodes, sizes = 0, np.zeros(0, dtype=np.int64)
    victim = rng.integers(0, n_users, n_episodes)
    night = rng.random(n_episodes) < _FRAUD_NIGHT_SHARE
    ep_hour = np.where(
        night,
        rng.integers(0, _NIGHT_HOURS, n_episodes),
        rng.choice(24, size=n_episodes, p=_HOURLY / _HOURLY.sum()),
    )
    ep_day = join_day[victim] + (rng.random(n_episodes) * active_days[victim]).astype(np.int64)
    ep_start = ep_day * DAY_S + ep_hour * HOUR_S + rng.integers(0, HOUR_S, n_episodes)
    episode = np.repeat(np.arange(n_episodes), sizes)
    first_of_episode = np.concatenate([[0], np.cumsum(sizes)[:-1]]) if n_episodes else episode
    gap = np.floor(rng.exponential(_FRAUD_GAP_MEAN_S, n_fraud)).astype(np.int64)
    gap[first_of_episode] = 0
    within = np.cumsum(gap)
    within -= within[first_of_episode][episode]  # offset from the episode's first txn
    f_second = np.minimum(ep_start[episode] + within, span_s - 1)
    f_user = victim[episode]
    fraud_cats = list(_FRAUD_CATEGORY_WEIGHT)
    f_cat = np.array([CATEGORIES.index(c) for c in fraud_cats])[
        rng.choice(len(fraud_cats), size=n_fraud, p=list(_FRAUD_CATEGORY_WEIGHT.values()))
    ]
    # uniform over the pool: mostly merchants the user never used, rarely popular ones
    f_merchant = offset[f_cat] + (rng.random(n_fraud) * pool[f_cat]).astype(np.int64)
    f_amount = (
        habit[f_user]
        * price[f_cat]
        * np.exp(rng.normal(_FRAUD_AMOUNT_LOG_MEAN, _FRAUD_AMOUNT_LOG_SD, n_fraud))
    )

    user = np.concatenate([user, f_user])
    second = np.concatenate([second, f_second])
    cat = np.concatenate([cat, f_cat])
    merchant = np.concatenate([merchant, f_merchant])
    amount = np.minimum(np.concatenate([amount, f_amount]), CARD_LIMIT)
    label = np.concatenate([np.zeros(n_legit, np.int8), np.ones(n_fraud, np.int8)])
    n = int(user.size)

    # --- labels arrive late; fraud (chargebacks) a bit later still
    delay = cfg.label_delay_days * DAY_S + np.where(
        label == 1,
        np.floor(rng.exponential(1.5 * DAY_S, n)),
        rng.integers(-DAY_S // 2, DAY_S // 2 + 1, n),
    ).astype(np.int64)
    label_second = second + np.maximum(delay, 0)

    # --- drift switch (random numbers drawn either way, so pre-drift rows never change)
    to_drift_category = rng.random(n) < DRIFT_CATEGORY_SHARE
    drift_merchant = drift_offset + _popular_index(rng, np.full(n, drift_pool))
    drift_noise = np.exp(rng.normal(0.0, _PURCHASE_LOG_SD, n))
    cat_names = np.array([*CATEGORIES, DRIFT_CATEGORY], dtype=object)
    if cfg.drift_from is not None:
        drift_s = (_utc_ns(cfg.drift_from, "drift_from") - start_ns) // 1_000_000_000
        drifted = second >= drift_s
        moved = drifted & to_drift_category & (label == 0)
        cat = np.where(moved, n_cat, cat)
        merchant = np.where(moved, drift_merchant, merchant)
        amount = np.where(moved, habit[user] * _DRIFT_PRICE * drift_noise, amount)
        amount = np.where(drifted, amount * cfg.drift_amount_factor, amount)
        logger.info(
            "drift from %s: %d rows scaled by %.2f, %d moved to %r",
            cfg.drift_from,
            int(drifted.sum()),
            cfg.drift_amount_factor,
            int(moved.sum()),
            DRIFT_CATEGORY,
        )
    amount = np.round(np.clip(amount, 0.01, MAX_AMOUNT), 2)

    # --- order by time (ties: legit before fraud, then draw order) and assign ids
    order = np.lexsort((np.arange(n), second))
    ids = _transaction_ids(n)
    frame = pd.DataFrame(
        {
            TRANSACTION_ID: ids,
            USER_ID: (user[order] + 1).astype(np.int64),
            MERCHANT_ID: merchant[order].astype(np.int64),
            MERCHANT_CATEGORY: cat_names[cat[order]],
            AMOUNT: amount[order].astype(np.float64),
            EVENT_TIMESTAMP: _utc_timestamps(start_ns + second[order] * 1_000_000_000),
            LABEL: label[order],
            LABEL_TIMESTAMP: _utc_timestamps(start_ns + label_second[order] * 1_000_000_000),
        },
        columns=list(RAW_COLUMNS),
    )
    if pii:
        for column, values in _personal_data(cfg.seed, n_users, frame[USER_ID].to_numpy()).items():
            frame[column] = values
    logger.info(
        "generated %d transactions (%d users, %d days, %d fraud in %d episodes) in %.1fs",
        n,
        n_users,
        cfg.days,
        n_fraud,
        n_episodes,
        time.perf_counter() - started,
    )
    return frame


# The sensitive attribute (model-7's group_parity): an age band per user, NOT a model input
# and not a column of the event log. Older card holders spend more in this population:
# the band is a noisy function of the user's spending habit (latent correlation
# _AGE_SPEND_CORRELATION), the noise from its OWN stream, so adding it changed no draw of
# the generator (tests/mlref/data/test_age_band.py checks the event log's hash).
_AGE_STREAM = 0xA6E
_AGE_SPEND_CORRELATION = 0.4
_AGE_BAND_SHARES = (0.22, 0.30, 0.30, 0.18)  # AGE_BANDS in order


def user_age_bands(cfg: DataConfig | None = None, *, scale: float = 1.0) -> pd.DataFrame:
    """``user_id`` -> ``age_band`` (one of ``AGE_BANDS``) for the users that
    ``generate_transactions(cfg, scale=scale)`` generates: pass the SAME config (the days
    included: the habit draws follow the join-day draws of the main stream)."""
    import pandas as pd
    from scipy.stats import norm

    cfg = _scaled(cfg, scale)
    _, _, habit = _user_draws(np.random.default_rng(cfg.seed), cfg)
    spend = (np.log(habit) - np.log(_HABIT_MEDIAN)) / _HABIT_LOG_SD  # standard normal
    side = np.random.default_rng([cfg.seed, _AGE_STREAM])
    rho = _AGE_SPEND_CORRELATION
    latent = rho * spend + np.sqrt(1 - rho * rho) * side.normal(size=cfg.n_users)
    cuts = norm.ppf(np.cumsum(_AGE_BAND_SHARES)[:-1])
    band = np.asarray(AGE_BANDS, dtype=object)[np.searchsorted(cuts, latent)]
    return pd.DataFrame({USER_ID: np.arange(1, cfg.n_users + 1, dtype=np.int64), AGE_BAND: band})


def write_parquet(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write ``df`` to parquet (pyarrow, no index, nanosecond timestamps kept); returns the path.

    The parent folder is created. Output is byte-identical for identical frames.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(target, engine="pyarrow", index=False, coerce_timestamps=None, version="2.6")
    return target


def read_parquet(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a frame written by ``write_parquet``.

    Zone-aware timestamps come back as ``datetime64[ns, UTC]`` and strings as ``object``, so a
    raw frame round-trips with ``RAW_DTYPES``; naive timestamps stay naive (validation
    reports them rather than guessing a zone).
    """
    import pandas as pd

    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"no parquet file at {source}: generate or copy the data first")
    frame = pd.read_parquet(source, engine="pyarrow")
    for column in frame.columns:
        dtype = frame[column].dtype
        if isinstance(dtype, pd.DatetimeTZDtype) and str(dtype) != "datetime64[ns, UTC]":
            frame[column] = frame[column].dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
        elif isinstance(dtype, pd.StringDtype):
            frame[column] = frame[column].astype(object)
    return frame
