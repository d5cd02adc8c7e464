"""The rollout state: one small JSON file in the workdir that the CLI writes and the server reads.

``<workdir>/canary/rollout.json`` holds the current (or last) rollout: its id, the canary and
champion versions, the traffic share, the salt of the user hash, its status and the decision
knobs fixed before the rollout (a bound chosen after seeing the data is not a bound). The file
is replaced atomically (write to a temporary file, ``os.replace``), so a reader sees the old
state or the new one, never half of one. The server routes only while ``status`` is
``active``; every other status (``promoted``, ``rolled_back``, ``stopped``) sends all traffic
to the champion.

``<workdir>/canary/decisions.jsonl`` is the append-only record of decisions, one JSON object a
line, with the gate's evidence. This module imports nothing heavy: the server reads it on
its hot loop's poll.
"""

from __future__ import annotations

import json
import math
import os
import secrets
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

Status = Literal["active", "promoted", "rolled_back", "stopped"]
STATUSES: tuple[str, ...] = ("active", "promoted", "rolled_back", "stopped")
# the share of traffic a canary may take: below 5% it takes too long to decide, above 50%
# it is no longer a canary
MIN_SHARE = 0.05
MAX_SHARE = 0.5
# the registry alias of the version under canary (next to champion / challenger)
CANARY = "canary"
ROLLOUT_FILE = "rollout.json"
DECISIONS_FILE = "decisions.jsonl"
COUNTS_SUFFIX = ".counts.json"


class RolloutError(ValueError):
    """A rollout cannot be started, read or changed as asked."""


@dataclass(frozen=True)
class DecisionKnobs:
    """How the canary is judged, fixed when it starts (``mlgates.canary``'s arguments).

    The primary metric is the business cost per transaction (``mlref.canary.outcomes``):
    ``missed_fraud_share`` of a missed fraud's amount, ``review_cost`` per false alarm, each
    transaction's cost capped at ``cost_cap`` by design (the bound the sequence needs).
    ``margin`` is the non-inferiority margin in cost per transaction. ``max_loss`` is the
    budget of extra cost the canary arm may run up against the champion's rate before the
    rollout is ended whatever the gate says (a backstop; the gate should decide first).
    """

    margin: float = 0.5
    alpha: float = 0.05
    min_samples: int = 200
    max_samples: int = 20_000
    cost_cap: float = 100.0
    review_cost: float = 5.0
    missed_fraud_share: float = 1.0
    max_loss: float = 5_000.0
    error_margin: float = 0.005
    # the tail-latency guardrail, off unless a threshold is given: the sequence assumes each
    # arm's mean is constant during the rollout, and the share of slow requests follows the
    # machine's load over time (both arms alike, but each arm's sequence is judged alone), so
    # a load swing can decide it; set it where load is steady
    latency_threshold_ms: float | None = None
    latency_margin: float = 0.01

    def __post_init__(self) -> None:
        for name in ("margin", "cost_cap", "review_cost", "missed_fraud_share", "max_loss"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise RolloutError(f"{name} must be finite and >= 0, got {value!r}")
        if not 0 < self.alpha < 1:
            raise RolloutError(f"alpha must be in (0, 1), got {self.alpha!r}")
        if self.cost_cap <= 0:
            raise RolloutError(f"cost_cap must be > 0, got {self.cost_cap!r}")
        if not 1 <= self.min_samples <= self.max_samples:
            raise RolloutError(
                f"need 1 <= min_samples <= max_samples, got {self.min_samples}, {self.max_samples}"
            )


@dataclass(frozen=True)
class Rollout:
    """One canary rollout (the content of ``rollout.json``)."""

    rollout_id: str
    canary_version: str
    champion_version: str
    share: float
    salt: str
    started_at: str
    status: Status = "active"
    ended_at: str | None = None
    knobs: DecisionKnobs = field(default_factory=DecisionKnobs)

    def __post_init__(self) -> None:
        check_share(self.share)
        if self.status not in STATUSES:
            raise RolloutError(f"status must be one of {STATUSES}, got {self.status!r}")
        if not self.rollout_id or not self.salt:
            raise RolloutError("rollout_id and salt must be non-empty")

    @property
    def active(self) -> bool:
        return self.status == "active"

    def ended(self, status: Status) -> Rollout:
        return replace(self, status=status, ended_at=now())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Rollout:
        try:
            knobs = DecisionKnobs(**data.get("knobs", {}))
            return cls(**{**data, "knobs": knobs})
        except TypeError as exc:
            raise RolloutError(f"not a rollout record: {exc}") from exc


def check_share(share: float) -> float:
    if not (isinstance(share, (int, float)) and MIN_SHARE <= share <= MAX_SHARE):
        raise RolloutError(
            f"share must be between {MIN_SHARE} and {MAX_SHARE} (a canary takes 5-50% of "
            f"traffic), got {share!r}"
        )
    return float(share)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def new_rollout(
    canary_version: str,
    champion_version: str,
    share: float,
    *,
    knobs: DecisionKnobs | None = None,
    rollout_id: str | None = None,
    salt: str | None = None,
) -> Rollout:
    """A fresh active rollout; its salt is random so each rollout splits users anew (a user
    unlucky in one rollout is not the canary's subject in every one); pass ``salt`` for a
    reproducible split (the demo, the tests)."""
    rid = rollout_id or f"r{datetime.now(UTC):%Y%m%d%H%M%S}-{secrets.token_hex(3)}"
    return Rollout(
        rollout_id=rid,
        canary_version=str(canary_version),
        champion_version=str(champion_version),
        share=check_share(share),
        salt=salt or secrets.token_hex(8),
        started_at=now(),
        knobs=knobs or DecisionKnobs(),
    )


def canary_dir(workdir: Path) -> Path:
    return Path(workdir) / "canary"


def rollout_path(workdir: Path) -> Path:
    return canary_dir(workdir) / ROLLOUT_FILE


def counts_path(workdir: Path, rollout_id: str) -> Path:
    """The server's per-arm request/error counts of a rollout (errors are not in the log)."""
    return canary_dir(workdir) / f"{rollout_id}{COUNTS_SUFFIX}"


def write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
    os.replace(tmp, path)


def write_rollout(workdir: Path, rollout: Rollout) -> Path:
    path = rollout_path(workdir)
    write_json_atomic(path, rollout.to_dict())
    return path


def read_rollout(workdir: Path) -> Rollout | None:
    """The current rollout, or None when none was ever started."""
    path = rollout_path(workdir)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        return Rollout.from_dict(json.loads(text))
    except (json.JSONDecodeError, AttributeError) as exc:
        raise RolloutError(f"{path} is not a rollout record: {exc}") from exc


def append_decision(workdir: Path, record: dict[str, Any]) -> Path:
    path = canary_dir(workdir) / DECISIONS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as out:
        out.write(json.dumps(record, sort_keys=True, default=str) + "\n")
    return path


def read_decisions(workdir: Path) -> list[dict[str, Any]]:
    path = canary_dir(workdir) / DECISIONS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
