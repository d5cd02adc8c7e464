"""Per-arm outcomes of a rollout: the prediction log's rows joined with matured labels.

Each row the server logged under a rollout carries its arm (``mlref.serve.routing``). A
row's outcome is known once its label has arrived (``label_timestamp <= as_of``): its
business cost per transaction, the quantity ``mlgates.canary`` judges::

    cost = missed_fraud_share * amount   if fraud and not flagged   (the loss)
           review_cost                   if legitimate and flagged  (an analyst's time)
           0                             otherwise
    capped at cost_cap

the same two terms as ``mlref.train.evaluate.business_cost`` (which picks the threshold),
per transaction. The cap is by design and fixed before the rollout (the gate needs a bound
known in advance; a cap chosen after seeing the data is not one): a missed fraud counts
at most ``cost_cap``, so one huge transaction cannot hold a rollout hostage.

Rows whose label has not arrived are counted (requests) but not judged. Latency comes from
every logged row; errors are not in the log (a failed request has no row), so they come
from the server's per-arm counts (``<workdir>/canary/<rollout_id>.counts.json``).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mlref.canary.state import DecisionKnobs, counts_path

if TYPE_CHECKING:
    from numpy.typing import NDArray

ARMS = ("champion", "canary")
LABEL_COLUMNS = ("transaction_id", "is_fraud", "label_timestamp", "amount")


def rollout_rows(log_path: Path, rollout_id: str) -> pd.DataFrame:
    """The log rows served under ``rollout_id`` in the transactions' time order (arrival
    order up to the jitter of concurrent requests, which would make a replay's sequence,
    and so its decision, vary run to run); empty when none."""
    columns = [
        "request_id",
        "ts",
        "event_timestamp",
        "transaction_id",
        "user_id",
        "arm",
        "model_version",
        "score",
        "decision",
        "threshold",
        "latency_ms",
    ]
    if not Path(log_path).exists():
        return pd.DataFrame(columns=columns)
    conn = sqlite3.connect(f"file:{log_path}?mode=ro", uri=True)
    try:
        present = {row[1] for row in conn.execute("PRAGMA table_info(predictions)")}
        if "rollout_id" not in present:  # a log from before the canary: no rollout rows
            return pd.DataFrame(columns=columns)
        frame = pd.read_sql_query(
            f"SELECT {', '.join(columns)} FROM predictions WHERE rollout_id = ? ORDER BY ts, rowid",
            conn,
            params=(rollout_id,),
        )
    finally:
        conn.close()
    return frame


def transaction_costs(
    is_fraud: NDArray[Any], flagged: NDArray[Any], amount: NDArray[Any], knobs: DecisionKnobs
) -> NDArray[np.float64]:
    """Business cost of each transaction (module docstring), capped at ``knobs.cost_cap``."""
    fraud = np.asarray(is_fraud, dtype=bool)
    flag = np.asarray(flagged, dtype=bool)
    amt = np.asarray(amount, dtype=np.float64)
    cost = np.where(fraud & ~flag, knobs.missed_fraud_share * amt, 0.0)
    cost = np.where(~fraud & flag, knobs.review_cost, cost)
    return np.minimum(cost, knobs.cost_cap)


@dataclass(frozen=True)
class ArmOutcomes:
    """One arm of a rollout as of a time."""

    arm: str
    versions: tuple[str, ...]
    requests: int  # logged (answered) requests
    errors: int  # failed requests (server counts)
    costs: NDArray[np.float64]  # labelled rows' cost, arrival order
    latencies_ms: NDArray[np.float64]  # every logged row's latency, arrival order

    @property
    def labelled(self) -> int:
        return int(self.costs.size)

    @property
    def cost_per_transaction(self) -> float:
        return float(self.costs.mean()) if self.costs.size else float("nan")

    @property
    def p99_ms(self) -> float:
        return (
            float(np.percentile(self.latencies_ms, 99)) if self.latencies_ms.size else float("nan")
        )

    @property
    def error_rate(self) -> float:
        total = self.requests + self.errors
        return self.errors / total if total else float("nan")

    def error_indicators(self) -> NDArray[np.float64]:
        """0/1 per request (errors spread evenly: the counts carry no order)."""
        total = self.requests + self.errors
        out = np.zeros(total)
        if self.errors:
            out[np.linspace(0, total - 1, self.errors).round().astype(int)] = 1.0
        return out

    def to_dict(self) -> dict[str, Any]:
        def num(x: float) -> float | None:
            return None if not np.isfinite(x) else round(float(x), 6)

        return {
            "arm": self.arm,
            "versions": list(self.versions),
            "requests": self.requests,
            "errors": self.errors,
            "labelled": self.labelled,
            "cost_per_transaction": num(self.cost_per_transaction),
            "latency_p99_ms": num(self.p99_ms),
            "error_rate": num(self.error_rate),
        }


def read_counts(workdir: Path, rollout_id: str) -> dict[str, dict[str, int]]:
    path = counts_path(workdir, rollout_id)
    if not path.exists():
        return {}
    return dict(json.loads(path.read_text()).get("arms", {}))


def arm_outcomes(
    rows: pd.DataFrame,
    labels: pd.DataFrame | None,
    knobs: DecisionKnobs,
    *,
    as_of: pd.Timestamp | None = None,
    counts: dict[str, dict[str, int]] | None = None,
) -> dict[str, ArmOutcomes]:
    """Both arms' outcomes: ``rows`` from :func:`rollout_rows`, ``labels`` with
    ``LABEL_COLUMNS`` (a label counts when ``label_timestamp <= as_of``; default: all)."""
    labelled = _join_labels(rows, labels, as_of)
    out = {}
    for arm in ARMS:
        mine = rows[rows["arm"] == arm]
        judged = labelled[labelled["arm"] == arm]
        costs = transaction_costs(
            judged["is_fraud"].to_numpy(),
            judged["decision"].to_numpy(),
            judged["amount"].to_numpy(),
            knobs,
        )
        errors = int((counts or {}).get(arm, {}).get("errors", 0))
        out[arm] = ArmOutcomes(
            arm=arm,
            versions=tuple(sorted(mine["model_version"].astype(str).unique())),
            requests=len(mine),
            errors=errors,
            costs=costs.astype(np.float64),
            latencies_ms=mine["latency_ms"].to_numpy(np.float64),
        )
    return out


def _join_labels(
    rows: pd.DataFrame, labels: pd.DataFrame | None, as_of: pd.Timestamp | None
) -> pd.DataFrame:
    empty = rows.iloc[0:0].assign(is_fraud=pd.Series(dtype="int64"), amount=pd.Series(dtype=float))
    if labels is None or rows.empty:
        return empty
    missing = sorted(set(LABEL_COLUMNS) - set(labels.columns))
    if missing:
        raise ValueError(f"labels lack columns {missing} (need {list(LABEL_COLUMNS)})")
    known = labels.dropna(subset=["is_fraud"])
    if as_of is not None:
        cutoff = pd.Timestamp(as_of)
        if cutoff.tzinfo is None:
            raise ValueError(f"as_of={as_of!r} has no time zone; label times are UTC")
        known = known[pd.to_datetime(known["label_timestamp"], utc=True) <= cutoff]
    known = known.drop_duplicates("transaction_id", keep="last")
    # a transaction scored twice (a client retry) is judged once, on its first answer
    first = rows.drop_duplicates("transaction_id", keep="first")
    merged = first.merge(
        known[["transaction_id", "is_fraud", "amount"]].astype({"transaction_id": str}),
        on="transaction_id",
        how="inner",
    )
    return merged.sort_values(["event_timestamp", "transaction_id"], kind="mergesort")
