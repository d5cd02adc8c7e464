"""Request bodies for load tests: who sends what, shared by the locustfile and ``loadgen``.

Standard library only: the locustfile imports this module inside Locust's gevent-patched
process, and ``loadgen`` inside its own small process.

* Users are drawn with the popularity skew of the generated data: the runner writes a users
  file (``user_id,weight`` per line, weight = the user's transaction count) and passes its path
  in ``MLREF_LOAD_USERS_FILE``; without one, a seeded Zipf law (exponent ``ZIPF_S``) over
  ``1..MLREF_LOAD_N_USERS`` stands in.
* A share of requests (``unknown_share``) names users that do not exist (ids from
  ``UNKNOWN_USER_BASE``): the server must score them on the documented defaults.
* Event times start at ``MLREF_LOAD_EVENT_TIME`` (ISO-8601, the end of the generated data, so
  the online state is fresh) and spread over the following hour.
* Invalid bodies each break one rule of the scoring schema (``INVALID_KINDS``); the server
  must answer 422.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import math
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlref.data.columns import CATEGORIES

USERS_FILE_ENV = "MLREF_LOAD_USERS_FILE"
N_USERS_ENV = "MLREF_LOAD_N_USERS"
EVENT_TIME_ENV = "MLREF_LOAD_EVENT_TIME"
SEED_ENV = "MLREF_LOAD_SEED"
UNKNOWN_SHARE_ENV = "MLREF_LOAD_UNKNOWN_SHARE"

ZIPF_S = 1.1
DEFAULT_N_USERS = 2_000
UNKNOWN_USER_BASE = 1_000_000_000
EVENT_SPREAD_S = 3_600
CATEGORY_WEIGHTS = (30, 15, 12, 20, 4, 6, 8, 5)  # as common as in everyday card spending

#: the request name invalid bodies are sent and recorded under, so the summary judges them
#: apart from the scoring requests (a 422 is their success)
INVALID_NAME = "invalid (expected 422)"
INVALID_KINDS: tuple[str, ...] = (
    "negative_amount",
    "missing_user_id",
    "naive_timestamp",
    "user_id_as_string",
    "unknown_field",
)


class UserSampler:
    """Draw user ids with given popularity weights (cumulative table + bisect)."""

    def __init__(self, user_ids: list[int], weights: list[float]) -> None:
        if not user_ids:
            raise ValueError("no user ids to draw from: the users file is empty")
        if len(user_ids) != len(weights):
            raise ValueError(f"{len(user_ids)} user ids but {len(weights)} weights")
        if any(not math.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
            raise ValueError("user weights must be finite, >= 0, and not all 0")
        self.user_ids = list(user_ids)
        self.cumulative = list(itertools.accumulate(float(w) for w in weights))

    def draw(self, rng: random.Random) -> int:
        x = rng.random() * self.cumulative[-1]
        i = bisect.bisect_right(self.cumulative, x)
        return self.user_ids[min(i, len(self.user_ids) - 1)]

    @classmethod
    def zipf(cls, n_users: int, s: float = ZIPF_S) -> UserSampler:
        """Ids ``1..n_users``, popularity ~ 1 / rank**s, ranks in a fixed shuffled order."""
        if n_users < 1:
            raise ValueError(f"n_users must be >= 1, got {n_users}")
        ids = list(range(1, n_users + 1))
        random.Random(n_users).shuffle(ids)  # the most popular user is not always id 1
        return cls(ids, [1.0 / (rank**s) for rank in range(1, n_users + 1)])

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> UserSampler:
        """``user_id,weight`` per line (a header line ``user_id,weight`` is allowed)."""
        ids: list[int] = []
        weights: list[float] = []
        for lineno, line in enumerate(Path(path).read_text().splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("user_id"):
                continue
            try:
                uid, weight = line.split(",")
                ids.append(int(uid))
                weights.append(float(weight))
            except ValueError:
                raise ValueError(
                    f"{path}:{lineno}: expected 'user_id,weight', got {line!r}"
                ) from None
        return cls(ids, weights)


def write_users_file(path: str | os.PathLike[str], counts: dict[int, int]) -> Path:
    """Write ``user_id,weight`` lines (weight = transactions seen), most active first."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    rows = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    target.write_text("user_id,weight\n" + "".join(f"{u},{c}\n" for u, c in rows))
    return target


def _parse_time(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{EVENT_TIME_ENV}={text!r} is not an ISO-8601 time") from None
    if value.tzinfo is None:
        raise ValueError(f"{EVENT_TIME_ENV}={text!r} has no timezone; add +00:00")
    return value


@dataclass
class Traffic:
    """Builds request bodies; one instance per simulated user, each with its own RNG."""

    sampler: UserSampler
    event_time: dt.datetime
    rng: random.Random
    unknown_share: float = 0.05
    prefix: str = "load"
    _counter: itertools.count[int] = field(default_factory=itertools.count)

    @classmethod
    def from_env(cls, stream: int = 0, prefix: str = "load") -> Traffic:
        """Configured from the ``MLREF_LOAD_*`` environment the runner sets."""
        users_file = os.environ.get(USERS_FILE_ENV)
        if users_file:
            sampler = UserSampler.from_file(users_file)
        else:
            sampler = UserSampler.zipf(int(os.environ.get(N_USERS_ENV, DEFAULT_N_USERS)))
        when = os.environ.get(EVENT_TIME_ENV)
        event_time = _parse_time(when) if when else dt.datetime.now(dt.UTC)
        seed = int(os.environ.get(SEED_ENV, "0"))
        unknown = float(os.environ.get(UNKNOWN_SHARE_ENV, "0.05"))
        if not 0.0 <= unknown <= 1.0:
            raise ValueError(f"{UNKNOWN_SHARE_ENV} must be in [0, 1], got {unknown}")
        return cls(
            sampler=sampler,
            event_time=event_time,
            rng=random.Random(seed * 1_000_003 + stream),
            unknown_share=unknown,
            prefix=f"{prefix}{stream}",
        )

    def user_id(self) -> int:
        if self.rng.random() < self.unknown_share:
            return UNKNOWN_USER_BASE + self.rng.randrange(1_000_000)
        return self.sampler.draw(self.rng)

    def transaction(self) -> dict[str, Any]:
        """A valid /predict body."""
        rng = self.rng
        when = self.event_time + dt.timedelta(seconds=rng.uniform(0, EVENT_SPREAD_S))
        return {
            "transaction_id": f"{self.prefix}-{next(self._counter)}",
            "user_id": self.user_id(),
            "amount": round(rng.lognormvariate(3.5, 1.1), 2),
            "merchant_category": rng.choices(CATEGORIES, weights=CATEGORY_WEIGHTS)[0],
            "event_timestamp": when.isoformat(timespec="seconds"),
        }

    def batch(self, size: int) -> dict[str, Any]:
        """A valid /predict/batch body of ``size`` transactions."""
        return {"transactions": [self.transaction() for _ in range(size)]}

    def invalid(self, kind: str | None = None) -> tuple[str, dict[str, Any]]:
        """A /predict body that breaks one schema rule; returns (kind, body)."""
        kind = kind or self.rng.choice(INVALID_KINDS)
        body = self.transaction()
        if kind == "negative_amount":
            body["amount"] = -abs(body["amount"]) - 1.0
        elif kind == "missing_user_id":
            del body["user_id"]
        elif kind == "naive_timestamp":
            body["event_timestamp"] = body["event_timestamp"][:19]  # drop "+00:00"
        elif kind == "user_id_as_string":
            body["user_id"] = str(body["user_id"])
        elif kind == "unknown_field":
            body["card_number"] = "4111111111111111"
        else:
            raise ValueError(f"unknown invalid kind {kind!r}; one of {INVALID_KINDS}")
        return kind, body
